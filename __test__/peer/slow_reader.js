'use strict'
// A deliberately slow reader in its own process: recv() every `intervalMs`, until `expect`
// messages arrived or `timeoutMs` passed. Prints {"ready":true} then one summary line.
const { FileChannel } = require('../../index.js')

const [dir, expect, intervalMs, timeoutMs] = process.argv.slice(2)
const channel = FileChannel.backend(dir)
const seen = new Set()
let received = 0
let duplicates = 0
let outOfOrder = 0
let last = -1
const errors = []
const started = Date.now()
process.stdout.write(JSON.stringify({ ready: true }) + '\n')

const timer = setInterval(() => {
  let batch = []
  try {
    batch = channel.recv()
  } catch (error) {
    errors.push(error.code)
  }
  for (const message of batch) {
    received++
    if (seen.has(message.id)) duplicates++
    seen.add(message.id)
    if (message.payload <= last) outOfOrder++
    last = message.payload
  }
  if (seen.size >= Number(expect) || Date.now() - started > Number(timeoutMs)) {
    clearInterval(timer)
    // Let the final acknowledgement out before closing.
    channel.close()
    process.stdout.write(JSON.stringify({ received, unique: seen.size, duplicates, outOfOrder, errors }) + '\n')
  }
}, Number(intervalMs))
