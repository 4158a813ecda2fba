'use strict'

// A child process that sends `rate` events per second (payload ~100 B) into the backend outbox of
// the channel in argv[2], with ipckit, until stdin closes; then prints how many it sent.

const u = require('../lib/util')

const [dir, rateArg] = process.argv.slice(2)
const rate = Number(rateArg || 1000)
const channel = require(u.ROOT).FileChannel.backend(dir)
const payload = u.makePayload(100)
let sent = 0
let stopped = false
const t0 = u.nowMs()

function tick() {
  if (stopped) return
  const due = Math.floor(((u.nowMs() - t0) * rate) / 1000) - sent
  for (let i = 0; i < Math.min(due, 50); i++) {
    channel.sendEvent('flow', payload)
    sent++
  }
  setTimeout(tick, 1)
}

process.stdout.write('ready\n')
tick()
process.stdin.resume()
process.stdin.on('end', () => {
  stopped = true
  const seconds = (u.nowMs() - t0) / 1000
  u.emitResult({ sent, seconds, rate: sent / seconds })
  channel.close()
  process.exit(0)
})
