'use strict'

// Event-loop lag (perf_hooks.monitorEventLoopDelay, p99) and the latency of an unrelated
// fs.promises.readFile of a 1 MB file, first idle, then while `waits` waitResponse calls are
// pending (requests nobody answers) and a child process sends `rate` events/s into our inbox,
// which an 'event' listener consumes. Both phases run in this one process. impl = ipckit | purejs.

const fs = require('node:fs')
const path = require('node:path')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const u = require('../lib/util')

const opts = JSON.parse(process.argv[2] || '{}')
const { impl = 'ipckit', durationMs = 3000, waits = 1000, rate = 1000, readEveryMs = 10, warmMs = 500 } = opts

async function measure(file) {
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  const reads = []
  const cpu0 = process.cpuUsage()
  const t0 = u.nowMs()
  histogram.enable()
  while (u.nowMs() - t0 < durationMs) {
    const r0 = u.nowMs()
    const data = await fs.promises.readFile(file)
    reads.push(u.nowMs() - r0)
    if (data.length !== 1 << 20) throw new Error('short read')
    await u.sleep(readEveryMs)
  }
  histogram.disable()
  const elapsed = u.nowMs() - t0
  const cpu = process.cpuUsage(cpu0)
  const read = u.percentiles(reads)
  return {
    lagP50: histogram.percentile(50) / 1e6,
    lagP99: histogram.percentile(99) / 1e6,
    lagMax: histogram.max / 1e6,
    readP50: read.p50,
    readP99: read.p99,
    reads: read.n,
    cpuPct: ((cpu.user + cpu.system) / 1000 / elapsed) * 100,
    elapsedMs: elapsed,
  }
}

async function main() {
  const dir = u.tmpDir(`lag-${impl}`)
  const file = path.join(dir, 'unrelated-1mb.bin')
  fs.writeFileSync(file, Buffer.alloc(1 << 20, 7))
  const chanDir = path.join(dir, 'channel')
  let source
  let channel
  try {
    await fs.promises.readFile(file)
    const idle = await measure(file)

    channel =
      impl === 'ipckit'
        ? require(u.ROOT).FileChannel.frontend(chanDir)
        : require('../baseline/pure-js-channel').PureJsChannel.frontend(chanDir)
    let received = 0
    const errors = {}
    channel.on('event', () => received++)
    const count = (error) => {
      errors[error.code || error.name] = (errors[error.code || error.name] || 0) + 1
    }
    // EWATCH (the channel would poll) ends the run with exit code 3: no polling numbers.
    if (impl === 'ipckit') u.failOnPolling(channel, 'loop-lag', count)
    else channel.on('warning', count)
    const pending = []
    for (let i = 0; i < waits; i++) {
      const id = channel.sendRequest('never-answered', { i })
      pending.push(channel.waitResponse(id, 10 * 60 * 1000).catch(() => {}))
    }
    source = await u.spawnPeer(process.execPath, [path.join(__dirname, 'flow-source.js'), chanDir, String(rate)], {
      label: 'flow source',
    })
    await u.sleep(warmMs)
    const pendingWaits = impl === 'ipckit' ? channel.pendingWaits : channel.waiters.size
    const before = received
    const loaded = await measure(file)
    const flowed = received - before
    const stillPending = impl === 'ipckit' ? channel.pendingWaits : channel.waiters.size
    const exit = await u.stopPeer(source)
    const sourceResult = source.lines.find((l) => l.startsWith(u.RESULT_PREFIX))
    source = null
    if (exit && exit.code) throw new Error(`flow source exited with ${exit.code}`)
    await u.sleep(200)
    channel.close()
    await Promise.all(pending)
    const sent = sourceResult ? JSON.parse(sourceResult.slice(u.RESULT_PREFIX.length)).sent : NaN
    u.emitResult({
      impl,
      idle,
      loaded,
      pendingWaits: Math.min(pendingWaits, stillPending),
      flowRate: flowed / (loaded.elapsedMs / 1000),
      sent,
      received,
      errors,
      readRatio: loaded.readP50 / idle.readP50,
    })
  } finally {
    if (source) await u.stopPeer(source, 500)
    if (channel && !channel.closed) channel.close()
    u.rmDir(dir)
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
