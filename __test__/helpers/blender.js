'use strict'

// Finds and runs Blender as a real DCC host for __test__/blender (jest.blender.config.js).
//
// Blender runs on the system Python (/usr/bin/python3 on Debian; PEP 668 "externally managed"), so
// ipckit==0.1.12 and ipckit_peer live in a venv made from it, whose site-packages go on PYTHONPATH:
// $IPCKIT_BLENDER_SITE (scripts/test-all.sh exports what scripts/setup-blender.sh printed), else
// this runs scripts/setup-blender.sh itself (which installs Blender with apt when it can). No
// Blender is an error, never a skip.
//
// Each Blender gets a TMPDIR of its own (a killed Blender leaves blender_* directories there),
// removed with the harness's directories.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { PyProcess } = require('./python')

const ROOT = path.resolve(__dirname, '..', '..')
const SETUP_SCRIPT = path.join(ROOT, 'scripts', 'setup-blender.sh')

/** Why Blender with `site` on PYTHONPATH cannot run an ipckit_peer backend, or null. */
function whyUnusable(site) {
  if (!site) return 'not set'
  if (!fs.existsSync(site)) return `${site} does not exist`
  const probe = spawnSync(
    'blender',
    ['-b', '--factory-startup', '--python-exit-code', '1', '--python-expr', 'import ipckit, ipckit_peer'],
    { encoding: 'utf8', timeout: 60000, env: { ...process.env, PYTHONPATH: site } },
  )
  if (probe.error) return `blender cannot run: ${probe.error.message}`
  if (probe.status !== 0) return `blender cannot import ipckit_peer from ${site}: ${tail(probe.stderr + probe.stdout)}`
  return null
}

function tail(text, lines = 5) {
  return text.trim().split('\n').slice(-lines).join('\n')
}

let found = null

/** The site-packages directory that Blender's PYTHONPATH needs; throws with every reason when none. */
function blenderSite() {
  if (found) return found
  const reasons = []
  const given = process.env.IPCKIT_BLENDER_SITE
  if (given) {
    const why = whyUnusable(given)
    if (!why) return (found = given)
    reasons.push(`IPCKIT_BLENDER_SITE: ${why}`)
  }
  const setup = spawnSync('bash', [SETUP_SCRIPT], { encoding: 'utf8', timeout: 600000 })
  const printed = (setup.stdout || '').trim().split('\n').pop()
  if (setup.status === 0 && printed) return (found = printed)
  reasons.push(
    `setup-blender.sh failed (${setup.error ? setup.error.message : `exit ${setup.status}`}): ${tail(setup.stderr || '')}`,
  )
  throw new Error(`Blender with ipckit_peer is required by this suite and is not available:\n  ${reasons.join('\n  ')}`)
}

/**
 * Starts `blender -b --factory-startup --python-exit-code 1 --python <script> -- ...args`
 * (`gui: true`: `xvfb-run -a blender --factory-startup --python <script> -- ...args`), with
 * PYTHONPATH set to blenderSite() (or `env.PYTHONPATH`) and a fresh TMPDIR from `harness.tmpDir()`.
 * Returns the running PyProcess (JSON lines on stdout; kill() sends SIGKILL, under Xvfb to the
 * whole group), ended by python.killAll().
 */
function startBlender(harness, script, args = [], { gui = false, env = {} } = {}) {
  const blenderArgs = gui
    ? ['-a', 'blender', '--factory-startup', '--python', script, '--', ...args]
    : ['-b', '--factory-startup', '--python-exit-code', '1', '--python', script, '--', ...args]
  return new PyProcess(gui ? 'xvfb-run' : 'blender', blenderArgs, `blender ${path.basename(script)}`, {
    env: { PYTHONPATH: env.PYTHONPATH ?? blenderSite(), TMPDIR: harness.tmpDir('ipckit-blender-tmp-'), ...env },
    group: gui,
  })
}

/** Kills the process with SIGKILL (`kill -9`) and waits until it is gone. */
async function kill9(blender) {
  blender.kill('SIGKILL')
  await blender.exited
}

module.exports = { ROOT, SETUP_SCRIPT, blenderSite, startBlender, kill9 }

/**
 * `channel.ready()`, raced against Blender's exit (the pattern docs/dcc.md documents): a backend
 * that dies first (a failed import, a crash) rejects at once with an Error naming its exit code
 * and output, instead of looking like a slow backend until `timeoutMs`.
 */
async function readyOrExit(channel, blender, timeoutMs = 60000) {
  const abort = new AbortController()
  blender.exited.then((result) =>
    abort.abort(
      new Error(`Blender exited (${result.signal ?? result.code}) before its backend was ready\n${blender.describe()}`),
    ),
  )
  try {
    return await channel.ready({ timeoutMs, signal: abort.signal })
  } catch (error) {
    throw abort.signal.aborted ? abort.signal.reason : error
  }
}

module.exports.readyOrExit = readyOrExit
