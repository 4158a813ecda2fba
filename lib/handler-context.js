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
    const controller = new AbortController()
    const entry = { controller, answered: false }
    this.#running.set(request.id, entry)
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
      if (entry.answered || controller.signal.aborted) return
      const payload = { progressToken: request.id, progress: value }
      if (total !== undefined) payload.total = total
      if (message !== undefined) payload.message = message
      this.#progress.push(payload)
      if (this.#progress.length === 1) afterThisJob(() => this.flushProgress())
    }
    const context = { ...request }
    Object.defineProperties(context, {
      message: { value: request },
      signal: { value: controller.signal },
      progress: { value: progress },
    })
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
    entry.controller.abort(error)
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
    for (const entry of this.#running.values()) {
      entry.controller.abort(codedError('ECLOSED', 'the channel is closed'))
    }
    this.#running.clear()
  }
}

module.exports = { RunningHandlers }
