'use strict'

// docs/dcc.md's Blender recipes, run exactly as written: each fenced block after a
// `<!-- test: NAME -->` comment is copied into a scratch project (HOME inside it; ipckit in its
// node_modules, with the ipckit_peer wheel in python/dist/ as `npm pack` ships it) and run: the
// install commands with bash, the headless backend through the Node frontend, the frontend
// against a backend that cannot import ipckit_peer, the GUI backend under Xvfb. The excerpts in
// python/README.md marked `<!-- excerpt: NAME -->` must appear verbatim in the block NAME.

const { execFile, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { createHarness, readMessages, BACKEND_OUTBOX } = require('../helpers/channels')
const { waitFor } = require('../../test-support')
const py = require('../helpers/python')
const { ROOT, blenderSite, startBlender, readyOrExit } = require('../helpers/blender')

const CALL_MS = 30000

/** The fenced blocks of `file` that follow `<!-- KIND: NAME -->`, as [name, code] pairs. */
function markedBlocks(file, kind) {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8')
  const marked = new RegExp(`<!-- ${kind}: (\\S+) -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``, 'g')
  return [...text.matchAll(marked)].map(([, name, code]) => [name, code])
}

const blocks = Object.fromEntries(markedBlocks('docs/dcc.md', 'test'))
const h = createHarness()
let project
let home
let site

/** Runs `command args` in the scratch project; resolves { code, stdout, stderr, ms }. */
function run(command, args, { env = {}, timeoutMs = 120000 } = {}) {
  const started = performance.now()
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: project,
        timeout: timeoutMs,
        env: { ...process.env, HOME: home, TMPDIR: h.tmpDir('ipckit-blender-tmp-'), ...env },
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr, ms: performance.now() - started }),
    )
  })
}

beforeAll(async () => {
  blenderSite() // Blender itself, installed with apt when missing
  expect(Object.keys(blocks).sort()).toEqual([
    'blender-frontend',
    'blender-gui-backend',
    'blender-headless-backend',
    'blender-install',
  ])
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-dcc-docs-'))
  home = path.join(project, 'home')
  fs.mkdirSync(home)
  // node_modules/ipckit: this checkout, entry by entry, with a python/dist/ of its own holding the
  // wheel built now (the checkout's python/ is not written to).
  const pkg = path.join(project, 'node_modules', 'ipckit')
  fs.mkdirSync(path.join(pkg, 'python', 'dist'), { recursive: true })
  for (const entry of fs.readdirSync(ROOT)) {
    if (!['python', 'node_modules', '.git', 'target'].includes(entry) && !entry.startsWith('.')) {
      fs.symlinkSync(path.join(ROOT, entry), path.join(pkg, entry))
    }
  }
  const wheel = spawnSync(
    process.execPath,
    [path.join(ROOT, 'scripts', 'build-python-wheel.js'), '--out', path.join(pkg, 'python', 'dist')],
    { encoding: 'utf8', timeout: 300000 },
  )
  if (wheel.status !== 0) throw new Error(`build-python-wheel.js failed: ${wheel.stderr}`)

  fs.writeFileSync(path.join(project, 'install.sh'), blocks['blender-install'])
  // The user's pip cache: the block runs as written, without downloading ipckit again each time.
  const install = await run('bash', ['-euo', 'pipefail', 'install.sh'], {
    env: { PIP_CACHE_DIR: path.join(os.homedir(), '.cache', 'pip'), PIP_DISABLE_PIP_VERSION_CHECK: '1' },
    timeoutMs: 300000,
  })
  if (install.code !== 0)
    throw new Error(`the install block failed (${install.code}):\n${install.stdout}\n${install.stderr}`)
  site = path.join(home, 'ipckit-blender', 'lib', 'python3.11', 'site-packages')
  expect(fs.existsSync(path.join(site, 'ipckit_peer', '__init__.py'))).toBe(true)

  fs.writeFileSync(path.join(project, 'backend.py'), blocks['blender-headless-backend'])
  fs.writeFileSync(path.join(project, 'gui_backend.py'), blocks['blender-gui-backend'])
  fs.writeFileSync(path.join(project, 'frontend.mjs'), blocks['blender-frontend'])
}, 600000)

afterEach(async () => {
  await py.killAll()
  await h.cleanup()
})

afterAll(() => {
  if (project) fs.rmSync(project, { recursive: true, force: true })
})

test('the headless backend and the Node frontend run as written: calls, progress, SIGTERM sends backend_shutdown', async () => {
  const dir = h.channelDir()
  const result = await run(process.execPath, ['frontend.mjs', 'backend.py', dir])
  expect(result).toMatchObject({ code: 0, stderr: '' })
  expect(result.stdout).toBe(
    "[ 'Camera', 'Cube', 'Light' ]\n4\nframe 1/3\nframe 2/3\nframe 3/3\n{ frames: 3 }\nBlender exited: 0\n",
  )
  // The stop was orderly: the backend's last word is backend_shutdown.
  expect(readMessages(dir, BACKEND_OUTBOX).at(-1).method).toBe('backend_shutdown')
})

test('a backend that cannot import ipckit_peer fails at once with the exit code and the traceback, not at timeoutMs', async () => {
  const dir = h.channelDir()
  // HOME without the install: PYTHONPATH points nowhere.
  const result = await run(process.execPath, ['frontend.mjs', 'backend.py', dir], {
    env: { HOME: h.tmpDir('ipckit-empty-home-') },
  })
  expect(result.code).toBe(1)
  expect(result.stderr).toContain('Blender exited (1) before its backend was ready')
  expect(result.stderr).toContain("ModuleNotFoundError: No module named 'ipckit_peer'")
  expect(result.stdout).toBe('Blender exited: 1\n')
  // The frontend's ready() waits up to 60 s; Blender dies within its start-up time.
  expect(result.ms).toBeLessThan(30000)
})

test('the GUI backend runs as written under Xvfb: calls through the timer, quit sends backend_shutdown', async () => {
  const dir = h.channelDir()
  const blender = startBlender(h, path.join(project, 'gui_backend.py'), [dir], { gui: true, env: { PYTHONPATH: site } })
  const channel = h.frontend(dir)
  await readyOrExit(channel, blender, 120000)
  await waitFor(() => channel.peer.methods?.includes('quit'), { timeoutMs: CALL_MS, what: 'the methods' })
  expect(await channel.request('objects', null, { timeoutMs: CALL_MS })).toEqual(['Camera', 'Cube', 'Light'])
  expect(await channel.request('add_cube', { location: [0, 2, 0] }, { timeoutMs: CALL_MS })).toBe(4)
  expect(await channel.request('objects', null, { timeoutMs: CALL_MS })).toEqual([
    'Camera',
    'Cube',
    'Cube.001',
    'Light',
  ])
  expect(await channel.request('quit', null, { timeoutMs: CALL_MS })).toBe(true)
  const { code } = await blender.exit(60000)
  expect(code).toBe(0)
  expect(readMessages(dir, BACKEND_OUTBOX).at(-1).method).toBe('backend_shutdown')
  await waitFor(() => channel.peer.state === 'gone', { timeoutMs: CALL_MS, what: 'the peer to be gone' })
})

test("python/README.md's Blender excerpts are parts of the tested scripts", () => {
  expect(markedBlocks('docs/dcc.md', 'test').length).toBe(Object.keys(blocks).length) // no name twice
  const excerpts = markedBlocks('python/README.md', 'excerpt')
  expect(excerpts.length).toBeGreaterThan(0)
  for (const [name, code] of excerpts) {
    expect(Object.keys(blocks)).toContain(name)
    expect(blocks[name]).toContain(code)
  }
})
