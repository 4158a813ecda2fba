'use strict'

// `ipckit bench`: request/response round trips through a temporary channel, with the backend
// in a child process (lib/cli/bench-backend.js), reported as percentiles.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { EXIT, CliError, usageError, parseCommandArgs, intOption, out } = require('./common.js')

const summary = 'a quick local round-trip figure (Node backend in a child process)'

const help = `Usage: ipckit bench [options]

Starts a Node backend (FileChannel.backend(dir).serve) in a child process on a temporary
channel, sends <count> echo requests one after the other from this process, and prints the
round-trip times: p50, p90, p99, min, max, mean, and requests per second.

Options:
      --count <n>          requests to time (default 200)
      --warmup <n>         untimed requests first (default 20)
      --payload-bytes <n>  size of the string echoed (default 64)
      --dir <dir>          channel directory to use (default: a new temporary one, removed after)
      --json               print one JSON object instead of text
  -h, --help               show this help
`

const ARGS = {
  count: { type: 'string' },
  warmup: { type: 'string' },
  'payload-bytes': { type: 'string' },
  dir: { type: 'string' },
  json: { type: 'boolean' },
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length) - 1
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]
}

function startBackend(dir) {
  const child = spawn(process.execPath, [path.join(__dirname, 'bench-backend.js'), dir], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const ready = new Promise((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => reject(new CliError('the benchmark backend did not start within 10 s')), 10000)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      text += chunk
      if (text.includes('ready\n')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new CliError(`the benchmark backend exited early (${signal ?? `code ${code}`})`))
    })
  })
  return { child, ready }
}

async function run(argv) {
  const { values, positionals } = parseCommandArgs('bench', argv, ARGS)
  if (values.help) {
    out(help)
    return EXIT.OK
  }
  if (positionals.length > 0) throw usageError(`unexpected argument '${positionals[0]}'; see 'ipckit bench --help'`)
  const count = intOption(values.count, 'count', 200, 1)
  const warmup = intOption(values.warmup, 'warmup', 20, 0)
  const payloadBytes = intOption(values['payload-bytes'], 'payload-bytes', 64, 0)

  const { FileChannel } = require('../channel.js')
  const ownDir = values.dir === undefined
  const dir = ownDir ? fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-bench-')) : values.dir
  const { child, ready } = startBackend(dir)
  let frontend = null
  try {
    await ready
    frontend = FileChannel.frontend(dir)
    const payload = 'x'.repeat(payloadBytes)
    for (let i = 0; i < warmup; i++) await frontend.request('echo', payload, { timeoutMs: 10000 })
    const times = []
    const started = process.hrtime.bigint()
    for (let i = 0; i < count; i++) {
      const t0 = process.hrtime.bigint()
      const answer = await frontend.request('echo', payload, { timeoutMs: 10000 })
      times.push(Number(process.hrtime.bigint() - t0) / 1e6)
      if (answer !== payload) throw new CliError(`request ${i} came back altered`)
    }
    const totalMs = Number(process.hrtime.bigint() - started) / 1e6
    await frontend.request('stop', null, { timeoutMs: 5000 }).catch(() => {})
    const sorted = [...times].sort((a, b) => a - b)
    const result = {
      count,
      payloadBytes,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      p99Ms: percentile(sorted, 99),
      minMs: sorted[0],
      maxMs: sorted[sorted.length - 1],
      meanMs: times.reduce((a, b) => a + b, 0) / times.length,
      requestsPerSecond: (count / totalMs) * 1000,
    }
    if (values.json) out(`${JSON.stringify(result)}\n`)
    else {
      const ms = (v) => `${v.toFixed(3)} ms`
      out(
        `ipckit bench: ${count} sequential round trips (echo of ${payloadBytes} bytes), ` +
          `Node ${process.version} ${result.platform}, backend in a child process\n` +
          `  p50 ${ms(result.p50Ms)}   p90 ${ms(result.p90Ms)}   p99 ${ms(result.p99Ms)}\n` +
          `  min ${ms(result.minMs)}   max ${ms(result.maxMs)}   mean ${ms(result.meanMs)}   ` +
          `${Math.round(result.requestsPerSecond)} requests/s\n`,
      )
    }
    return EXIT.OK
  } finally {
    frontend?.close()
    child.stdin.end()
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise((resolve) => {
        const timer = setTimeout(() => {
          child.kill()
          resolve()
        }, 2000)
        child.once('exit', () => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true })
  }
}

module.exports = { summary, help, run, percentile }
