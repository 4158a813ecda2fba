'use strict'

// FileChannel: the public class. Protocol work happens in the native core (lib/addon.js); this
// layer turns payloads into JSON text, gives promise rejections the caller's stack, and offers
// Node idioms: a real EventEmitter, async iteration, AbortSignal, request handlers, disposal.

const { EventEmitter } = require('node:events')
const native = require('./addon.js')
const {
  DISPOSE,
  ASYNC_DISPOSE,
  codedError,
  abortError,
  describe,
  remoteError,
  callerStack,
  traced,
} = require('./errors.js')
const { toJsonText } = require('./json.js')
const { Handlers, answer, errorDetails } = require('./handlers.js')
const { createMessageIterator } = require('./message-iterator.js')
const { DEFAULTS, LIMITS } = require('./constants.js')
const { Calls, checkCallOptions, peerGoneError, PROGRESS_EVENT, CANCEL_EVENT } = require('./progress.js')
const { PeerPresence, Announcer } = require('./presence.js')
const { RunningHandlers } = require('./handler-context.js')
const { afterThisJob, rethrowUncaught } = require('./scheduling.js')

const { NativeFileChannel } = native

function requireString(value, name) {
  if (typeof value !== 'string') {
    throw codedError('EINVAL', `${name} must be a string, got ${describe(value)}`, TypeError)
  }
  requireWellFormed(value, name)
}

// A lone surrogate would reach the file as U+FFFD: refused everywhere, as in payloads.
function requireWellFormed(text, name) {
  if (!text.isWellFormed()) {
    throw codedError('EINVAL', `${name} contains a lone surrogate, which UTF-8 JSON cannot represent`, TypeError)
  }
}

// Runs `start`, turning a synchronous throw into a rejected promise: promise-returning methods
// never throw.
function promising(start) {
  try {
    return Promise.resolve(start())
  } catch (error) {
    return Promise.reject(error)
  }
}

class FileChannel extends EventEmitter {
  #native
  #promises
  #handlers = new Handlers()
  #iterators = new Set()
  // Long calls (lib/progress.js, lib/presence.js, lib/handler-context.js): request()s in
  // flight, the peer's presence, our announcements, handlers running.
  #calls
  #presence
  #announcer
  #running
  // Messages that reached JS for listeners that had just left, in order: recv() returns them
  // before what the core queued after them.
  #held = []
  // This channel in `FileChannel.#open`.
  #ref

  // Channels not closed yet, weakly: at the process's 'exit' their sends still queued for the
  // native writer thread (which dies with the process) are written on the spot.
  static #open = new Set()
  static #forget = new FinalizationRegistry((ref) => FileChannel.#open.delete(ref))
  static #exitHooked = false

  static #flushAllBeforeExit() {
    let unwritten = 0
    for (const ref of FileChannel.#open) {
      const channel = ref.deref()
      if (channel && !channel.closed) unwritten += channel.#native.flushBeforeExit()
    }
    if (unwritten > 0) {
      // Synchronous: nothing asynchronous runs after 'exit'.
      process.stderr.write(
        `ipckit: ${unwritten} queued send(s) could not be written before the process exited (the outbox stayed locked or full)\n`,
      )
    }
  }

  /**
   * Opens (creating if needed) the frontend end of the channel in `dir`.
   * @param {string} dir
   * @param {import('../index').ChannelOptions} [options]
   */
  static frontend(dir, options) {
    return new FileChannel(dir, 'frontend', options)
  }

  /**
   * Opens (creating if needed) the backend end of the channel in `dir`.
   * @param {string} dir
   * @param {import('../index').ChannelOptions} [options]
   */
  static backend(dir, options) {
    return new FileChannel(dir, 'backend', options)
  }

  constructor(dir, role, options) {
    super({ captureRejections: false })
    requireString(dir, 'dir')
    // Options are checked by the core, once, before anything is created.
    this.#native = new NativeFileChannel(dir, role, (batch) => this.#deliver(batch), options)
    this.#startLongCalls()
    if (!FileChannel.#exitHooked) {
      FileChannel.#exitHooked = true
      process.once('exit', FileChannel.#flushAllBeforeExit)
    }
    this.#ref = new WeakRef(this)
    FileChannel.#open.add(this.#ref)
    FileChannel.#forget.register(this, this.#ref, this.#ref)
  }

  #startLongCalls() {
    const report = (error) => {
      if (!this.closed) this.#problem(error)
    }
    const sendEvent = (name, payload) => this.promises.sendEvent(name, payload).catch(report)
    this.#calls = new Calls({
      cancelWait: (token, code, text) => this.#native.cancelWait(token, code, text),
      sendCancel: (requestId, reason) => {
        if (!this.closed) sendEvent(CANCEL_EVENT, reason === undefined ? { requestId } : { requestId, reason })
      },
      fail: (error) => this.#fail(error),
    })
    this.#presence = new PeerPresence({
      check: () => this.#native.checkPeer(),
      onChange: (status) => {
        this.#safely(() => this.emit('peer', status))
        if (status.state === 'gone') this.#calls.peerGone(status)
      },
    })
    this.#announcer = new Announcer(this.role, {
      methods: () => this.#handlers.names(),
      send: sendEvent,
      sendNow: (name, payload) => this.sendEvent(name, payload),
      host: () => native.hostName(),
    })
    this.#running = new RunningHandlers({
      sendProgress: (payloads) => {
        if (this.closed) return
        // One crossing and one promise for the job's updates (written in order, each kept).
        this.#native.sendEventsQueued(PROGRESS_EVENT, JSON.stringify(payloads)).catch(report)
      },
    })
  }

  /**
   * What is known of the other side: `{ state: 'unknown' | 'ready' | 'gone', pid?, host?,
   * methods? }`, checked now (its announcements in the inbox, the heartbeat of its
   * acknowledgement file, its process on this host).
   */
  get peer() {
    return this.#presence.current()
  }

  /**
   * Resolves with `channel.peer` once the peer is ready (at once if it is): it announced itself
   * (`backend_ready` / `frontend_ready`) or publishes a live acknowledgement heartbeat. Rejects
   * with `ETIMEDOUT` after `timeoutMs` (default `DEFAULTS.timeoutMs`), `ABORT_ERR`, `ECLOSED`.
   */
  ready(options = {}) {
    const stack = callerStack(this.ready)
    return traced(
      promising(() => {
        const ready = this.#presence.ready(options, LIMITS.maxTimeoutMs, DEFAULTS.timeoutMs)
        this.#syncListening()
        return ready.finally(() => this.#syncListening())
      }),
      stack,
    )
  }

  /**
   * `{ droppedResponses, droppedProgress, droppedRequests }`: replies that came after their wait
   * ended or belong to an earlier session, and requests that must not run again.
   */
  get stats() {
    return this.#native.stats()
  }

  get dir() {
    return this.#native.dir
  }

  get role() {
    return this.#native.role
  }

  get closed() {
    return this.#native.closed
  }

  get pendingWaits() {
    return this.#native.pendingWaits
  }

  sendRequest(method, params) {
    requireString(method, 'method')
    return this.#native.sendRequest(method, toJsonText(params, 'params'))
  }

  sendResponse(requestId, result) {
    requireString(requestId, 'requestId')
    this.#native.sendResponse(requestId, toJsonText(result, 'result'))
  }

  /**
   * Sends an error response. `message` is the text (an Error gives its message, and its `code`
   * and `data`); `details.code` and `details.data` set the `error_code` and `error_data`
   * extension fields explicitly.
   */
  sendError(requestId, message, details) {
    requireString(requestId, 'requestId')
    const { text, code, dataJson } = this.#errorFields(message, details)
    this.#native.sendError(requestId, text, code, dataJson)
  }

  /** An error response's text, `error_code` and `error_data` (as JSON text, or undefined). */
  #errorFields(message, details) {
    let [text, { code, data }] = errorDetails(message)
    if (details !== undefined && details !== null) {
      if (typeof details !== 'object') {
        throw codedError('EINVAL', `details must be an object, got ${describe(details)}`, TypeError)
      }
      if (details.code !== undefined) {
        requireString(details.code, 'details.code')
        code = details.code
      }
      if (details.data !== undefined) data = details.data
    }
    requireWellFormed(text, 'the error message')
    const dataJson = data === null || data === undefined ? undefined : toJsonText(data, 'details.data')
    return { text, code, dataJson }
  }

  sendEvent(name, payload) {
    requireString(name, 'name')
    this.#native.sendEvent(name, toJsonText(payload, 'payload'))
  }

  recv() {
    const held = this.#held.splice(0)
    try {
      return held.length === 0 ? this.#native.recv() : held.concat(this.#native.recv())
    } catch (error) {
      // A pending problem is thrown once; the messages stay for the next recv().
      this.#held.unshift(...held)
      throw error
    }
  }

  recvOne() {
    if (this.#held.length > 0) return this.#held.shift()
    const [message] = this.#native.recv(1)
    return message ?? null
  }

  waitResponse(requestId, timeoutMs, options = {}) {
    const stack = callerStack(this.waitResponse)
    return traced(
      promising(() => {
        requireString(requestId, 'requestId')
        const signal = options?.signal
        if (signal?.aborted) throw abortError(signal)
        const at = this.#held.findIndex((m) => m.type === 'response' && m.replyTo === requestId)
        if (at !== -1) return this.#held.splice(at, 1)[0]
        if (!signal) return this.#native.waitResponse(requestId, timeoutMs)
        const { token, response } = this.#native.beginWait(requestId, timeoutMs)
        return this.#cancelOnAbort(token, response, signal)
      }),
      stack,
    )
  }

  request(method, params, options = {}) {
    const stack = callerStack(this.request)
    return traced(
      promising(() => {
        requireString(method, 'method')
        const { timeoutMs, signal, onProgress, idleTimeoutMs, waitForPeer } = options ?? {}
        checkCallOptions({ onProgress, idleTimeoutMs, waitForPeer }, LIMITS.maxTimeoutMs)
        if (signal?.aborted) throw abortError(signal)
        const paramsJson = toJsonText(params, 'params')
        // Written by the native writer thread: nothing here waits for a lock or the disk.
        const start = (timeout) => {
          const started = this.#native.beginRequest(method, paramsJson, timeout)
          return this.#result(started, method, { signal, onProgress, idleTimeoutMs })
        }
        // A peer known to be gone answers nothing: fail now, or wait for it on purpose.
        const gone = this.#presence.gone()
        if (!gone) return start(timeoutMs)
        if (!waitForPeer) throw peerGoneError(gone, method)
        return this.#whenPeerBack(gone, method, timeoutMs ?? DEFAULTS.timeoutMs, signal, start)
      }),
      stack,
    )
  }

  /**
   * Like the synchronous sends, but when slow acknowledging readers have filled the backlog
   * (`ENOBUFS`) it waits for room instead of throwing. Resolves with the id for requests.
   * @param {'request' | 'response' | 'error' | 'event'} kind
   */
  sendAsync(kind, target, payload, options = {}) {
    const stack = callerStack(this.sendAsync)
    return traced(
      promising(() => {
        const send = {
          request: () => this.promises.sendRequest(target, payload, options),
          response: () => this.promises.sendResponse(target, payload, options),
          error: () => this.promises.sendError(target, payload, undefined, options),
          event: () => this.promises.sendEvent(target, payload, options),
        }[kind]
        if (!send) throw codedError('EINVAL', `kind must be request, response, error or event, got ${describe(kind)}`)
        return send()
      }),
      stack,
    )
  }

  /**
   * The sends as promises, like `fs.promises`: the file I/O, lock waits and retries happen on
   * a native writer thread, never on the JavaScript thread, and messages queued meanwhile go
   * out together in one write. Each resolves with the message id once it is written; a send
   * that finds the outbox locked (`ELOCKED`), held open (`EBUSY`) or full (`ENOBUFS`) is
   * retried until `timeoutMs` (default `DEFAULTS.timeoutMs`), then rejects with that error.
   */
  get promises() {
    const channel = this
    const call = (fn, name, stack) => traced(promising(fn), stack ?? callerStack(name))
    return (this.#promises ??= Object.freeze({
      sendRequest(method, params, options = {}) {
        const stack = callerStack(this.sendRequest)
        return call(
          () => {
            requireString(method, 'method')
            return channel.#queued('request', method, toJsonText(params, 'params'), options ?? {})
          },
          null,
          stack,
        )
      },
      sendResponse(requestId, result, options = {}) {
        const stack = callerStack(this.sendResponse)
        return call(
          () => {
            requireString(requestId, 'requestId')
            return channel.#queued('response', requestId, toJsonText(result, 'result'), options ?? {})
          },
          null,
          stack,
        )
      },
      sendError(requestId, message, details, options = {}) {
        const stack = callerStack(this.sendError)
        return call(
          () => {
            requireString(requestId, 'requestId')
            const { text, code, dataJson } = channel.#errorFields(message, details)
            return channel.#queued('error', requestId, JSON.stringify(text), { ...(options ?? {}), code, dataJson })
          },
          null,
          stack,
        )
      },
      sendEvent(name, payload, options = {}) {
        const stack = callerStack(this.sendEvent)
        return call(
          () => {
            requireString(name, 'name')
            return channel.#queued('event', name, toJsonText(payload, 'payload'), options ?? {})
          },
          null,
          stack,
        )
      },
    }))
  }

  /**
   * Answers requests for `method` with `handler(params, message)`: its (awaited) return value
   * becomes the response; a thrown error an error response with its message (and its `code`
   * and `data` as `error_code` / `error_data`).
   */
  handle(method, handler) {
    requireString(method, 'method')
    this.#handlers.set(method, handler)
    this.#syncListening()
    this.#announcer.changed()
    return this
  }

  /** `handle()` for each method of an object of handlers. */
  serve(handlers) {
    for (const [method, handler] of Object.entries(handlers)) this.handle(method, handler)
    return this
  }

  /** Stops answering `method` (or every method). */
  unhandle(method) {
    this.#handlers.delete(method)
    this.#syncListening()
    this.#announcer.changed()
    return this
  }

  /**
   * Incoming messages as an async iterator, like `events.on()`: ends when the channel closes
   * (or on `break`); rejects with an AbortError when `signal` aborts.
   */
  messages(options = {}) {
    const signal = options?.signal
    let sink = null
    const created = createMessageIterator(
      {
        attach: (s) => {
          sink = s
          if (this.closed) return
          this.#iterators.add(s)
          this.#syncListening()
        },
        detach: () => {
          this.#iterators.delete(sink)
          this.#syncListening()
        },
        requeue: (messages) => {
          // Older than anything held since: they go first.
          if (!this.closed) this.#held.unshift(...messages)
        },
      },
      signal,
    )
    if (this.closed) created.sink.end()
    return created.iterator
  }

  on(event, listener) {
    super.on(event, listener)
    this.#syncListening()
    return this
  }

  addListener(event, listener) {
    return this.on(event, listener)
  }

  prependListener(event, listener) {
    super.prependListener(event, listener)
    this.#syncListening()
    return this
  }

  removeListener(event, listener) {
    super.removeListener(event, listener)
    this.#syncListening()
    return this
  }

  off(event, listener) {
    return this.removeListener(event, listener)
  }

  removeAllListeners(...event) {
    super.removeAllListeners(...event)
    this.#syncListening()
    return this
  }

  /** Keep the process alive while this channel waits or listens (the default). */
  ref() {
    this.#native.ref()
    this.#presence.setReferenced(true)
    return this
  }

  /** Let the process exit even while this channel waits or listens. */
  unref() {
    this.#native.unref()
    this.#presence.setReferenced(false)
    return this
  }

  clear() {
    this.#native.clear()
  }

  /**
   * Rejects pending waits with ECLOSED, ends iterators, releases the watcher, then emits
   * `'close'` (once). Idempotent.
   */
  close() {
    const wasOpen = !this.closed
    let unsent = null
    if (wasOpen) {
      this.#running.closeAll()
      // What was sent before close() (a handler's last answer among them) is written now, and
      // our shutdown announcement after it: the peer never sees us go before our answers.
      try {
        this.#native.writeSentBeforeClose()
        this.#announcer.shutdown()
      } catch (error) {
        // The outbox was refused for lockTimeoutMs: the announcement would wait as long again
        // (the peer sees our heartbeat end instead).
        unsent = error
      }
    }
    this.#native.close()
    FileChannel.#open.delete(this.#ref)
    FileChannel.#forget.unregister(this.#ref)
    this.#presence.close()
    for (const sink of [...this.#iterators]) sink.end()
    this.#iterators.clear()
    if (unsent) this.#problem(unsent)
    if (wasOpen) this.emit('close')
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `FileChannel { role: '${this.role}', dir: '${this.dir}', closed: ${this.closed} }`
  }

  // request({ waitForPeer: true }) to a gone peer: waits for it to be ready, then starts the call
  // with what is left of its time.
  async #whenPeerBack(gone, method, budgetMs, signal, start) {
    const since = performance.now()
    try {
      await this.ready({ timeoutMs: budgetMs, signal })
    } catch (error) {
      if (error?.code !== 'ETIMEDOUT') throw error
      const who = gone.pid === undefined ? 'the peer' : `the peer (pid ${gone.pid})`
      const timeout = codedError(
        'ETIMEDOUT',
        `${who} is gone and no peer came back within ${budgetMs} ms; ${method} was not sent`,
      )
      timeout.method = method
      throw timeout
    }
    return start(Math.max(1, Math.ceil(budgetMs - (performance.now() - since))))
  }

  // The result of a started request: the payload, or EREMOTE for an error response.
  #result(started, method, options) {
    const response = this.#calls.follow(started, method, options)
    return response.then((message) => {
      if (message.error !== undefined) throw remoteError(message, method, started.id)
      return message.payload
    })
  }

  // A queued send's promise, rejecting with an AbortError when `signal` aborts first (the
  // message may still be written: it was handed to the writer thread).
  #queued(kind, target, payloadJson, { timeoutMs, signal, code, dataJson } = {}) {
    if (signal?.aborted) throw abortError(signal)
    const sent = this.#native.sendQueued(kind, target, payloadJson, timeoutMs, code, dataJson)
    if (!signal) return sent
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(abortError(signal))
      signal.addEventListener('abort', onAbort, { once: true })
      sent.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
    })
  }

  #cancelOnAbort(token, response, signal) {
    const onAbort = () => this.#native.cancelWait(token, 'ABORT_ERR', 'The operation was aborted')
    signal.addEventListener('abort', onAbort, { once: true })
    return response.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        return value
      },
      (error) => {
        signal.removeEventListener('abort', onAbort)
        if (error?.code === 'ABORT_ERR') throw abortError(signal)
        throw error
      },
    )
  }

  #syncListening() {
    // Listener changes may come from EventEmitter's constructor, before #native exists.
    if (this.#native === undefined || this.closed) return
    const has = (event) => this.listenerCount(event) > 0
    const all = has('message') || this.#iterators.size > 0
    const requests = all || has('request') || this.#handlers.size > 0
    const responses = all || has('response')
    const events = all || has('event')
    // Problems go to 'error' listeners; a channel that delivers to listeners reports them as
    // warnings without one. A recv()-only channel throws them from recv().
    const presence = has('peer') || this.#presence?.waiting > 0
    this.#native.setListening({
      requests,
      responses,
      events,
      errors: has('error') || requests || responses || events,
      presence,
      cancels: this.#handlers.size > 0,
    })
  }

  #deliver({ messages, errors, progress, cancels, peers }) {
    for (const error of errors) this.#problem(error)
    // Progress now, before the reactions to a response settled in this batch; cancels and
    // presence after the batch's messages (a request is running before its cancel is seen).
    for (const { token, message } of progress ?? []) this.#calls.progress(token, message)
    if (cancels || peers) afterThisJob(() => this.#deliverLongCalls(cancels, peers))
    // Messages routed to listeners just before the last one left (an iterator that ended, a
    // once listener that fired) have nobody to take them here: they go back to recv().
    const untaken = []
    for (const message of messages) {
      if (this.closed) return
      let taken = this.listenerCount('message') + this.listenerCount(message.type) > 0
      this.#safely(() => {
        this.emit('message', message)
        this.emit(message.type, message)
      })
      for (const sink of this.#iterators) taken = sink.push(message) || taken
      if (message.type === 'request' && this.#handlers.size > 0) {
        taken = true
        this.#answer(message)
      }
      if (!taken) untaken.push(message)
    }
    this.#held.push(...untaken)
  }

  // A throwing listener must not stop delivery: report it like Node reports listener errors.
  #safely(fn) {
    try {
      fn()
    } catch (error) {
      this.#fail(error)
    }
  }

  #fail(error) {
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', error)
        return
      } catch (thrown) {
        error = thrown
      }
    }
    rethrowUncaught(error)
  }

  // A problem with the channel (EBADMSG, ELOST, EWATCH): never fatal. Without an 'error'
  // listener it is a process warning, so that it is not silent.
  #problem(error) {
    if (this.listenerCount('error') > 0) {
      this.#fail(error)
      return
    }
    process.emitWarning(error.message, {
      type: 'IpckitWarning',
      code: error.code,
      detail: `FileChannel (${this.role}, ${this.dir}) has no 'error' listener; add one to handle this.`,
    })
  }

  #deliverLongCalls(cancels = [], peers = []) {
    for (const message of cancels) this.#running.cancel(message)
    if (!this.closed) this.#presence.update(peers)
  }

  // A handler's answers: queued for the writer thread like promises.sendResponse/sendError, but
  // with no promise, so that writing them does not wake this thread again; one that cannot be
  // written in time comes back as a problem. Bad input still throws here, synchronously.
  #replies = {
    sendResponse: (requestId, result) =>
      this.#native.sendReplyQueued('response', requestId, toJsonText(result, 'result')),
    sendError: (requestId, message, details) => {
      const { text, code, dataJson } = this.#errorFields(message, details)
      this.#native.sendReplyQueued('error', requestId, JSON.stringify(text), undefined, code, dataJson)
    },
  }

  #answer(request) {
    answer(this, this.#handlers, request, {
      sends: this.#replies,
      start: (request) => this.#running.start(request),
      unknown: () =>
        this.#handlers.size > 0 &&
        this.listenerCount('request') + this.listenerCount('message') === 0 &&
        this.#iterators.size === 0,
      // A reply that could not be written in time is reported, never thrown at the process.
      fail: (error) => this.#problem(error),
    })
  }
}

FileChannel.prototype[DISPOSE] = function dispose() {
  this.close()
}
FileChannel.prototype[ASYNC_DISPOSE] = async function asyncDispose() {
  this.close()
}

module.exports = { FileChannel }
