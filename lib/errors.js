'use strict'

const { isNativeError } = require('node:util').types

// Error objects of the JS layer: coded errors, AbortError, EREMOTE with the remote side's
// details, and the caller's stack on errors that reach a promise from native code.

function codedError(code, message, ErrorClass = Error) {
  const error = new ErrorClass(message)
  error.code = code
  return error
}

/** An `AbortError` (`code: 'ABORT_ERR'`), as Node's own APIs reject on abort. */
function abortError(signal) {
  const error = codedError('ABORT_ERR', 'The operation was aborted')
  error.name = 'AbortError'
  if (signal && signal.reason !== undefined) error.cause = signal.reason
  return error
}

/** A short description of a value for error messages. */
function describe(value) {
  if (typeof value === 'symbol') return value.toString()
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`
  if (typeof value === 'bigint') return `the BigInt ${value}n`
  if (typeof value === 'string') return `${JSON.stringify(value)} (a string)`
  return String(value)
}

/**
 * `EREMOTE` for an error response: the message is the remote text; `method`, `requestId`,
 * `remoteMessage`, and `remoteCode`/`remoteData` when the peer sent `error_code`/`error_data`.
 */
function remoteError(response, method, requestId) {
  const error = codedError('EREMOTE', response.error)
  error.method = method
  error.requestId = requestId
  error.remoteMessage = response.error
  if (response.errorCode !== undefined) error.remoteCode = response.errorCode
  if (response.errorData !== undefined) error.remoteData = response.errorData
  return error
}

/**
 * The stack of the code that called a promise-returning method, taken when it was called:
 * errors settled later (from native code, or after an await) otherwise show no caller frames.
 * `above` is the public method, left out of the frames as Node leaves out its internals.
 */
function callerStack(above) {
  // V8 records the frames now and formats them only when `.stack` is read (on rejection).
  const holder = {}
  Error.captureStackTrace(holder, above)
  return holder
}

/** Gives `error` the caller's frames (keeping its own first line) and returns it. */
function withCallerStack(error, holder) {
  const stack = holder?.stack
  // isNativeError: errors made by the addon belong to the realm it was loaded in.
  if (isNativeError(error) && typeof stack === 'string') {
    const frames = stack.slice(stack.indexOf('\n'))
    const header = `${error.name}: ${error.message}`
    Object.defineProperty(error, 'stack', {
      value: frames.startsWith('\n') ? header + frames : header,
      writable: true,
      configurable: true,
      enumerable: false,
    })
  }
  return error
}

/** `promise`, whose rejection carries the caller's stack (from `callerStack()`). */
function traced(promise, holder) {
  return promise.catch((error) => {
    throw withCallerStack(error, holder)
  })
}

// `Symbol.dispose` / `Symbol.asyncDispose`: Node (20+) defines them as these registered symbols,
// which every realm (a vm context, jest's sandbox) shares even where its `Symbol` lacks them.
const DISPOSE = Symbol.dispose ?? Symbol.for('nodejs.dispose')
const ASYNC_DISPOSE = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

module.exports = {
  DISPOSE,
  ASYNC_DISPOSE,
  codedError,
  abortError,
  describe,
  remoteError,
  callerStack,
  withCallerStack,
  traced,
}
