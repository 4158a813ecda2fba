'use strict'

// ipckit/testing: a real frontend and a real in-process backend over a real temporary channel
// directory (real files, the real protocol, no mocks), with helpers to script what the backend
// does. For test suites that have no Python (or no DCC application) to talk to.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
// Real timers for the kit's own waits, even under jest's fake timers (they replace the globals).
const realTimers = require('node:timers')
const { FileChannel } = require('./channel.js')
const { FILES } = require('./constants.js')
const { DISPOSE, ASYNC_DISPOSE, codedError } = require('./errors.js')
const { errorDetails } = require('./handlers.js')
const { RunningHandlers } = require('./handler-context.js')
const { CANCEL_EVENT } = require('./progress.js')

/** The event a handler sends to report progress (PROTOCOL-EXTENSIONS.md). */
const PROGRESS_EVENT = 'task.progress'

// Scripted delays use the global setTimeout at the time they run, so fake timers control them.
const delay = (ms) => new Promise((resolve) => globalThis.setTimeout(resolve, ms))

/** Handler factories for `createTestChannel({ handlers })` and `backend.handle()`. */
const respond = {
  /** Answers `value` (or what `value(params, context)` returns) after `ms` milliseconds. */
  after(ms, value) {
    return async (params, context) => {
      await delay(ms)
      return typeof value === 'function' ? value(params, context) : value
    }
  },
  /** Fails with an error response: `message`, and `code` / `data` as `error_code` / `error_data`. */
  error(message, { code, data, afterMs } = {}) {
    return async () => {
      if (afterMs !== undefined) await delay(afterMs)
      const error = new Error(message)
      if (code !== undefined) error.code = code
      if (data !== undefined) error.data = data
      throw error
    }
  },
  /**
   * Sends a progress event for each of `steps` (numbers, or `{ progress, total?, message? }`),
   * `intervalMs` apart (default 0), then answers `result`.
   */
  progress(steps, result, { intervalMs = 0, total } = {}) {
    return async (params, context) => {
      for (const step of steps) {
        if (intervalMs > 0) await delay(intervalMs)
        const update = typeof step === 'number' ? { progress: step, total } : step
        context.progress(update.progress, { total: update.total, message: update.message })
      }
      return typeof result === 'function' ? result(params, context) : result
    }
  },
  /** Never answers (the request stays pending until its timeout or `close()`). */
  never() {
    return () => new Promise(() => {})
  },
}

function removeDir(dir) {
  // A reader closing in another thread may still be removing its acknowledgement file.
  for (let attempt = 1; ; attempt++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true })
      return
    } catch (error) {
      if (!['ENOTEMPTY', 'EBUSY', 'EPERM'].includes(error.code) || attempt === 50) throw error
    }
  }
}

/** The scripted backend of a test channel. */
class TestBackend {
  #handlers = new Map()
  #waiters = []
  #claimed = new WeakSet()
  #gone = false
  // Handler contexts as the real handle() gives them: `signal` aborts on the requester's
  // task.cancel and when the backend goes.
  #running

  constructor(channel) {
    /** The real backend `FileChannel`. */
    this.channel = channel
    /** Every request the backend received, in order. */
    this.requests = []
    this.#running = new RunningHandlers({
      sendProgress: (payloads) => {
        for (const payload of payloads) {
          if (!this.#gone) this.#send(() => this.channel.sendEvent(PROGRESS_EVENT, payload))
        }
      },
    })
    channel.on('request', (message) => this.#dispatch(message))
    channel.on('event', (message) => {
      if (message.method === CANCEL_EVENT) this.#running.cancel(message)
    })
  }

  /** Whether `disappear()` or `close()` ended it. */
  get gone() {
    return this.#gone
  }

  /** Answers `method` with `handler(params, context)` (a function or a `respond.*` script). */
  handle(method, handler) {
    if (typeof handler !== 'function') {
      throw codedError('EINVAL', `handler for ${method} must be a function`, TypeError)
    }
    this.#handlers.set(method, handler)
    return this
  }

  /** `handle()` for each entry of `handlers`. */
  serve(handlers = {}) {
    for (const [method, handler] of Object.entries(handlers)) this.handle(method, handler)
    return this
  }

  /**
   * The next request (of `method`, if given) the backend receives, or one it already received
   * and nobody waited for. Rejects `ETIMEDOUT` after `timeoutMs` (real time, default 5000).
   */
  waitForRequest(method, { timeoutMs = 5000 } = {}) {
    const matches = (message) => method === undefined || message.method === method
    const earlier = this.requests.find((message) => matches(message) && !this.#claimed.has(message))
    if (earlier) {
      this.#claimed.add(earlier)
      return Promise.resolve(earlier)
    }
    return new Promise((resolve, reject) => {
      const waiter = { matches, resolve }
      const timer = realTimers.setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        reject(codedError('ETIMEDOUT', `no request${method ? ` for ${method}` : ''} within ${timeoutMs} ms`))
      }, timeoutMs)
      waiter.resolve = (message) => {
        realTimers.clearTimeout(timer)
        resolve(message)
      }
      this.#waiters.push(waiter)
    })
  }

  /** Sends an event to the frontend. */
  sendEvent(name, payload) {
    this.channel.sendEvent(name, payload)
  }

  /** Sends a progress update for request `requestId` (a `task.progress` event). */
  progress(requestId, progress, { total, message } = {}) {
    const payload = { progressToken: requestId, progress }
    if (total !== undefined) payload.total = total
    if (message !== undefined) payload.message = message
    this.channel.sendEvent(PROGRESS_EVENT, payload)
  }

  /** Answers request `requestId` by hand (for a request left pending by `respond.never()`). */
  respond(requestId, result) {
    this.channel.sendResponse(requestId, result)
  }

  /** Fails request `requestId` by hand, with optional `code` / `data`. */
  fail(requestId, message, details) {
    this.channel.sendError(requestId, message, details)
  }

  /**
   * Appends an entry the protocol does not accept to the backend's outbox (default: a message of
   * an unknown type). The frontend reports it (`EBADMSG`, naming its index and id) and keeps
   * receiving the good messages around it. Returns the entry.
   */
  writeMalformed(entry = { id: crypto.randomUUID(), timestamp: Date.now(), type: 'bogus', payload: null }) {
    const file = path.join(this.channel.dir, FILES.backendOutbox)
    const messages = JSON.parse(fs.readFileSync(file, 'utf8') || '[]')
    messages.push(entry)
    this.#replace(file, JSON.stringify(messages, null, 2))
    return entry
  }

  /** Replaces the backend's outbox with `text` as it is (e.g. not JSON at all). */
  writeRaw(text) {
    this.#replace(path.join(this.channel.dir, FILES.backendOutbox), text)
  }

  /**
   * The backend goes away: it stops answering (handlers still running are dropped) and closes
   * its channel. With `announce: true` it first sends `backend_shutdown` (`{ pid }`), as a peer
   * that closes cleanly does; without it, it vanishes as a crashed peer would.
   */
  disappear({ announce = false } = {}) {
    if (this.#gone) return
    if (announce) this.channel.sendEvent('backend_shutdown', { pid: process.pid })
    this.#gone = true
    this.#running.closeAll()
    this.channel.close()
  }

  #replace(file, text) {
    const tmp = `${file}.${process.pid}.testing.tmp`
    fs.writeFileSync(tmp, text, { mode: 0o600 })
    // Windows refuses to replace a file another handle has open (the frontend may be reading
    // it this very moment): retry briefly, as the channel's own writer does.
    for (let attempt = 1; ; attempt++) {
      try {
        fs.renameSync(tmp, file)
        return
      } catch (error) {
        if (attempt >= 200 || !['EPERM', 'EACCES', 'EBUSY'].includes(error.code)) {
          fs.rmSync(tmp, { force: true })
          throw error
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
      }
    }
  }

  async #dispatch(message) {
    this.requests.push(message)
    const waiter = this.#waiters.find((w) => w.matches(message))
    if (waiter) {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
      this.#claimed.add(message)
      waiter.resolve(message)
    }
    const handler = this.#handlers.get(message.method)
    if (!handler) {
      this.#send(() => this.channel.sendError(message.id, `unknown method: ${message.method}`))
      return
    }
    const { context, done } = this.#running.start(message)
    // The kit's own name for the request's id, besides the message's `id`.
    Object.defineProperty(context, 'requestId', { value: message.id })
    let result
    try {
      result = await handler(message.payload, context)
    } catch (error) {
      done()
      const [text, details] = errorDetails(error)
      this.#send(() => this.channel.sendError(message.id, text, details))
      return
    }
    done()
    this.#send(() => this.channel.sendResponse(message.id, result))
  }

  #send(send) {
    if (this.#gone || this.channel.closed) return
    try {
      send()
    } catch (error) {
      this.channel.emit('error', error)
    }
  }
}

/**
 * A real frontend (`channel`) and a real backend (`backend`, scripted) over a new temporary
 * directory (`dir`). `close()` (or `await using`) closes both and removes the directory.
 *
 * @param {object} [setup]
 * @param {Record<string, Function>} [setup.handlers]  the backend's handlers
 * @param {object} [setup.options]  channel options for both ends
 * @param {object} [setup.backendOptions]  options of the backend only (over `options`)
 */
function createTestChannel({ handlers = {}, options = {}, backendOptions } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-testing-'))
  const dir = path.join(root, 'channel')
  let backendChannel = null
  let channel = null
  try {
    backendChannel = FileChannel.backend(dir, { ...options, ...backendOptions })
    channel = FileChannel.frontend(dir, options)
  } catch (error) {
    backendChannel?.close()
    removeDir(root)
    throw error
  }
  const backend = new TestBackend(backendChannel).serve(handlers)
  let closed = false
  const close = () => {
    if (closed) return
    closed = true
    channel.close()
    backend.disappear()
    removeDir(root)
  }
  const testChannel = { channel, backend, dir, close }
  testChannel[DISPOSE] = close
  testChannel[ASYNC_DISPOSE] = async () => close()
  return testChannel
}

module.exports = { createTestChannel, respond, TestBackend, PROGRESS_EVENT }
