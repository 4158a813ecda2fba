'use strict'

// Finds and drives the reference peer: the PyPI package ipckit==0.1.12 in a venv, used through
// __test__/peer/python_peer.py (or a short inline script when a test needs something the CLI does
// not offer, such as numbered payloads).
//
// Which python: $IPCKIT_PEER_PYTHON, else <repo>/.peer-venv/bin/python. If neither has the peer,
// under CI=true this throws (the interop suite must fail, never skip); elsewhere it runs
// scripts/setup-python-peer.sh, which creates the venv from PyPI, and uses the python it prints.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { LineProcess } = require('../../test-support')
const { createHarness } = require('./channels')

const ROOT = path.resolve(__dirname, '..', '..')
const PEER_SCRIPT = path.join(ROOT, '__test__', 'peer', 'python_peer.py')
const SETUP_SCRIPT = path.join(ROOT, 'scripts', 'setup-python-peer.sh')
const VENV_PYTHON = path.join(ROOT, '.peer-venv', 'bin', 'python')
const PEER_VERSION = '0.1.12'

/** Why `python` cannot serve as the peer, or null when it can. */
function whyUnusable(python) {
  if (!python) return 'not set'
  if (!fs.existsSync(python)) return `${python} does not exist`
  const probe = spawnSync(
    python,
    ['-c', 'import ipckit, sys; from importlib.metadata import version; sys.stdout.write(version("ipckit"))'],
    { encoding: 'utf8', timeout: 20000 },
  )
  if (probe.error) return `${python} cannot run: ${probe.error.message}`
  if (probe.status !== 0) return `${python} cannot import ipckit: ${probe.stderr.trim().split('\n').pop()}`
  if (probe.stdout.trim() !== PEER_VERSION) {
    return `${python} has ipckit ${probe.stdout.trim()}, not ${PEER_VERSION}`
  }
  return null
}

let found = null

/**
 * The path of a python that has ipckit==0.1.12. Throws, with every reason, when there is none
 * (and, outside CI, the setup script could not make one).
 */
function peerPython() {
  if (found) return found
  const reasons = []
  const candidates = [
    ['IPCKIT_PEER_PYTHON', process.env.IPCKIT_PEER_PYTHON],
    ['.peer-venv', fs.existsSync(VENV_PYTHON) ? VENV_PYTHON : undefined],
  ]
  for (const [source, python] of candidates) {
    if (!python) {
      reasons.push(`${source}: not set / not present`)
      continue
    }
    const why = whyUnusable(python)
    if (!why) return (found = python)
    reasons.push(`${source}: ${why}`)
  }
  if (process.env.CI === 'true') {
    throw new Error(
      `The Python reference peer (ipckit==${PEER_VERSION}) is required under CI=true, and none was found:\n  ` +
        `${reasons.join('\n  ')}\nRun scripts/setup-python-peer.sh and export IPCKIT_PEER_PYTHON=<the path it prints>.`,
    )
  }
  const setup = spawnSync('bash', [SETUP_SCRIPT], {
    encoding: 'utf8',
    timeout: 240000,
  })
  const printed = (setup.stdout || '').trim().split('\n').pop()
  if (setup.status === 0 && printed) {
    const why = whyUnusable(printed)
    if (!why) return (found = printed)
    reasons.push(`setup-python-peer.sh printed ${printed}: ${why}`)
  } else {
    reasons.push(
      `setup-python-peer.sh failed (${setup.error ? setup.error.message : `exit ${setup.status}`}): ` +
        `${(setup.stderr || '').trim()}`,
    )
  }
  throw new Error(`No usable Python reference peer (ipckit==${PEER_VERSION}):\n  ${reasons.join('\n  ')}`)
}

const live = new Set()

/**
 * A running python process that prints one JSON object per line: a LineProcess (test-support
 * spawnLines(), with `json: true`) run from the repository root, unbuffered, UTF-8. `lines` holds
 * the parsed objects in order (a line that is not JSON is kept as `{ unparsed: text }`), `texts`
 * the lines as printed (JSON.parse loses the digits of big integers). `options.env` is added to
 * the environment; `options.group: true` starts it in a process group of its own, which kill()
 * signals as a whole (helpers/blender.js: `xvfb-run` starts Xvfb and Blender as children).
 */
class PyProcess extends LineProcess {
  constructor(python, argv, label, options = {}) {
    super(python, argv, {
      cwd: ROOT,
      env: { PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8', ...options.env },
      json: true,
      label: `python ${label}`,
      group: options.group === true,
    })
    live.add(this)
    this.exited.then(() => live.delete(this))
  }

  /** Resolves with the first line for which `predicate` is true. Rejects on an {"error"} line or exit. */
  waitFor(predicate, timeoutMs = 10000, what = 'the expected line') {
    return this.waitForLine(predicate, { timeoutMs, what, failOn: (line) => line.error !== undefined })
  }

  /** Waits for {"ready": true}: the peer's channel is open. */
  ready(timeoutMs = 10000) {
    return this.waitFor((l) => l.ready === true, timeoutMs, '{"ready": true}').then(() => this)
  }
}

function kebab(name) {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}

/**
 * CLI flags of python_peer.py from an object; `params` is JSON-encoded, `paramsJson` is passed
 * as `--params` verbatim (for numbers JavaScript cannot hold), `true` is a bare flag.
 */
function flags(options) {
  const argv = []
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === false) continue
    if (key === 'paramsJson') {
      argv.push('--params', value)
      continue
    }
    argv.push(`--${kebab(key)}`)
    if (value === true) continue
    argv.push(key === 'params' ? JSON.stringify(value) : String(value))
  }
  return argv
}

/** Starts `python_peer.py <command> --flags...`. */
function startPeer(command, options = {}) {
  const argv = [PEER_SCRIPT, command, ...flags(options)]
  return new PyProcess(peerPython(), argv, `python_peer.py ${argv.slice(1).join(' ')}`)
}

/** Runs `python_peer.py <command>` to completion; throws with its output unless it exits 0. */
async function runPeer(command, options = {}, timeoutMs = 15000) {
  const peer = startPeer(command, options)
  await peer.success(timeoutMs)
  return peer
}

// Shared by the inline scripts: the reference package, JSON lines out, and a type-annotated
// view of a value ("int" and "float" are Python's types, numbers as Python prints them).
const PRELUDE = `
import json, sys, time
import ipckit

def emit(obj):
    print(json.dumps(obj), flush=True)

def typed(v):
    if v is None:
        return ["null"]
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, int):
        return ["int", str(v)]
    if isinstance(v, float):
        return ["float", repr(v)]
    if isinstance(v, str):
        return ["str", v]
    if isinstance(v, list):
        return ["list", [typed(x) for x in v]]
    if isinstance(v, dict):
        return ["dict", {k: typed(x) for k, x in v.items()}]
    return ["other", repr(v)]

ARGS = json.loads(sys.argv[1])
`

/**
 * Runs an inline python script (after PRELUDE: `ipckit`, `emit`, `typed`, and `ARGS`, the parsed
 * `args`). Returns the running process.
 */
function startPython(code, args = {}, label = 'inline script') {
  return new PyProcess(peerPython(), ['-c', `${PRELUDE}\n${code}`, JSON.stringify(args)], label)
}

async function runPython(code, args = {}, timeoutMs = 15000, label) {
  const script = startPython(code, args, label)
  await script.success(timeoutMs)
  return script
}

/** Kills every python process still running and waits for them to go. */
async function killAll() {
  const running = [...live]
  for (const p of running) p.kill()
  await Promise.all(running.map((p) => p.exited))
}

/**
 * For a suite that drives Python: fails every test (in beforeAll) when no peer python is usable,
 * and returns a harness (helpers/channels.js) whose cleanup runs after each test, once every
 * python process still running has been killed.
 */
function usePythonHarness() {
  const harness = createHarness()
  beforeAll(() => {
    // Throws (failing every test of the suite) when no peer is usable.
    peerPython()
  }, 300000)
  afterEach(async () => {
    await killAll()
    await harness.cleanup()
  })
  return harness
}

// The end of a backend script that runs `peer.serve` on `thread`: it serves until "close"
// comes on stdin, then closes the peer and says {"closed": true}.
const SERVE_UNTIL_CLOSE = `
for line in sys.stdin:
    if line.strip() == "close":
        break
peer.close()
thread.join()
emit({"closed": True})
`

module.exports = {
  SERVE_UNTIL_CLOSE,
  PyProcess,
  PEER_SCRIPT,
  PEER_VERSION,
  peerPython,
  startPeer,
  runPeer,
  startPython,
  runPython,
  killAll,
  usePythonHarness,
}
