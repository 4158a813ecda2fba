'use strict'

// `channel.messages()`: incoming messages as an async iterator, with the semantics of Node's
// `events.on()`: several `next()` calls may wait at once (each gets its own message, in order),
// and aborting the signal rejects the waiting `next()` (or the next one) with an AbortError.
// Closing the channel, `return()` and `break` end it. Messages handed to the iterator but not
// yet taken go back to `recv()` when it ends: nothing is lost.

const { abortError } = require('./errors.js')

/**
 * @param {object} hooks
 * @param {() => void} hooks.attach  start delivering to this iterator (push)
 * @param {() => void} hooks.detach  stop delivering
 * @param {(messages: object[]) => void} hooks.requeue  give back what was not taken
 * @param {AbortSignal} [signal]
 */
function createMessageIterator({ attach, detach, requeue }, signal) {
  if (signal?.aborted) throw abortError(signal)
  const buffered = []
  const waiting = [] // { resolve, reject } of next() calls, oldest first
  let pendingError = null
  let finished = false

  const finish = () => {
    if (finished) return
    finished = true
    signal?.removeEventListener('abort', onAbort)
    detach()
    if (buffered.length > 0) requeue(buffered.splice(0))
    while (waiting.length > 0) waiting.shift().resolve({ value: undefined, done: true })
  }

  function onAbort() {
    const error = abortError(signal)
    if (waiting.length > 0) waiting.shift().reject(error)
    else pendingError = error
    finish()
  }

  const sink = {
    push(message) {
      if (finished) return false
      if (waiting.length > 0) waiting.shift().resolve({ value: message, done: false })
      else buffered.push(message)
      return true
    },
    /** The channel closed: end without an error. */
    end: finish,
  }

  signal?.addEventListener('abort', onAbort, { once: true })
  attach(sink)

  const iterator = {
    next() {
      if (buffered.length > 0) return Promise.resolve({ value: buffered.shift(), done: false })
      if (pendingError) {
        const error = pendingError
        pendingError = null
        return Promise.reject(error)
      }
      if (finished) return Promise.resolve({ value: undefined, done: true })
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }))
    },
    return() {
      finish()
      return Promise.resolve({ value: undefined, done: true })
    },
    throw(error) {
      finish()
      return Promise.reject(error)
    },
    [Symbol.asyncIterator]() {
      return this
    },
  }
  return { iterator, sink }
}

module.exports = { createMessageIterator }
