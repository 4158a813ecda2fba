'use strict'

// The baseline a Node user would write by hand: the ipckit file-channel protocol in plain
// JavaScript (fs, JSON, fs.watch), written to be correct and reasonably efficient, without the
// tricks of the native core.
//
// - send: take the `.lock` file with O_CREAT|O_EXCL (50 tries, 10 ms apart, stale after 5 s),
//   read + JSON.parse the outbox, append, keep the newest 100, JSON.stringify(…, null, 2) to
//   `<stem>.tmp`, rename over the outbox, delete the lock. Payload keys are sorted before
//   writing, as the reference does; messages read back from the file keep their (sorted) order.
// - recv: read the inbox; if the bytes equal the last read, nothing is new (no parse); else
//   JSON.parse and return the messages whose id was not in the previous snapshot (the file is a
//   sliding window, so the previous snapshot's ids are enough for exactly-once).
// - waiting/listening: fs.watch on the directory (the files are replaced by rename); every event
//   naming the inbox re-reads it and routes new messages: pending waits first, then handlers and
//   listeners, else the recv() queue.
//
// Known simplifications (fine for the benchmark): floats are written as JavaScript prints them
// (`1` rather than serde's `1.0`), integer-like object keys follow JavaScript's property order.

const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const { EventEmitter } = require('node:events')

const BACKEND_OUTBOX = 'backend_to_frontend.json'
const FRONTEND_OUTBOX = 'frontend_to_backend.json'
const MAX_MESSAGES = 100
const LOCK_TRIES = 50
const LOCK_PAUSE_MS = 10
const STALE_LOCK_MS = 5000
const TYPES = new Set(['request', 'response', 'event'])

const sleepCell = new Int32Array(new SharedArrayBuffer(4))
function sleepSync(ms) {
  Atomics.wait(sleepCell, 0, 0, ms)
}

function sortKeys(value) {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(sortKeys)
  const sorted = {}
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key])
  return sorted
}

/** A message object with the fields in the on-disk order. */
function makeMessage(type, { method, replyTo, payload, error }) {
  const message = { id: crypto.randomUUID(), timestamp: Date.now(), type }
  if (replyTo !== undefined) message.reply_to = replyTo
  if (method !== undefined) message.method = method
  message.payload = payload === undefined ? null : sortKeys(payload)
  if (error !== undefined) message.error = error
  return message
}

function isMessage(m) {
  return (
    m !== null &&
    typeof m === 'object' &&
    typeof m.id === 'string' &&
    typeof m.timestamp === 'number' &&
    TYPES.has(m.type) &&
    'payload' in m
  )
}

function createIfMissing(file, content) {
  try {
    fs.writeFileSync(file, content, { flag: 'wx' })
  } catch (error) {
    if (error.code !== 'EEXIST') throw error
  }
}

class PureJsChannel extends EventEmitter {
  static frontend(dir) {
    return new PureJsChannel(dir, 'frontend')
  }

  static backend(dir) {
    return new PureJsChannel(dir, 'backend')
  }

  constructor(dir, role) {
    super()
    this.dir = dir
    this.role = role
    const outName = role === 'frontend' ? FRONTEND_OUTBOX : BACKEND_OUTBOX
    this.inboxName = role === 'frontend' ? BACKEND_OUTBOX : FRONTEND_OUTBOX
    this.outbox = path.join(dir, outName)
    this.inbox = path.join(dir, this.inboxName)
    const stem = outName.replace(/\.json$/, '')
    this.lockPath = path.join(dir, `${stem}.lock`)
    this.tmpPath = path.join(dir, `${stem}.tmp`)
    fs.mkdirSync(dir, { recursive: true })
    const info = { created: Date.now(), protocol: 'file-ipc', version: '1.0' }
    createIfMissing(path.join(dir, '.channel_info'), JSON.stringify(info, null, 2))
    createIfMissing(this.outbox, '[]')
    createIfMissing(this.inbox, '[]')
    this.lastBytes = null
    this.lastIds = new Set()
    this.queue = []
    this.waiters = new Map() // request id -> { resolve, reject, timer }
    this.handlers = new Map()
    this.watcher = null
    this.closed = false
  }

  // ---- sending ----

  sendRequest(method, params) {
    const message = makeMessage('request', { method, payload: params })
    this.#append(message)
    return message.id
  }

  sendResponse(requestId, result) {
    this.#append(makeMessage('response', { replyTo: requestId, payload: result }))
  }

  sendError(requestId, error) {
    this.#append(makeMessage('response', { replyTo: requestId, payload: null, error: String(error) }))
  }

  sendEvent(name, payload) {
    this.#append(makeMessage('event', { method: name, payload }))
  }

  #append(message) {
    this.#lock()
    try {
      let messages
      try {
        messages = JSON.parse(fs.readFileSync(this.outbox, 'utf8') || '[]')
        if (!Array.isArray(messages)) messages = []
      } catch (error) {
        if (error.code !== 'ENOENT' && !(error instanceof SyntaxError)) throw error
        messages = []
      }
      messages.push(message)
      if (messages.length > MAX_MESSAGES) messages = messages.slice(messages.length - MAX_MESSAGES)
      fs.writeFileSync(this.tmpPath, JSON.stringify(messages, null, 2))
      fs.renameSync(this.tmpPath, this.outbox)
    } finally {
      fs.rmSync(this.lockPath, { force: true })
    }
  }

  #lock() {
    for (let attempt = 0; ; attempt++) {
      try {
        const fd = fs.openSync(this.lockPath, 'wx')
        fs.writeSync(fd, `${process.pid}\n`)
        fs.closeSync(fd)
        return
      } catch (error) {
        if (error.code !== 'EEXIST') throw error
      }
      try {
        if (Date.now() - fs.statSync(this.lockPath).mtimeMs > STALE_LOCK_MS) {
          fs.rmSync(this.lockPath, { force: true })
          continue
        }
      } catch (error) {
        if (error.code === 'ENOENT') continue
        throw error
      }
      if (attempt + 1 >= LOCK_TRIES) {
        const error = new Error(`timed out waiting for the lock ${this.lockPath}`)
        error.code = 'ELOCKED'
        throw error
      }
      sleepSync(LOCK_PAUSE_MS)
    }
  }

  // ---- receiving ----

  /** New messages, each exactly once, oldest first. */
  recv() {
    this.#read()
    const out = this.queue
    this.queue = []
    return out
  }

  /** Reads the inbox and routes what is new. */
  #read() {
    let bytes
    try {
      bytes = fs.readFileSync(this.inbox)
    } catch (error) {
      if (error.code === 'ENOENT') return
      throw error
    }
    if (this.lastBytes !== null && bytes.equals(this.lastBytes)) return
    let messages
    try {
      messages = JSON.parse(bytes.length === 0 ? '[]' : bytes.toString('utf8'))
    } catch (error) {
      // A file caught mid-write by a non-atomic writer; the next change re-reads it.
      this.emit('warning', error)
      return
    }
    if (!Array.isArray(messages)) return
    this.lastBytes = bytes
    const ids = new Set()
    for (const message of messages) {
      if (!isMessage(message)) continue
      ids.add(message.id)
      if (!this.lastIds.has(message.id)) this.#route(message)
    }
    this.lastIds = ids
  }

  #route(message) {
    if (message.type === 'response') {
      const waiter = this.waiters.get(message.reply_to)
      if (waiter) {
        this.waiters.delete(message.reply_to)
        clearTimeout(waiter.timer)
        waiter.resolve(message)
        this.#syncWatch()
        return
      }
    }
    if (message.type === 'request' && this.handlers.has(message.method)) {
      this.#answer(message)
      return
    }
    if (this.listenerCount('message') > 0 || this.listenerCount(message.type) > 0) {
      this.emit('message', message)
      this.emit(message.type, message)
      return
    }
    this.queue.push(message)
  }

  async #answer(request) {
    try {
      const result = await this.handlers.get(request.method)(request.payload, request)
      if (!this.closed) this.sendResponse(request.id, result)
    } catch (error) {
      if (!this.closed) this.sendError(request.id, error instanceof Error ? error.message : error)
    }
  }

  waitResponse(requestId, timeoutMs = 30000) {
    const index = this.queue.findIndex((m) => m.type === 'response' && m.reply_to === requestId)
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0])
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId)
        this.#syncWatch()
        const error = new Error(`no response to ${requestId} within ${timeoutMs} ms`)
        error.code = 'ETIMEDOUT'
        reject(error)
      }, timeoutMs)
      this.waiters.set(requestId, { resolve, reject, timer })
      this.#syncWatch()
      this.#read()
    })
  }

  async request(method, params, timeoutMs) {
    const id = this.sendRequest(method, params)
    const response = await this.waitResponse(id, timeoutMs)
    if (response.error !== undefined) throw new Error(response.error)
    return response.payload
  }

  handle(method, handler) {
    this.handlers.set(method, handler)
    this.#syncWatch()
    this.#read()
    return this
  }

  on(event, listener) {
    super.on(event, listener)
    if (event !== 'warning') {
      this.#syncWatch()
      this.#read()
    }
    return this
  }

  #syncWatch() {
    const needed =
      !this.closed &&
      (this.waiters.size > 0 ||
        this.handlers.size > 0 ||
        ['message', 'request', 'response', 'event'].some((e) => this.listenerCount(e) > 0))
    if (needed && !this.watcher) {
      this.watcher = fs.watch(this.dir, (eventType, filename) => {
        if (filename === null || filename === this.inboxName) this.#read()
      })
    } else if (!needed && this.watcher) {
      this.watcher.close()
      this.watcher = null
    }
  }

  close() {
    if (this.closed) return
    this.closed = true
    for (const [id, waiter] of this.waiters) {
      clearTimeout(waiter.timer)
      const error = new Error(`channel closed while waiting for ${id}`)
      error.code = 'ECLOSED'
      waiter.reject(error)
    }
    this.waiters.clear()
    this.handlers.clear()
    this.#syncWatch()
  }
}

module.exports = { PureJsChannel, sortKeys, makeMessage, BACKEND_OUTBOX, FRONTEND_OUTBOX }
