'use strict'

// The second argument of a request handler (`handle(method, (params, context) => ...)`): the
// request message's own fields (so handlers written as `(params, message)` keep working), plus,
// not enumerable, `message` (the request), `signal` (aborts when the requester sends
// `task.cancel` for this request, or the channel closes) and `progress(progress, { total,
// message })`, which sends `task.progress` (PROTOCOL-EXTENSIONS.md).

const { codedError, describe } = require('./errors.js')
const { afterThisJob } = require('./scheduling.js')

/** Handlers running now, by request id. */
class RunningHandlers {
  #running = new Map()
  #sendProgress
  // Progress reported during this job, sent together after it (or before the answer): a render
  // loop reporting per tile costs a push, and the writer gets one batch, every update kept.
  #progress = []

  /** `sendProgress(payloads)` sends a `task.progress` event for each payload, in order. */
  constructor({ sendProgress }) {
    this.#sendProgress = sendProgress
  }

  get size() {
    return this.#running.size
  }

  /** The context for `request`, and `done()` to call once the handler has settled. */
  start(request) {
    // The AbortController is made when the handler first asks for `signal` (most never do):
    // until then an abort is only noted.
    const entry = { controller: undefined, aborted: false, reason: undefined, answered: false }
    this.#running.set(request.id, entry)
    const signal = () => {
      if (entry.controller === undefined) {
        entry.controller = new AbortController()
        if (entry.aborted) entry.controller.abort(entry.reason)
      }
      return entry.controller.signal
    }
    const progress = (value, options = {}) => {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw codedError('EINVAL', `progress must be a finite number, got ${describe(value)}`, TypeError)
      }
      const { total, message } = options ?? {}
      if (total !== undefined && (typeof total !== 'number' || !Number.isFinite(total))) {
        throw codedError('EINVAL', `total must be a finite number, got ${describe(total)}`, TypeError)
      }
      if (message !== undefined && typeof message !== 'string') {
        throw codedError('EINVAL', `message must be a string, got ${describe(message)}`, TypeError)
      }
      // After the answer, progress means nothing to the requester.
      if (entry.answered || entry.aborted) return
      const payload = { progressToken: request.id, progress: value }
      if (total !== undefined) payload.total = total
      if (message !== undefined) payload.message = message
      this.#progress.push(payload)
      if (this.#progress.length === 1) afterThisJob(() => this.flushProgress())
    }
    const context = new HandlerContext(request, signal, progress)
    const done = () => {
      // Its progress goes before its answer.
      this.flushProgress()
      entry.answered = true
      if (this.#running.get(request.id) === entry) this.#running.delete(request.id)
    }
    return { context, done }
  }

  /** A `task.cancel` event: aborts the handler it names, if it runs here. */
  cancel(message) {
    const { requestId, reason } = message.payload ?? {}
    const entry = this.#running.get(requestId)
    if (!entry) return false
    const text = typeof reason === 'string' ? reason : undefined
    const error = codedError(
      'ECANCELED',
      `request ${requestId} was cancelled by the requester${text ? `: ${text}` : ''}`,
    )
    error.name = 'AbortError'
    error.reason = text
    abort(entry, error)
    return true
  }

  /** Sends the progress reported so far. */
  flushProgress() {
    if (this.#progress.length === 0) return
    const payloads = this.#progress
    this.#progress = []
    this.#sendProgress(payloads)
  }

  /** The channel closes: every running handler's signal aborts. */
  closeAll() {
    this.flushProgress()
    for (const entry of this.#running.values()) abort(entry, codedError('ECLOSED', 'the channel is closed'))
    this.#running.clear()
  }
}

const RESERVED = ['message', 'signal', 'progress']

/**
 * A handler's second argument: the request's own fields, and (not enumerable, on the prototype)
 * `message`, `signal` and `progress`.
 */
class HandlerContext {
  #message
  #signal
  #progress

  constructor(request, signal, progress) {
    // Its fields, but never over the accessors below (a request from the addon has none of
    // these names; one made by hand could).
    if (RESERVED.some((key) => Object.hasOwn(request, key))) {
      for (const [key, value] of Object.entries(request)) if (!RESERVED.includes(key)) this[key] = value
    } else {
      Object.assign(this, request)
    }
    this.#message = request
    this.#signal = signal
    this.#progress = progress
  }

  get message() {
    return this.#message
  }

  get signal() {
    return this.#signal()
  }

  get progress() {
    return this.#progress
  }
}

/** Aborts a running handler's signal, or notes the abort for when it is asked for. */
function abort(entry, reason) {
  if (entry.aborted) return
  entry.aborted = true
  entry.reason = reason
  entry.controller?.abort(reason)
}

module.exports = { RunningHandlers }
