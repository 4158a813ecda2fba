'use strict'

// How late a short waitResponse timeout fires. One frontend with an 'event' listener attached
// (so its dispatcher runs) and `pollIntervalMs` 2000, one wait pending for 10 minutes (the
// dispatcher sleeps toward a far deadline), then `waits` waits one after the other for responses
// that never come, with timeouts spread evenly over 5..50 ms in a shuffled order and 0-4 ms
// between them. Lateness = time until the ETIMEDOUT rejection - the timeout.
//   impl = ipckit      channel.waitResponse(id, timeoutMs)
//          settimeout  the floor: a setTimeout of the same length in the same process

const crypto = require('node:crypto')
const u = require('../lib/util')

const opts = JSON.parse(process.argv[2] || '{}')
const { impl = 'ipckit', waits = 200, minMs = 5, maxMs = 50, pollIntervalMs = 2000 } = opts

function plan() {
  const timeouts = Array.from({ length: waits }, (_, i) =>
    Math.round(minMs + ((maxMs - minMs) * i) / Math.max(1, waits - 1)),
  )
  // A fixed shuffle (the same order for every contender and run).
  let seed = 12345
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  for (let i = timeouts.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[timeouts[i], timeouts[j]] = [timeouts[j], timeouts[i]]
  }
  return timeouts
}

async function main() {
  const dir = u.tmpDir(`timeouts-${impl}`)
  let channel
  try {
    let wait
    if (impl === 'ipckit') {
      channel = require(u.ROOT).FileChannel.frontend(dir, { pollIntervalMs })
      u.failOnPolling(channel, 'timeouts')
      channel.on('event', () => {})
      channel.waitResponse(crypto.randomUUID(), 10 * 60 * 1000).catch(() => {})
      await u.sleep(200) // the dispatcher is up and asleep
      wait = async (ms) => {
        try {
          await channel.waitResponse(crypto.randomUUID(), ms)
        } catch (error) {
          if (error.code !== 'ETIMEDOUT') throw error
          return
        }
        throw new Error('a response nobody sent arrived')
      }
    } else if (impl === 'settimeout') {
      wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
    } else {
      throw new Error(`unknown impl ${impl}`)
    }
    const lateness = []
    const timeouts = plan()
    for (let i = 0; i < timeouts.length; i++) {
      const t0 = u.nowMs()
      await wait(timeouts[i])
      lateness.push(u.nowMs() - t0 - timeouts[i])
      await u.sleep(i % 5)
    }
    const s = u.percentiles(lateness)
    u.emitResult({
      impl,
      waits: s.n,
      p50: s.p50,
      p99: s.p99,
      max: s.max,
      min: s.min,
      early: lateness.filter((x) => x < 0).length,
    })
  } finally {
    if (channel) channel.close()
    u.rmDir(dir)
  }
}

u.runCase(main)
