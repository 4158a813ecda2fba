'use strict'

// Answering requests with handlers: `handle(method, fn)` / `serve({...})`. A handler's (awaited)
// return value becomes the response; a throw becomes an error response carrying the error's
// message, and its `code` and `data` when it has them (the `error_code` / `error_data`
// extension, PROTOCOL-EXTENSIONS.md).

const { codedError } = require('./errors.js')

/** What an error response says about `error`: `[text, { code, data }]`. */
function errorDetails(error) {
  if (!(error instanceof Error)) return [String(error), {}]
  const details = {}
  if (typeof error.code === 'string' && error.code !== '') details.code = error.code
  if (error.data !== undefined) details.data = error.data
  return [error.message || error.name || 'Error', details]
}

class Handlers {
  #map = new Map()

  get size() {
    return this.#map.size
  }

  get(method) {
    return this.#map.get(method)
  }

  names() {
    return this.#map.keys()
  }

  set(method, handler) {
    if (typeof handler !== 'function') {
      throw codedError('EINVAL', `handler for ${method} must be a function`, TypeError)
    }
    this.#map.set(method, handler)
  }

  delete(method) {
    if (method === undefined) this.#map.clear()
    else this.#map.delete(method)
  }
}

/**
 * Runs the handler for `request` and sends its answer through `channel`. `unknown()` tells
 * whether a request without a handler should get an error response (nobody else takes it).
 * `fail(error)` reports a send that failed. `start(request)` gives the handler's second
 * argument, `{ context, done }` (lib/handler-context.js); without it the handler gets the message.
 * `sends` has `sendResponse` and `sendError` (as `channel.promises`; they may also return at once
 * and report a failed write as a problem of the channel).
 */
async function answer(channel, handlers, request, { unknown, fail, start, sends = channel.promises }) {
  const handler = handlers.get(request.method)
  // Replies go through the writer thread, retried while the outbox is locked, held open or
  // full: a busy outbox never kills the process or blocks the JavaScript thread.
  const reply = async (send) => {
    if (channel.closed) return
    try {
      await send()
    } catch (error) {
      if (!channel.closed) fail(error)
    }
  }
  if (!handler) {
    if (unknown()) await reply(() => sends.sendError(request.id, `unknown method: ${request.method}`))
    return
  }
  const { context, done } = start ? start(request) : { context: request, done: () => {} }
  let result
  try {
    result = await handler(request.payload, context)
  } catch (error) {
    done()
    const [thrownText, details] = errorDetails(error)
    // The requester must learn of the failure even when the text cannot be written as is.
    const text = thrownText.toWellFormed()
    await reply(async () => {
      try {
        await sends.sendError(request.id, text, details)
      } catch (sendError) {
        // Data JSON cannot hold must not lose the answer: send it without the data.
        if (sendError.code !== 'EINVAL' || details.data === undefined) throw sendError
        await sends.sendError(request.id, text, { code: details.code })
      }
    })
    return
  }
  done()
  await reply(async () => {
    try {
      await sends.sendResponse(request.id, result)
    } catch (error) {
      if (error.code !== 'EINVAL') throw error
      // The requester learns of the bad result instead of waiting for its timeout.
      await sends.sendError(request.id, `the handler for ${request.method} returned ${error.message}`)
    }
  })
}

module.exports = { Handlers, answer, errorDetails }
