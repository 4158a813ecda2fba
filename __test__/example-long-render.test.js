'use strict'

// examples/long-render run end to end, as its README says, without a terminal: the Python
// backend (ipckit_peer, from python/) and the Node frontend, which cancels after N progress
// updates (--abort-after) as Ctrl-C would. The example cannot rot without this test failing.
// Python is found by helpers/python.js: under CI=true a missing Python fails, never skips.

const fs = require('node:fs')
const path = require('node:path')
const { waitFor, spawnLines } = require('../test-support')
const py = require('./helpers/python')

const ROOT = path.resolve(__dirname, '..')
const EXAMPLE = path.join(ROOT, 'examples', 'long-render')

const h = py.usePythonHarness() // its cleanup kills what is still running, too

/** Runs a command: a LineProcess (test-support) of its output lines, killed by h.cleanup(). */
function run(command, args, env = {}, cwd = EXAMPLE) {
  return h.trackProcess(
    spawnLines(command, args, {
      cwd,
      env: { PYTHONUNBUFFERED: '1', ...env },
      stdin: 'ignore',
      keepBlankLines: true,
      label: path.basename(args[0]),
    }),
  )
}

function backend(dir, frameSeconds) {
  return run(py.peerPython(), ['backend.py', dir, '--frame-seconds', String(frameSeconds)], {
    PYTHONPATH: path.join(ROOT, 'python'),
  })
}

function frontend(dir, args = [], env = {}) {
  return run(process.execPath, ['frontend.mjs', dir, ...args], env)
}

/** Waits for a line of `proc` matching `pattern`; fails with its output when it exits first. */
function line(proc, pattern, timeoutMs = 20000) {
  return proc.waitForLine(pattern, { timeoutMs, what: `${pattern}` })
}

const progressLines = (proc) => proc.lines.filter((l) => l.startsWith('['))

test('cancelling after 5 updates (as Ctrl-C does) reaches the Python handler, which stops; the frontend exits 130', async () => {
  const dir = h.channelDir()
  // The frontend starts first: it waits in ready() for the backend to announce itself.
  const front = frontend(dir, ['--frames', '400'], { IPCKIT_ABORT_AFTER: '5' })
  await line(front, /waiting for the backend/)
  const back = backend(dir, 0.02)
  await line(back, /serving 'render'/)
  expect(await front.exited).toMatchObject({ code: 130, signal: null })
  expect(front.lines).toContain(
    'frontend: cancelled (aborted after 5 updates (--abort-after)); the backend was told to stop',
  )
  expect(front.lines).toContain('frontend: the backend stopped (its late answer was dropped)')
  expect(progressLines(front)).toEqual(
    [1, 2, 3, 4, 5].map((n) => expect.stringMatching(new RegExp(`\\]  ${n}/400 .* frame ${n}/400$`))),
  )
  const cancelled = await line(back, /cancelled at frame/)
  expect(cancelled).toMatch(
    /^backend: render shot_010: cancelled at frame \d+ of 400 \(reason: aborted after 5 updates/,
  )
  // Well before the end: the handler stopped on the cancel, not by finishing.
  expect(Number(/frame (\d+)/.exec(cancelled)[1])).toBeLessThan(400)
  expect(front.stderr).toBe('')
  back.kill('SIGTERM')
  expect(await back.exited).toMatchObject({ code: 0, signal: null })
  expect(back.lines.at(-1)).toBe('backend: closed')
  expect(back.stderr).toBe('')
})

test('--abort-after as a flag; a render that is not cancelled completes with every frame in order', async () => {
  const dir = h.channelDir()
  const back = backend(dir, 0.005)
  await line(back, /serving 'render'/)
  const full = frontend(dir, ['--frames', '12'])
  expect(await full.exited).toMatchObject({ code: 0, signal: null })
  expect(progressLines(full)).toEqual(Array.from({ length: 12 }, (_, i) => expect.stringContaining(`  ${i + 1}/12 `)))
  expect(full.lines).toContain('frontend: done: {"frames":12,"output":"shot_010_####.exr"}')
  await line(back, /done, 12 frames/)

  const aborted = frontend(dir, ['--frames', '5000', '--abort-after', '2'])
  expect(await aborted.exited).toMatchObject({ code: 130, signal: null })
  expect(progressLines(aborted)).toHaveLength(2)
  await line(back, /cancelled at frame \d+ of 5000/)
})

test('the backend stopping mid-render fails the call with EPEERGONE at once', async () => {
  const dir = h.channelDir()
  const back = backend(dir, 0.02)
  await line(back, /serving 'render'/)
  const front = frontend(dir, ['--frames', '5000'])
  await waitFor(() => progressLines(front).length >= 3, { timeoutMs: 20000, what: 'three progress updates' })
  back.kill('SIGTERM') // backend.py closes its peer: backend_shutdown
  expect(await front.exited).toMatchObject({ code: 1, signal: null })
  expect(front.stderr).toMatch(/the backend \(pid \d+\) is gone/)
  expect(front.stderr).toMatch(/frontend: EPEERGONE: /)
})

// The README's "Long-running calls" section, run verbatim: its frontend block against each of its
// two Python backends (ipckit_peer, and the reference API by hand), in a project of its own.
describe("the README's long-call blocks", () => {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const section = text.slice(text.indexOf('## Long-running calls'), text.indexOf('## Testing your frontend'))
  const js = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
  const python = [...section.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1])
  // The blocks leave the work itself to the reader.
  const renderFrame = 'import time\ndef render_frame(frame):\n    time.sleep(0.002)\n\n'

  test.each([
    ['the ipckit_peer', 0],
    ['a hand-written reference-API', 1],
  ])('the frontend renders 100 frames with progress from %s backend', async (label, index) => {
    expect(js[0].startsWith('// render-frontend.mjs\n')).toBe(true)
    expect(python).toHaveLength(2)
    const project = h.tmpDir('ipckit-readme-long-')
    fs.mkdirSync(path.join(project, 'node_modules'))
    fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'ipckit'), 'dir')
    fs.writeFileSync(path.join(project, 'render-frontend.mjs'), js[0])
    fs.writeFileSync(path.join(project, 'backend.py'), renderFrame + python[index])
    const back = run(py.peerPython(), ['backend.py'], { PYTHONPATH: path.join(ROOT, 'python') }, project)
    const front = run(process.execPath, ['render-frontend.mjs'], {}, project)
    expect(await front.exited).toMatchObject({ code: 0, signal: null })
    expect(front.stderr).toBe('')
    // A 'peer' event for each change: ready, then (ipckit_peer) maybe again with its methods.
    const presence = front.lines.filter((l) => l.startsWith('backend is '))
    expect(presence.length).toBeGreaterThan(0)
    expect(new Set(presence)).toEqual(new Set(['backend is ready']))
    expect(front.lines.filter((l) => !l.startsWith('backend is '))).toEqual([
      ...Array.from({ length: 100 }, (_, i) => `${i + 1}/100 frame ${i + 1}`),
      'rendered { frames: 100 }',
    ])
    expect(back.running).toBe(true) // still serving
    expect(back.stderr).toBe('')
  })
})
