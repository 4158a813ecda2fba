'use strict'

// Helpers shared by the benchmark cases and the runner. Sleeping, percentiles and child processes
// read by lines come from test-support/ (shared with the jest suites).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { sleep, median, summary, spawnLines } = require('../../test-support')

const ROOT = path.resolve(__dirname, '..', '..')
const RESULT_PREFIX = '@@result '

function tmpDir(tag) {
  return fs.mkdtempSync(path.join(process.env.IPCKIT_BENCH_TMPDIR || os.tmpdir(), `ipckit-bench-${tag}-`))
}

function rmDir(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true })
  } catch {
    // best effort
  }
}

/** { n, p50, p99, min, max, mean } of one run's samples (nearest-rank percentiles). */
const percentiles = summary

/** min / median / max of the values of several runs. */
function summarize(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x))
  if (v.length === 0) return { min: NaN, median: NaN, max: NaN, runs: values }
  return { min: Math.min(...v), median: median(v), max: Math.max(...v), runs: values }
}

/** A JSON payload object whose JSON.stringify text is exactly `size` bytes. */
function makePayload(size) {
  const overhead = JSON.stringify({ data: '' }).length
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  let data = ''
  while (data.length < size - overhead) data += alphabet
  return { data: data.slice(0, Math.max(0, size - overhead)) }
}

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6
}

/** Prints a case's result for the runner (one line, last thing on stdout). */
function emitResult(result) {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`)
}

/**
 * Spawns a peer process that prints a line containing "ready" when it can serve: a LineProcess
 * (test-support; `lines`, `child`, `stderr`, `stop()`) once it is ready. Rejects, having killed it,
 * if it exits first or is not ready within `timeoutMs`.
 */
async function spawnPeer(command, args, { timeoutMs = 15000, env, label = command } = {}) {
  const peer = spawnLines(command, args, { env, label, stderrLimit: 20000 })
  try {
    await peer.waitForLine('ready', { timeoutMs, what: `${label} to get ready` })
  } catch (error) {
    peer.kill('SIGKILL')
    throw peer.spawnError ?? error
  }
  return peer
}

/** Ends a peer: closes its stdin, waits for it to exit (killing it after `graceMs`); its { code, signal }. */
function stopPeer(peer, graceMs = 3000) {
  return peer.stop(graceMs)
}

/** The python of the reference peer's venv (created by scripts/setup-python-peer.sh if missing). */
let cachedPython
function peerPython() {
  if (cachedPython) return cachedPython
  if (process.env.IPCKIT_PEER_PYTHON && fs.existsSync(process.env.IPCKIT_PEER_PYTHON)) {
    cachedPython = process.env.IPCKIT_PEER_PYTHON
    return cachedPython
  }
  const out = execFileSync('bash', [path.join(ROOT, 'scripts', 'setup-python-peer.sh')], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  cachedPython = out.trim().split('\n').pop()
  return cachedPython
}

function pyScript(name) {
  return path.join(ROOT, 'bench', 'python', name)
}

/**
 * A benchmark must not report a polling number as a watcher's: the first `EWATCH` (the channel's
 * watcher failed and it fell back to polling) ends the process with exit code 3. Other problems
 * are counted in the returned object (by code) unless `onError` takes them.
 */
function failOnPolling(channel, label, onError) {
  const counts = {}
  channel.on('error', (error) => {
    if (error && error.code === 'EWATCH') {
      process.stderr.write(
        `${label}: EWATCH, the channel fell back to polling; not reporting a polling number\n${error.message}\n`,
      )
      process.exit(3)
    }
    const code = (error && (error.code || error.name)) || 'unknown'
    counts[code] = (counts[code] || 0) + 1
    if (onError) onError(error)
  })
  return counts
}

/** Threads of this process (Linux: /proc/self/task), or NaN elsewhere. */
function threadCount() {
  try {
    return fs.readdirSync('/proc/self/task').length
  } catch {
    return NaN
  }
}

/** inotify instances this process holds (its `anon_inode:inotify` descriptors), or NaN. */
function inotifyCount() {
  try {
    let n = 0
    for (const fd of fs.readdirSync('/proc/self/fd')) {
      try {
        if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:inotify') n++
      } catch {
        // closed meanwhile
      }
    }
    return n
  } catch {
    return NaN
  }
}

/**
 * Context switches of every thread of this process (voluntary + involuntary), summed: each is a
 * wake-up of some thread. Threads that ended are not counted. NaN where /proc is missing.
 */
/**
 * CPU seconds used so far by this process's threads whose name starts with one of `prefixes`
 * (utime + stime of /proc/self/task/<tid>/stat), or NaN.
 */
function threadCpuSeconds(prefixes) {
  try {
    const ticksPerSecond = 100 // USER_HZ on Linux
    let ticks = 0
    for (const task of fs.readdirSync('/proc/self/task')) {
      try {
        const name = fs.readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim()
        if (!prefixes.some((prefix) => name.startsWith(prefix))) continue
        const stat = fs.readFileSync(`/proc/self/task/${task}/stat`, 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        ticks += Number(fields[11]) + Number(fields[12])
      } catch {
        // the thread ended meanwhile
      }
    }
    return ticks / ticksPerSecond
  } catch {
    return NaN
  }
}

function contextSwitches() {
  try {
    let total = 0
    for (const task of fs.readdirSync('/proc/self/task')) {
      try {
        const status = fs.readFileSync(`/proc/self/task/${task}/status`, 'utf8')
        for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) total += Number(m[1])
      } catch {
        // the thread ended meanwhile
      }
    }
    return total
  } catch {
    return NaN
  }
}

/** Runs a case's `main()`: exits 0 when it resolves (peers and timers must not keep it alive), 1 on error. */
function runCase(main) {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    },
  )
}

module.exports = {
  runCase,
  ROOT,
  RESULT_PREFIX,
  sleep,
  tmpDir,
  rmDir,
  percentiles,
  summarize,
  makePayload,
  nowMs,
  emitResult,
  spawnPeer,
  stopPeer,
  peerPython,
  pyScript,
  failOnPolling,
  threadCount,
  inotifyCount,
  contextSwitches,
  threadCpuSeconds,
}
