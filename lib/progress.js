'use strict'

// request()'s long-call options (PROTOCOL-EXTENSIONS.md, "progress, cancellation and presence"):
// `onProgress` gets the request's `task.progress` updates, `idleTimeoutMs` fails it when neither
// progress nor the response came for that long, and a caller that gives up (abort, timeout)
// sends `task.cancel` so that the handler can stop. The native core hands each request() its
// own progress events (they never reach 'event' listeners or recv()) and drops replies that
// arrive after the wait ended.

const { codedError, describe, abortError } = require('./errors.js')
const { setTimeout, clearTimeout } = require('./scheduling.js')

const PROGRESS_EVENT = 'task.progress'
const CANCEL_EVENT = 'task.cancel'

/** Checks request()'s `onProgress`, `idleTimeoutMs` and `waitForPeer`; throws EINVAL. */
function checkCallOptions({ onProgress, idleTimeoutMs, waitForPeer }, maxTimeoutMs) {
  if (waitForPeer !== undefined && typeof waitForPeer !== 'boolean') {
    throw codedError('EINVAL', `options.waitForPeer must be a boolean, got ${describe(waitForPeer)}`, TypeError)
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw codedError('EINVAL', `options.onProgress must be a function, got ${describe(onProgress)}`, TypeError)
  }
  if (
    idleTimeoutMs !== undefined &&
    !(typeof idleTimeoutMs === 'number' && idleTimeoutMs > 0 && idleTimeoutMs <= maxTimeoutMs)
  ) {
    throw codedError(
      'EINVAL',
      `options.idleTimeoutMs must be a number of milliseconds above 0 and at most ${maxTimeoutMs}, got ${describe(idleTimeoutMs)}`,
      TypeError,
    )
  }
}

/** `{ progress, total?, message? }` from a `task.progress` payload, or null when it has no number. */
function progressUpdate(payload) {
  if (payload === null || typeof payload !== 'object' || typeof payload.progress !== 'number') return null
  const update = { progress: payload.progress }
  if (typeof payload.total === 'number') update.total = payload.total
  if (typeof payload.message === 'string') update.message = payload.message
  return update
}

/** The `reason` of a `task.cancel` for an aborted signal: text, or nothing. */
function reasonText(reason) {
  if (typeof reason === 'string') return reason
  if (reason instanceof Error && reason.name !== 'AbortError' && reason.message) return reason.message
  return undefined
}

/** The request() calls in flight on one channel. */
class Calls {
  #calls = new Map() // token -> call
  #cancelWait
  #sendCancel
  #fail

  /**
   * `cancelWait(token, code, text)` rejects a native wait (true if it was pending),
   * `sendCancel(requestId, reason)` sends task.cancel, `fail(error)` reports a throwing
   * onProgress.
   */
  constructor({ cancelWait, sendCancel, fail }) {
    this.#cancelWait = cancelWait
    this.#sendCancel = sendCancel
    this.#fail = fail
  }

  /** Follows a started request (`{ id, token, response }`); resolves with its response message. */
  follow(started, method, { signal, onProgress, idleTimeoutMs }) {
    const { id, token } = started
    const call = { id, method, onProgress, idleTimeoutMs, timer: null, gaveUp: false, gone: null }
    const arm = () => {
      if (idleTimeoutMs === undefined) return
      clearTimeout(call.timer)
      call.timer = setTimeout(() => {
        call.gaveUp = true
        const text = `no progress and no response for request ${id} (${method}) in ${idleTimeoutMs} ms (idleTimeoutMs)`
        if (this.#cancelWait(token, 'ETIMEDOUT', text)) this.#sendCancel(id, 'timeout')
      }, idleTimeoutMs)
      call.timer.unref?.() // the native wait keeps the process alive (unless unref'd)
    }
    call.arm = arm
    const onAbort = () => {
      call.gaveUp = true
      if (this.#cancelWait(token, 'ABORT_ERR', 'The operation was aborted')) {
        this.#sendCancel(id, reasonText(signal.reason))
      }
    }
    const end = () => {
      clearTimeout(call.timer)
      this.#calls.delete(token)
      signal?.removeEventListener('abort', onAbort)
    }
    this.#calls.set(token, call)
    arm()
    signal?.addEventListener('abort', onAbort, { once: true })
    return started.response.then(
      (message) => {
        end()
        return message
      },
      (error) => {
        end()
        if (error?.code === 'ABORT_ERR' && signal) throw abortError(signal)
        if (error && typeof error === 'object') {
          error.requestId ??= id
          error.method ??= method
          if (error.code === 'EPEERGONE' && call.gone) error.peer = call.gone
        }
        // The overall timeout ran out in native code: tell the handler to stop too.
        if (error?.code === 'ETIMEDOUT' && !call.gaveUp) this.#sendCancel(id, 'timeout')
        throw error
      },
    )
  }

  /** A `task.progress` event the core handed to the wait `token`. */
  progress(token, message) {
    const call = this.#calls.get(token)
    // A call that gave up (abort, idle timeout, peer gone) hears no more, even from its batch.
    if (!call || call.gaveUp) return
    call.arm()
    const update = progressUpdate(message.payload)
    if (!update || !call.onProgress) return
    try {
      call.onProgress(update)
    } catch (error) {
      this.#fail(error)
    }
  }

  /**
   * The peer is gone: every call in flight rejects with EPEERGONE, and is cancelled, so that a
   * peer restarted on the same files never runs it (the core also leaves it out of the outbox).
   */
  peerGone(peer) {
    for (const [token, call] of [...this.#calls]) {
      call.gone = peer
      call.gaveUp = true
      if (this.#cancelWait(token, 'EPEERGONE', peerGoneText(peer, call.id, call.method))) {
        this.#sendCancel(call.id, PEER_GONE_REASON)
      }
    }
  }
}

/** The `reason` of the `task.cancel` sent for calls abandoned because the peer went. */
const PEER_GONE_REASON = 'peer gone'

function peerGoneText(peer, requestId, method) {
  const who = peer.pid === undefined ? 'the peer' : `the peer (pid ${peer.pid})`
  const call = requestId === undefined ? `${method}` : `request ${requestId} (${method})`
  return `${who} is gone; ${call} will not be answered`
}

/** EPEERGONE for a call started while the peer is known to be gone: nothing was sent. */
function peerGoneError(peer, method) {
  const error = codedError(
    'EPEERGONE',
    `${peerGoneText(peer, undefined, method)}: the request was not sent (pass waitForPeer: true to wait for the peer to come back)`,
  )
  error.method = method
  error.peer = peer
  return error
}

module.exports = { Calls, checkCallOptions, peerGoneError, progressUpdate, reasonText, PROGRESS_EVENT, CANCEL_EVENT }
