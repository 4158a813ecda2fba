'use strict'

// What the JavaScript thread pays for the channel's heavy moments (issue 21), one mode a run:
//   inbox      a peer's outbox of `count` events lands at once (one rename); an 'event' listener
//              takes them. Reports the event loop's longest delay while they arrive.
//   presence   `count` request()s in flight to a live backend in another process that never
//              answers. Reports the JavaScript thread's busy time per second (event-loop
//              utilization) over `durationMs`.
//   progress   a handler reports `count` progress updates in a loop. Reports the cost per call,
//              with and without sending the job's batch (the requester sees every update).
//   big        one message of `mb` MB from another process. Reports the event loop's longest
//              delay while it is received, and how long the peer's synchronous send took.

const fs = require('node:fs')
const path = require('node:path')
const { monitorEventLoopDelay, performance } = require('node:perf_hooks')
const u = require('../lib/util')

const opts = JSON.parse(process.argv[2] || '{}')
const { mode, count = 1000, durationMs = 3000, mb = 50 } = opts
const { FileChannel } = require(u.ROOT)

/** The longest event-loop delay (ms) while `run()` works, sampled every millisecond. */
async function longestDelay(run) {
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  try {
    await run()
  } finally {
    histogram.disable()
  }
  return histogram.max / 1e6
}

function diskEvent(i, payload) {
  const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`
  return { id, timestamp: Date.now(), type: 'event', method: 'bulk', payload }
}

async function inbox(dir) {
  const front = FileChannel.frontend(dir, { maxFileBytes: 1 << 30, maxQueued: count + 10 })
  u.failOnPolling(front, 'inbox reader')
  const text = JSON.stringify(Array.from({ length: count }, (_, i) => diskEvent(i, { i })))
  let got = 0
  const all = new Promise((resolve) => front.on('event', () => ++got === count && resolve()))
  const t0 = u.nowMs()
  const maxDelayMs = await longestDelay(async () => {
    fs.writeFileSync(path.join(dir, 'bulk.tmp'), text)
    fs.renameSync(path.join(dir, 'bulk.tmp'), path.join(dir, 'backend_to_frontend.json'))
    await all
  })
  front.close()
  return { maxDelayMs, deliveredMs: u.nowMs() - t0, messages: got }
}

async function presence(dir) {
  // A live backend (its heartbeat and process are checked) that takes the requests and never
  // answers them.
  const script = `
    const { FileChannel } = require(${JSON.stringify(u.ROOT)})
    const back = FileChannel.backend(process.argv[1])
    back.handle('hang', () => new Promise(() => {}))
    console.log('ready')
    process.stdin.resume()
    process.stdin.on('end', () => process.exit(0))`
  const backend = await u.spawnPeer(process.execPath, ['-e', script, dir], { label: 'silent backend' })
  const front = FileChannel.frontend(dir)
  u.failOnPolling(front, 'frontend')
  try {
    await front.ready({ timeoutMs: 10000 })
    const calls = Array.from({ length: count }, (_, i) =>
      front.request('hang', i, { timeoutMs: durationMs + 60000 }).catch(() => {}),
    )
    await u.sleep(500) // the requests written and the presence checks running
    if (front.pendingWaits !== count) throw new Error(`${front.pendingWaits} of ${count} requests pending`)
    const before = performance.eventLoopUtilization()
    await u.sleep(durationMs)
    const used = performance.eventLoopUtilization(before)
    if (front.pendingWaits !== count) throw new Error('requests ended during the measurement')
    front.close()
    await Promise.all(calls)
    return { jsMsPerSecond: used.active / (durationMs / 1000), inFlight: count }
  } finally {
    if (!front.closed) front.close()
    await u.stopPeer(backend)
  }
}

async function progress(dir) {
  const back = FileChannel.backend(dir)
  const front = FileChannel.frontend(dir)
  let loopUs
  let withSendUs
  back.handle('render', async (_params, context) => {
    const t0 = u.nowMs()
    for (let i = 0; i < count; i++) context.progress(i, { total: count, message: `tile ${i}` })
    loopUs = ((u.nowMs() - t0) * 1000) / count
    await new Promise((resolve) => setImmediate(resolve)) // the job's batch crosses to native
    withSendUs = ((u.nowMs() - t0) * 1000) / count
    return 'rendered'
  })
  let updates = 0
  const result = await front.request('render', null, { timeoutMs: 120000, onProgress: () => updates++ })
  if (result !== 'rendered' || updates !== count) throw new Error(`${updates} of ${count} progress updates arrived`)
  front.close()
  back.close()
  return { usPerCall: withSendUs, usPerCallInLoop: loopUs, updates }
}

async function big(dir) {
  const front = FileChannel.frontend(dir, { maxFileBytes: 1 << 30 })
  u.failOnPolling(front, 'reader')
  const script = `
    const { FileChannel } = require(${JSON.stringify(u.ROOT)})
    const back = FileChannel.backend(process.argv[1], { maxFileBytes: 1 << 30 })
    const payload = { data: 'x'.repeat(${mb} * 1024 * 1024) }
    console.log('ready')
    process.stdin.once('data', () => {
      const t0 = performance.now()
      back.sendEvent('big', payload)
      console.log('@@sent ' + (performance.now() - t0))
    })
    process.stdin.on('end', () => process.exit(0))`
  const peer = await u.spawnPeer(process.execPath, ['-e', script, dir], { label: 'big sender' })
  try {
    let size = 0
    const arrived = new Promise((resolve) =>
      front.on('event', (message) => {
        size = message.payload.data.length
        resolve()
      }),
    )
    const maxDelayMs = await longestDelay(async () => {
      peer.write('go')
      await arrived
    })
    const sent = await peer.waitForLine(/^@@sent /, { timeoutMs: 60000, what: 'the send time' })
    if (size !== mb * 1024 * 1024) throw new Error(`received ${size} bytes`)
    return { maxDelayMs, syncSendMs: Number(sent.slice('@@sent '.length)), mb }
  } finally {
    front.close()
    await u.stopPeer(peer)
  }
}

async function main() {
  const run = { inbox, presence, progress, big }[mode]
  if (!run) throw new Error(`unknown mode ${mode}`)
  const dir = u.tmpDir(`js-${mode}`)
  try {
    u.emitResult({ mode, ...(await run(dir)) })
  } finally {
    u.rmDir(dir)
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
