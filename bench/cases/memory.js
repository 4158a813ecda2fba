'use strict'

// Resident memory (process.memoryUsage().rss, after forced gc) before and after many messages
// through one channel, in one process. Run with --expose-gc.
//
// mode = recv  `messages` events arrive in our (ipckit frontend) inbox, written 50 per file
//              replacement by a minimal protocol writer in a child process, as a peer is (lock,
//              tmp, rename, the newest 100 kept); recv() drains them after every write. Exercises
//              the read path (stat, read, parse, exactly-once bookkeeping, conversion to JS,
//              acknowledgements); the writer's own garbage (it serializes the whole file each time)
//              stays out of the measured heap.
// mode = send  the frontend sends events with sendEvent() and the backend end of the same
//              directory drains them with recv() every 50 sends: the write path and the read path.
//              A send costs a file replacement, so this mode stops after `budgetMs` and reports
//              how many messages it did (it runs in IPCKIT_BENCH_TMPDIR, /dev/shm if present).
// Every message must arrive exactly once and in order. impl = ipckit | purejs (the receiving side).

const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const readline = require('node:readline')
const { spawn } = require('node:child_process')
const u = require('../lib/util')
const { BACKEND_OUTBOX } = require('../baseline/pure-js-channel')

const opts = JSON.parse(process.argv[2] || '{}')
const { mode = 'recv', impl = 'ipckit', messages = 1_000_000, warmup = 10_000, batch = 50, budgetMs = 45_000 } = opts

function snapshot() {
  if (typeof global.gc !== 'function') throw new Error('run with --expose-gc')
  for (let i = 0; i < 3; i++) global.gc()
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external }
}

/** Writes batches of events into `dir`'s backend outbox the way the protocol says. */
function batchWriter(dir) {
  const target = path.join(dir, BACKEND_OUTBOX)
  const tmp = path.join(dir, 'backend_to_frontend.tmp')
  const lockPath = path.join(dir, 'backend_to_frontend.lock')
  let window = []
  let seq = 0
  return (count) => {
    const fd = fs.openSync(lockPath, 'wx')
    fs.writeSync(fd, `${process.pid}\n`)
    fs.closeSync(fd)
    const now = Date.now()
    for (let i = 0; i < count; i++) {
      window.push({
        id: crypto.randomUUID(),
        timestamp: now,
        type: 'event',
        method: 'tick',
        payload: { seq: seq++, text: 'memory benchmark' },
      })
    }
    if (window.length > 100) window = window.slice(window.length - 100)
    fs.writeFileSync(tmp, JSON.stringify(window, null, 2))
    fs.renameSync(tmp, target)
    fs.unlinkSync(lockPath)
  }
}

/** The writer's process: writes `count` events for every line `count` on stdin, then says "ok". */
function serveWrites(dir) {
  const write = batchWriter(dir)
  const lines = readline.createInterface({ input: process.stdin })
  lines.on('line', (line) => {
    write(Number(line))
    process.stdout.write('ok\n')
  })
}

/** Starts the writer's process for `dir`; returns write(count), which resolves once written. */
function startWriter(dir) {
  const child = spawn(process.execPath, [__filename, JSON.stringify({ mode: 'writer', dir })], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const replies = readline.createInterface({ input: child.stdout })
  const waiting = []
  replies.on('line', () => waiting.shift()?.resolve())
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`the writer's process exited (${code})`))
  })
  const write = (count) =>
    new Promise((resolve, reject) => {
      waiting.push({ resolve, reject })
      child.stdin.write(`${count}\n`)
    })
  write.stop = () => child.stdin.end()
  return write
}

async function main() {
  const base = mode === 'send' && !process.env.IPCKIT_BENCH_TMPDIR && fs.existsSync('/dev/shm') ? '/dev/shm' : undefined
  if (base) process.env.IPCKIT_BENCH_TMPDIR = base
  const dir = u.tmpDir(`mem-${mode}`)
  let writer
  try {
    const FileChannel =
      impl === 'purejs' ? require('../baseline/pure-js-channel').PureJsChannel : require(u.ROOT).FileChannel
    let received = 0
    let expected = 0
    let step
    let receiver
    let sender
    const drain = () => {
      for (const m of receiver.recv()) {
        if (m.payload.seq !== received) throw new Error(`expected seq ${received}, got ${m.payload.seq}`)
        received++
      }
    }
    if (mode === 'recv') {
      receiver = FileChannel.frontend(dir)
      writer = startWriter(dir)
      step = async () => {
        await writer(batch)
        expected += batch
        drain()
      }
    } else {
      sender = FileChannel.frontend(dir)
      receiver = FileChannel.backend(dir)
      step = () => {
        for (let i = 0; i < batch; i++) sender.sendEvent('tick', { seq: expected++, text: 'memory benchmark' })
        drain()
      }
    }
    // recv's steps wait for the writer's process; send's are synchronous and stay so (a promise per
    // step would be garbage of this harness in the measured heap).
    const runTo = async (end) => {
      while (expected < end) {
        const stepping = step()
        if (stepping) await stepping
      }
    }
    await runTo(warmup)
    await u.sleep(100)
    const before = snapshot()
    const start = expected
    const t0 = u.nowMs()
    // In slices, so the event loop gets a turn now and then, as in a real app.
    let budgetHit = false
    const trail = []
    const heapTrail = []
    const trailEvery = Math.max(batch, Math.round(messages / 10))
    let nextTrail = start + trailEvery
    while (expected - start < messages) {
      const sliceEnd = Math.min(start + messages, expected + 5000)
      await runTo(sliceEnd)
      await new Promise(setImmediate)
      if (expected >= nextTrail) {
        nextTrail += trailEvery
        const m = process.memoryUsage()
        trail.push(Math.round((m.rss / (1 << 20)) * 10) / 10)
        heapTrail.push(Math.round((m.heapTotal / (1 << 20)) * 10) / 10)
      }
      if (mode === 'send' && u.nowMs() - t0 > budgetMs) {
        budgetHit = true
        break
      }
    }
    const seconds = (u.nowMs() - t0) / 1000
    const done = expected - start
    await u.sleep(100)
    const after = snapshot()
    if (received !== expected) throw new Error(`received ${received} of ${expected}`)
    receiver.close()
    if (sender) sender.close()
    const mb = (b) => b / (1 << 20)
    u.emitResult({
      mode,
      impl,
      messages: done,
      budgetHit,
      tmpdir: path.dirname(dir),
      seconds,
      rate: done / seconds,
      rssBeforeMB: mb(before.rss),
      rssAfterMB: mb(after.rss),
      growthMB: mb(after.rss - before.rss),
      growthPerMillionMB: (mb(after.rss - before.rss) * 1e6) / done,
      heapGrowthMB: mb(after.heapUsed - before.heapUsed),
      heapTotalGrowthMB: mb(after.heapTotal - before.heapTotal),
      externalGrowthMB: mb(after.external - before.external),
      rssTrailMB: trail,
      heapTotalTrailMB: heapTrail,
    })
  } finally {
    writer?.stop()
    u.rmDir(dir)
  }
}

if (mode === 'writer') serveWrites(opts.dir)
else
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
