'use strict'

// The receiving side of a burst (bench/cases/burst.js), in its own process: an ipckit backend on
// the channel in argv[2] with an 'event' listener (acknowledging, the default). Counts the events
// named 'burst' and prints "done {json}" when the 'burst.end' marker arrives; prints "ready"
// first. EWATCH ends it with exit code 3 (no polling numbers). Runs until stdin closes.

const u = require('../lib/util')

const [dir] = process.argv.slice(2)
const channel = require(u.ROOT).FileChannel.backend(dir)
const errors = u.failOnPolling(channel, 'burst reader')
let received = 0
let first = null
channel.on('event', (message) => {
  if (message.method === 'burst') {
    if (first === null) first = u.nowMs()
    received++
  } else if (message.method === 'burst.end') {
    const spanMs = first === null ? 0 : u.nowMs() - first
    process.stdout.write(`done ${JSON.stringify({ received, expected: message.payload.count, spanMs, errors })}\n`)
  }
})
process.stdout.write('ready\n')
process.stdin.resume()
process.stdin.on('end', () => {
  channel.close()
  process.exit(0)
})
