'use strict'

// Timers and deferred jobs the package schedules for itself. They come from node:timers and
// promise jobs, not from the globals: under jest's fake timers (which replace setTimeout,
// setInterval, queueMicrotask and process.nextTick on the global object) a suite still gets its
// timeouts, announcements and cancellations, on real time like the native waits.

const timers = require('node:timers')

/** Runs `fn` once the current job is done, as queueMicrotask does; a throw is uncaught. */
function afterThisJob(fn) {
  Promise.resolve()
    .then(fn)
    .catch((error) => rethrowUncaught(error))
}

/** Throws `error` as an uncaught exception, outside the current call stack. */
function rethrowUncaught(error) {
  timers.setImmediate(() => {
    throw error
  })
}

module.exports = {
  setTimeout: timers.setTimeout,
  clearTimeout: timers.clearTimeout,
  setInterval: timers.setInterval,
  clearInterval: timers.clearInterval,
  afterThisJob,
  rethrowUncaught,
}
