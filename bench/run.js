#!/usr/bin/env node
'use strict'

// The benchmark suite: every contender side by side in one run.
//
//   node bench/run.js                 full suite (a few minutes); writes BENCHMARKS.md,
//                                     bench/results/<timestamp>.json and bench/results/latest.json
//   node bench/run.js --smoke         the whole pipeline with tiny counts (< 45 s); exits non-zero
//                                     if any contender crashes; writes only <tmpdir>/ipckit-bench-smoke.json
//   node bench/run.js --only latency  one metric or a comma-separated list (no BENCHMARKS.md)
//   node bench/run.js --repeat N      N runs of every case instead of the per-metric default
//   node bench/run.js --render        rewrite BENCHMARKS.md from bench/results/latest.json (no runs)
//
// Each case runs in its own process (and spawns its own peers), one at a time, and prints one
// "@@result {json}" line. Contenders of a metric are interleaved within each repeat, in an order
// rotated from one repeat to the next.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
const { spawn, execFileSync } = require('node:child_process')
const u = require('./lib/util')
const suite = require('./lib/suite')
const report = require('./lib/report')

function parseArgs(argv) {
  const args = { smoke: false, only: null, repeat: null, help: false, render: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const eq = a.indexOf('=')
      if (eq >= 0) return a.slice(eq + 1)
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--smoke') args.smoke = true
    else if (a === '--render') args.render = true
    else if (a === '--help' || a === '-h') args.help = true
    else if (a.startsWith('--only'))
      args.only = value()
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    else if (a.startsWith('--repeat')) {
      args.repeat = Number(value())
      if (!Number.isInteger(args.repeat) || args.repeat < 1) throw new Error('--repeat needs a positive integer')
    } else throw new Error(`unknown argument ${a}`)
  }
  return args
}

function sh(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20000 }).trim()
  } catch {
    return 'n/a'
  }
}

function machineInfo() {
  const cpus = os.cpus()
  const tmpdir = os.tmpdir()
  let addon = 'n/a'
  try {
    const file = fs.readdirSync(u.ROOT).find((f) => f.endsWith('.node'))
    if (file)
      addon = crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(u.ROOT, file)))
        .digest('hex')
        .slice(0, 12)
  } catch {
    // reported as n/a
  }
  let python = 'n/a'
  let pythonIpckit = 'n/a'
  try {
    const py = u.peerPython()
    python = sh(py, ['--version']).replace(/^Python /, '')
    pythonIpckit = sh(py, ['-c', 'from importlib.metadata import version; print(version("ipckit"))'])
  } catch {
    // reported as n/a; the Python cases will fail and say why
  }
  const dirty = sh('git', ['-C', u.ROOT, 'status', '--porcelain', '--untracked-files=no'])
  return {
    machine: {
      cpu: cpus[0]?.model?.trim() ?? 'unknown',
      cores: cpus.length,
      memGB: os.totalmem() / 2 ** 30,
      kernel: os.release(),
      os: `${os.type()} ${os.version()}`,
      arch: process.arch,
      tmpdir,
      tmpfsType: sh('df', ['--output=fstype', tmpdir]).split('\n').pop().trim(),
      loadavg: os.loadavg(),
    },
    versions: {
      node: process.version,
      python,
      pythonIpckit,
      rust: sh('rustc', ['--version']),
      ipckit: require(path.join(u.ROOT, 'package.json')).version,
      git: sh('git', ['-C', u.ROOT, 'rev-parse', '--short', 'HEAD']) + (dirty && dirty !== 'n/a' ? '+dirty' : ''),
      addon,
    },
  }
}

/** Runs one case process; resolves { result } or { error }. */
function runCase(c, smoke) {
  return new Promise((resolve) => {
    let command
    let args
    try {
      ;[command, args] = c.cmd(smoke)
    } catch (error) {
      resolve({ error: `could not start: ${error.message}` })
      return
    }
    const started = Date.now()
    const child = spawn(command, args, {
      cwd: u.ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...c.env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => {
      stderr += d
      if (stderr.length > 50000) stderr = stderr.slice(-50000)
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), c.timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      resolve({ error: `could not start ${command}: ${error.message}` })
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const line = stdout
        .split('\n')
        .reverse()
        .find((l) => l.startsWith(u.RESULT_PREFIX))
      const tail = stderr.trim().split('\n').slice(-15).join('\n')
      if (code !== 0 || signal) {
        const why =
          signal === 'SIGKILL' && Date.now() - started >= c.timeoutMs
            ? `timed out after ${c.timeoutMs} ms`
            : `exited with ${signal || code}`
        resolve({ error: `${why}${tail ? `\n${tail}` : ''}` })
      } else if (!line) {
        resolve({ error: `printed no result${tail ? `\n${tail}` : ''}` })
      } else {
        try {
          resolve({ result: JSON.parse(line.slice(u.RESULT_PREFIX.length)), ms: Date.now() - started })
        } catch (error) {
          resolve({ error: `bad result line: ${error.message}` })
        }
      }
    })
  })
}

/** Lets the previous case's dirty pages reach the disk before the next case starts. */
async function settle() {
  try {
    execFileSync('sync', { stdio: 'ignore', timeout: 30000 })
  } catch {
    // not fatal
  }
  await u.sleep(200)
}

function brief(c, result) {
  return c.fields
    .slice(0, 3)
    .map(([key, label, unit]) => `${label} ${suite.fmt(suite.get(result, key))}${unit ? ` ${unit}` : ''}`)
    .join(', ')
}

async function main() {
  let args
  try {
    args = parseArgs(process.argv.slice(2))
  } catch (error) {
    error.usage = true
    throw error
  }
  if (args.help) {
    const lines = fs.readFileSync(__filename, 'utf8').split('\n').slice(3)
    const end = lines.findIndex((l) => !l.startsWith('//'))
    process.stdout.write(
      `${lines
        .slice(0, end)
        .map((l) => l.replace(/^\/\/ ?/, ''))
        .join('\n')}\n`,
    )
    return 0
  }
  if (args.render) {
    const latest = path.join(u.ROOT, 'bench', 'results', 'latest.json')
    const run = JSON.parse(fs.readFileSync(latest, 'utf8'))
    const file = run.meta.resultFile || `bench/results/${run.meta.started.replace(/[:.]/g, '-')}.json`
    fs.writeFileSync(path.join(u.ROOT, 'BENCHMARKS.md'), report.markdown(run, file))
    process.stdout.write(`BENCHMARKS.md rewritten from ${path.relative(process.cwd(), latest)}\n`)
    return 0
  }
  const all = suite.metrics(args.smoke)
  let selected = suite.ORDER.filter((name) => all[name])
  if (args.only) {
    const wanted = args.only.map((n) => suite.ALIASES[n] || n)
    const unknown = wanted.filter((n) => !all[n])
    if (unknown.length) {
      throw Object.assign(new Error(`unknown metric ${unknown.join(', ')}; choose from ${selected.join(', ')}`), {
        usage: true,
      })
    }
    selected = selected.filter((n) => wanted.includes(n))
  }

  const t0 = Date.now()
  const meta = {
    started: new Date().toISOString(),
    mode: args.smoke ? 'smoke' : args.only ? 'partial' : 'full',
    argv: process.argv.slice(2),
    ...machineInfo(),
  }
  const log = (s) => process.stderr.write(`${s}\n`)
  log(`ipckit benchmarks (${meta.mode}): ${selected.join(', ')}`)
  log(
    `${meta.machine.cpu} x${meta.machine.cores}, node ${meta.versions.node}, python ${meta.versions.python}, load ${meta.machine.loadavg.map((x) => x.toFixed(2)).join(' ')}`,
  )

  // What some cases need first (the protocol floor's cargo build), once each, before any case runs,
  // so that no build lands inside a measurement. A failed preparation fails those cases only.
  const prepared = new Map()
  for (const name of selected) {
    for (const c of all[name].cases) {
      if (!c.prepare || prepared.has(c.prepare)) continue
      const started = Date.now()
      try {
        c.prepare()
        prepared.set(c.prepare, null)
        log(`prepared ${c.label} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
      } catch (error) {
        prepared.set(c.prepare, error.message)
        log(`could not prepare ${c.label}: ${error.message}`)
      }
    }
  }

  const metrics = {}
  const summary = {}
  const errors = []
  for (const name of selected) {
    const metric = all[name]
    metrics[name] = metric
    const repeatsOf = (c) => (args.smoke ? 1 : (args.repeat ?? c.repeats ?? metric.repeats))
    const maxRepeats = Math.max(...metric.cases.map(repeatsOf))
    for (const c of metric.cases) summary[c.id] = { label: c.label, runs: 0, results: [], errors: [] }
    for (let rep = 1; rep <= maxRepeats; rep++) {
      // Rotate the order each repeat, so no contender always runs right after the same other one
      // (a case that writes a lot leaves the file system busy writing back for a while).
      const shift = (rep - 1) % metric.cases.length
      const order = [...metric.cases.slice(shift), ...metric.cases.slice(0, shift)]
      for (const c of order) {
        if (rep > repeatsOf(c)) continue
        if (!args.smoke) await settle()
        const unprepared = c.prepare && prepared.get(c.prepare)
        const outcome = unprepared ? { error: `not prepared: ${unprepared}` } : await runCase(c, args.smoke)
        const s = summary[c.id]
        s.runs++
        if (outcome.error) {
          s.errors.push(outcome.error)
          errors.push({ case: c.id, run: rep, error: outcome.error })
          log(`[${name} ${rep}/${repeatsOf(c)}] ${c.label}: FAILED ${outcome.error}`)
        } else {
          s.results.push(outcome.result)
          log(
            `[${name} ${rep}/${repeatsOf(c)}] ${c.label}: ${brief(c, outcome.result)} (${(outcome.ms / 1000).toFixed(1)} s)`,
          )
        }
      }
    }
    for (const c of metric.cases) {
      const s = summary[c.id]
      s.fields = {}
      for (const [key] of c.fields) s.fields[key] = u.summarize(s.results.map((r) => suite.get(r, key)))
      s.last = s.results[s.results.length - 1]
    }
  }

  const run = {
    meta: {
      ...meta,
      finished: new Date().toISOString(),
      seconds: (Date.now() - t0) / 1000,
      repeatNote: args.repeat
        ? `${args.repeat} runs`
        : 'the runs of each case (5 by default; 3 for the Python round trip, the Python companion, the event-loop test, acknowledgements, tmpfs throughput, event-loop block, bursts and timeouts; 1 for memory and for the 1,000 channels; 7 for load time)',
      loadavgEnd: os.loadavg(),
    },
    metrics: Object.fromEntries(
      Object.entries(metrics).map(([name, m]) => [
        name,
        { title: m.title, cases: m.cases.map((c) => ({ id: c.id, label: c.label, fields: c.fields, env: c.env })) },
      ]),
    ),
    summary,
    errors,
  }
  run.targets = suite.targets(summary)

  const stamp = run.meta.started.replace(/[:.]/g, '-')
  if (!args.smoke) run.meta.resultFile = `bench/results/${stamp}.json`
  let jsonPath
  const json = JSON.stringify(run, null, 2)
  if (args.smoke) {
    jsonPath = path.join(os.tmpdir(), 'ipckit-bench-smoke.json') // one file, overwritten each run
    fs.writeFileSync(jsonPath, json)
    report.markdown(run, 'bench/results/latest.json') // rendered, not written: the pipeline is exercised
  } else {
    const dir = path.join(u.ROOT, 'bench', 'results')
    fs.mkdirSync(dir, { recursive: true })
    jsonPath = path.join(dir, `${stamp}.json`)
    fs.writeFileSync(`${jsonPath}.tmp`, json)
    fs.renameSync(`${jsonPath}.tmp`, jsonPath)
    if (meta.mode === 'full') {
      const latest = path.join(dir, 'latest.json')
      fs.writeFileSync(`${latest}.tmp`, json)
      fs.renameSync(`${latest}.tmp`, latest)
      const md = path.join(u.ROOT, 'BENCHMARKS.md')
      fs.writeFileSync(`${md}.tmp`, report.markdown(run, path.relative(u.ROOT, jsonPath)))
      fs.renameSync(`${md}.tmp`, md)
    }
  }

  const targetNote = args.smoke ? ' (smoke counts: not meaningful, the pipeline is what is checked)' : ''
  process.stdout.write(
    `\n${report.consoleTable(run)}\n\nTargets${targetNote}:\n${report.consoleTargets(run.targets)}\n\n`,
  )
  process.stdout.write(`Raw numbers: ${path.relative(process.cwd(), jsonPath) || jsonPath}`)
  process.stdout.write(meta.mode === 'full' ? ' (and bench/results/latest.json); BENCHMARKS.md rewritten\n' : '\n')
  process.stdout.write(`Finished in ${run.meta.seconds.toFixed(1)} s\n`)
  if (errors.length) {
    process.stdout.write(`\n${errors.length} case run(s) failed:\n`)
    for (const e of errors) process.stdout.write(`- ${e.case} (run ${e.run}): ${e.error.split('\n')[0]}\n`)
    return 1
  }
  return 0
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error.usage ? `bench/run.js: ${error.message} (see --help)` : error.stack || error)
    process.exit(2)
  },
)
