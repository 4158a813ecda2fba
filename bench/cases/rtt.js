'use strict'

// Round trip of one small request and its response between two processes.
//   impl = ipckit     Node frontend (ipckit request()) -> Node backend (ipckit handle())
//          ipckit-sync  the same two ends with the synchronous sends (sendRequest + waitResponse;
//                     a 'request' listener answering with sendResponse): the JavaScript thread
//                     writes, no hand-off to the writer thread (what those hand-offs cost)
//          ipckit-py  Node frontend (ipckit request()) -> Python reference backend, 1 ms recv() loop
//          python     Python reference frontend (send_request + wait_response) -> same Python backend
//          purejs     pure-JS baseline frontend -> pure-JS baseline backend (handle())
//          floor      write tmp + rename + fs.watch wake-up, there and back, no protocol
//          protocol-floor  the least work the protocol requires, in plain Rust, both ends
//                     (bench/protocol-floor: lock, read + parse, append, serialize, tmp + swap or
//                     rename as the package does, unlock; the reader woken by inotify reads and
//                     parses); it never polls: a watcher that cannot start (exit 3) or a missed
//                     wake-up (exit 4) fails the run
//          protocol-floor-rename  the same, always renaming over the outbox (what the swap spares)
// On ext4 and btrfs the ipckit ends must put their files in place by a swap (probeReplace): a run
// where the addon would rename there fails instead of reporting the slower mode.
// Prints p50/p99 of `count` round trips after `warmup` unmeasured ones. `channelOptions` go to
// both ipckit ends (e.g. { acknowledge: false }). `awake: true` keeps every CPU out of its idle
// state with one SCHED_IDLE busy loop per CPU (they run only when no other thread wants the CPU):
// what the round trip costs without waking idle CPUs (Linux; without `chrt` the run fails). An ipckit end whose watcher fails (EWATCH: it
// would poll) ends the run with exit code 3 instead of reporting a polling number.

const os = require('node:os')
const path = require('node:path')
const { execFileSync, spawn } = require('node:child_process')
const u = require('../lib/util')
const { waitFor } = require('../../test-support')

const opts = JSON.parse(process.argv[2] || '{}')
const { impl = 'ipckit', count = 1000, warmup = 50, channelOptions, awake = false } = opts
const PAYLOAD = { text: 'hello', n: 42 }

async function nodeFrontend(channel, ask) {
  const samples = []
  for (let i = 0; i < warmup + count; i++) {
    const t0 = process.hrtime.bigint()
    const result = await ask({ ...PAYLOAD, seq: i })
    const t1 = process.hrtime.bigint()
    if (!result || result.seq !== i) throw new Error(`bad echo for ${i}: ${JSON.stringify(result)}`)
    if (i >= warmup) samples.push(Number(t1 - t0) / 1e6)
  }
  return samples
}

/** One SCHED_IDLE busy loop per CPU, each seen running under that policy. Returns their stop. */
async function keepCpusAwake() {
  const loops = os
    .cpus()
    .map(() => spawn('chrt', ['--idle', '0', process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' }))
  const stop = () => loops.forEach((loop) => loop.kill('SIGKILL'))
  try {
    for (const loop of loops) {
      const policy = () => execFileSync('chrt', ['-p', String(loop.pid)], { encoding: 'utf8' })
      await waitFor(() => /SCHED_IDLE/.test(policy()), {
        timeoutMs: 5000,
        what: `busy loop ${loop.pid} to run as SCHED_IDLE`,
      })
    }
  } catch (error) {
    stop()
    throw error
  }
  return stop
}

/** Fails unless the addon swaps files in place in `dir` where the file system calls for it. */
function checkSwaps(dir) {
  const flushesOnRename = [0xef53, 0x9123683e].includes(Number(require('node:fs').statfsSync(dir).type))
  const how = require(path.join(u.ROOT, 'lib', 'native')).probeReplace(dir)
  if (flushesOnRename && how !== 'swap') {
    throw new Error(`the addon replaces files in ${dir} by ${how}, not by a swap (ext4/btrfs)`)
  }
}

async function main() {
  const dir = u.tmpDir(`rtt-${impl}`)
  let peer
  let sleepAgain = () => {}
  try {
    if (awake) sleepAgain = await keepCpusAwake()
    let samples
    if (impl.startsWith('ipckit')) checkSwaps(dir)
    if (impl === 'ipckit' || impl === 'ipckit-sync' || impl === 'purejs') {
      const backendArgs = [path.join(__dirname, 'rtt-backend.js'), impl, dir]
      if (channelOptions) backendArgs.push(JSON.stringify(channelOptions))
      peer = await u.spawnPeer(process.execPath, backendArgs, {
        label: `${impl} backend`,
      })
      if (impl === 'ipckit') {
        const channel = require(u.ROOT).FileChannel.frontend(dir, channelOptions)
        u.failOnPolling(channel, 'rtt frontend')
        samples = await nodeFrontend(channel, (p) => channel.request('echo', p, { timeoutMs: 10000 }))
        channel.close()
      } else if (impl === 'ipckit-sync') {
        const channel = require(u.ROOT).FileChannel.frontend(dir, channelOptions)
        u.failOnPolling(channel, 'rtt frontend')
        const ask = async (p) => (await channel.waitResponse(channel.sendRequest('echo', p), 10000)).payload
        samples = await nodeFrontend(channel, ask)
        channel.close()
      } else {
        const { PureJsChannel } = require('../baseline/pure-js-channel')
        const channel = PureJsChannel.frontend(dir)
        samples = await nodeFrontend(channel, (p) => channel.request('echo', p, 10000))
        channel.close()
      }
    } else if (impl === 'ipckit-py') {
      peer = await u.spawnPeer(u.peerPython(), [u.pyScript('serve.py'), '--dir', dir], { label: 'python backend' })
      const channel = require(u.ROOT).FileChannel.frontend(dir)
      u.failOnPolling(channel, 'rtt frontend')
      samples = await nodeFrontend(channel, (p) => channel.request('echo', p, { timeoutMs: 10000 }))
      channel.close()
    } else if (impl === 'python') {
      peer = await u.spawnPeer(u.peerPython(), [u.pyScript('serve.py'), '--dir', dir], { label: 'python backend' })
      const out = execFileSync(
        u.peerPython(),
        [u.pyScript('rtt_client.py'), '--dir', dir, '--count', String(count), '--warmup', String(warmup)],
        { encoding: 'utf8', timeout: 10 * 60 * 1000 },
      )
      samples = JSON.parse(out.trim().split('\n').pop()).samples_ms
    } else if (impl === 'floor') {
      peer = await u.spawnPeer(process.execPath, [path.join(u.ROOT, 'bench', 'baseline', 'floor.js'), dir], {
        label: 'floor ponger',
      })
      const pinger = require('../baseline/floor').createPinger(dir)
      samples = []
      for (let i = 0; i < warmup + count; i++) {
        const t0 = process.hrtime.bigint()
        await pinger.roundTrip()
        if (i >= warmup) samples.push(Number(process.hrtime.bigint() - t0) / 1e6)
      }
      pinger.close()
    } else if (impl === 'protocol-floor' || impl === 'protocol-floor-rename') {
      const bin = require('../baseline/protocol-floor').binary()
      const mode = impl === 'protocol-floor-rename' ? ['--rename'] : []
      peer = await u.spawnPeer(bin, ['serve', dir, ...mode], { label: 'protocol floor backend' })
      const out = execFileSync(bin, ['ping', dir, String(count), String(warmup), ...mode], {
        encoding: 'utf8',
        timeout: 10 * 60 * 1000,
      })
      samples = JSON.parse(out.trim().split('\n').pop()).samples_ms
    } else {
      throw new Error(`unknown impl ${impl}`)
    }
    const exit = await u.stopPeer(peer)
    peer = null
    if (exit && (exit.code || exit.signal) && exit.signal !== 'SIGKILL') {
      throw new Error(`peer exited with ${exit.signal || exit.code}`)
    }
    const stats = u.percentiles(samples)
    u.emitResult({ impl, count: stats.n, p50: stats.p50, p99: stats.p99, mean: stats.mean, max: stats.max })
  } finally {
    sleepAgain()
    if (peer) await u.stopPeer(peer, 500)
    u.rmDir(dir)
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
