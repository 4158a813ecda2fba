'use strict'

// The Python companion (ipckit_peer) at push speed (issue 18): round trips of a Node frontend's
// request() to backends in other processes, measured in one run, interleaved in blocks (the order
// rotated from block to block, so load drift on a shared machine hits every backend alike):
//   node            ipckit Node backend, handle('echo')                 (bench/cases/rtt-backend.js)
//   companion       ipckit_peer Peer.backend + serve()                  (bench/python/peer_serve.py)
//   companionPoll   the same, its file watcher disabled (IPCKIT_PEER_WAKE=poll): the fallback
//   reference       the Python reference, 1 ms recv() loop              (bench/python/serve.py)
// Then, with the last two stopped, the CPU of the idle companion and the idle Node backend over
// `idleMs`, after `settleMs` without traffic (their threads' run time, see cpuSeconds()).
// On Linux the companion must wake by inotify: one that says it polls (wake_mode) ends the run
// with exit code 3 instead of reporting a polling number as the watcher's (`allowPolling: true`
// turns that off, to measure a companion without a watcher).

const fs = require('node:fs')
const path = require('node:path')
const u = require('../lib/util')

const opts = JSON.parse(process.argv[2] || '{}')
const { count = 1000, warmup = 50, blocks = 5, idleMs = 5000, settleMs = 1000, allowPolling = false } = opts
const PAYLOAD = { text: 'hello', n: 42 }
const EXPECTED_WAKE = process.platform === 'linux' ? 'inotify' : null
const TICKS_PER_SECOND = 100 // USER_HZ on Linux

const BACKENDS = [
  {
    name: 'node',
    start: (dir) =>
      u.spawnPeer(process.execPath, [path.join(__dirname, 'rtt-backend.js'), 'ipckit', dir], { label: 'Node backend' }),
  },
  {
    name: 'companion',
    companion: true,
    start: (dir) =>
      u.spawnPeer(u.peerPython(), [u.pyScript('peer_serve.py'), '--dir', dir], {
        label: 'ipckit_peer backend',
        env: { IPCKIT_PEER_WAKE: '' },
      }),
  },
  {
    name: 'companionPoll',
    start: (dir) =>
      u.spawnPeer(u.peerPython(), [u.pyScript('peer_serve.py'), '--dir', dir], {
        label: 'ipckit_peer backend (polling)',
        env: { IPCKIT_PEER_WAKE: 'poll' },
      }),
  },
  {
    name: 'reference',
    start: (dir) =>
      u.spawnPeer(u.peerPython(), [u.pyScript('serve.py'), '--dir', dir], { label: 'Python reference backend' }),
  },
]

function wakeModeOf(line) {
  const m = /wake_mode=(\S+)/.exec(line || '')
  return m ? m[1] : null
}

/** Throws (exit code 3) when a companion that should wake by its watcher says it polls. */
function checkWakeMode(backend, mode, when) {
  if (!backend.companion || allowPolling || EXPECTED_WAKE === null || mode === EXPECTED_WAKE) return
  throw Object.assign(
    new Error(`${backend.name} ${when}: wake_mode=${mode}, expected ${EXPECTED_WAKE}; not reporting a polling number`),
    { exitCode: 3 },
  )
}

/**
 * CPU seconds used so far by process `pid`, all its threads: the run time of each thread in
 * nanoseconds (/proc/<pid>/task/<tid>/schedstat) where the kernel keeps it, else utime + stime of
 * /proc/<pid>/stat (in 10 ms ticks: a few ticks over 5 s would make the idle figure noise). NaN
 * without /proc.
 */
function cpuSeconds(pid) {
  try {
    let ns = 0
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0])
    }
    if (Number.isFinite(ns)) return ns / 1e9
  } catch {
    // no schedstat: the ticks below
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return NaN
  }
}

async function roundTrips(b, n, into) {
  for (let i = 0; i < n; i++) {
    const seq = b.seq++
    const t0 = process.hrtime.bigint()
    const result = await b.channel.request('echo', { ...PAYLOAD, seq }, { timeoutMs: 10000 })
    const t1 = process.hrtime.bigint()
    if (!result || result.seq !== seq) throw new Error(`${b.name}: bad echo for ${seq}: ${JSON.stringify(result)}`)
    if (into) into.push(Number(t1 - t0) / 1e6)
  }
}

async function stop(b) {
  if (!b.peer) return
  b.channel.close()
  const exit = await u.stopPeer(b.peer)
  const last = b.peer.lines.filter((l) => l.startsWith('wake_mode=')).pop()
  b.peer = null
  if (exit && (exit.code || exit.signal)) throw new Error(`${b.name} backend exited with ${exit.signal || exit.code}`)
  if (last) checkWakeMode(b, wakeModeOf(last), 'at exit')
}

async function main() {
  const { FileChannel } = require(u.ROOT)
  const running = BACKENDS.map((b) => ({ ...b, dir: u.tmpDir(`companion-${b.name}`), samples: [], seq: 0 }))
  try {
    for (const b of running) {
      b.peer = await b.start(b.dir)
      b.wakeMode = wakeModeOf(b.peer.lines[0])
      checkWakeMode(b, b.wakeMode, 'at start')
      b.channel = FileChannel.frontend(b.dir)
      u.failOnPolling(b.channel, `${b.name} frontend`)
    }
    for (const b of running) await roundTrips(b, warmup, null)
    const perBlock = Math.ceil(count / blocks)
    for (let block = 0; block < blocks; block++) {
      const shift = block % running.length
      for (const b of [...running.slice(shift), ...running.slice(0, shift)]) {
        await roundTrips(b, Math.min(perBlock, count - block * perBlock), b.samples)
      }
    }
    const byName = Object.fromEntries(running.map((b) => [b.name, b]))
    // The busy pollers go first, so that the idle window measures the two idle backends alone.
    await stop(byName.companionPoll)
    await stop(byName.reference)
    await u.sleep(settleMs)
    const idle = [byName.companion, byName.node]
    const before = idle.map((b) => cpuSeconds(b.peer.child.pid))
    const t0 = u.nowMs()
    await u.sleep(idleMs)
    const seconds = (u.nowMs() - t0) / 1000
    const [companionCpu, nodeCpu] = idle.map((b, i) => ((cpuSeconds(b.peer.child.pid) - before[i]) / seconds) * 100)
    for (const b of idle) await stop(b)

    const result = { count, blocks, idleSeconds: seconds, wakeMode: byName.companion.wakeMode }
    for (const b of running) {
      const s = u.percentiles(b.samples)
      result[b.name] = { n: s.n, p50: s.p50, p99: s.p99, mean: s.mean, max: s.max, wakeMode: b.wakeMode }
    }
    result.ratioP50 = result.companion.p50 / result.node.p50
    result.ratioP99 = result.companion.p99 / result.node.p99
    result.idleCpuPct = companionCpu
    result.nodeIdleCpuPct = nodeCpu
    u.emitResult(result)
  } finally {
    for (const b of running) {
      if (b.peer) await u.stopPeer(b.peer, 500)
      u.rmDir(b.dir)
    }
  }
}

// Exits once the backends are stopped (main's finally): 0, 3 for a polling companion, else 1.
main().then(
  () => process.exit(0),
  (error) => {
    console.error(error.exitCode === 3 ? error.message : error)
    process.exit(error.exitCode || 1)
  },
)
