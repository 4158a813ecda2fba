'use strict'
// A real round trip in a temporary channel: a backend in a child process (the Python reference
// peer when it is installed, else a Node backend built on this package) and a Node frontend.

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const root = path.join(__dirname, '..')

function ensureBuilt() {
  try {
    require(path.join(root, 'binding.js'))
  } catch {
    console.log('Building the native addon first (npm run build, about 20 s)...')
    const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
    if (build.status !== 0) process.exit(build.status ?? 1)
  }
}

function findPython() {
  const candidates = [process.env.IPCKIT_PEER_PYTHON, path.join(root, '.peer-venv/bin/python'), 'python3']
  for (const python of candidates.filter(Boolean)) {
    const probe = spawnSync(python, ['-c', 'import ipckit'], { stdio: 'ignore' })
    if (probe.status === 0) return python
  }
  return null
}

const NODE_BACKEND = `
const { FileChannel } = require(${JSON.stringify(root)})
const channel = FileChannel.backend(process.argv[1])
channel.serve({
  echo: (params) => params,
  add: ({ a, b }) => a + b,
  fail: (params) => { throw new Error('failed: ' + JSON.stringify(params)) },
  shutdown: () => { setImmediate(() => channel.close()); return { ok: true } },
})
console.log(JSON.stringify({ ready: true }))
`

function startBackend(dir) {
  const python = findPython()
  const child = python
    ? spawn(python, [path.join(root, '__test__/peer/python_peer.py'), 'serve', '--dir', dir, '--role', 'backend'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
    : spawn(process.execPath, ['-e', NODE_BACKEND, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = readline.createInterface({ input: child.stdout })
  const ready = new Promise((resolve, reject) => {
    lines.on('line', (line) => line.includes('"ready"') && resolve())
    child.once('exit', (code) => reject(new Error(`backend exited early (${code})`)))
  })
  return { child, ready, kind: python ? `Python ipckit (${python})` : 'Node (this package)' }
}

async function main() {
  ensureBuilt()
  const { FileChannel } = require(root)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-demo-'))
  const backend = startBackend(dir)
  await backend.ready
  console.log(`channel: ${dir}`)
  console.log(`backend: ${backend.kind}, frontend: Node ${process.version}\n`)

  const frontend = FileChannel.frontend(dir)
  const calls = [
    ['echo', { hello: 'world', emoji: '🚀' }],
    ['add', { a: 2, b: 40 }],
    ['fail', { why: 'demo' }],
    ['nope', null],
  ]
  for (const [method, params] of calls) {
    const started = process.hrtime.bigint()
    let outcome
    try {
      outcome = `-> ${JSON.stringify(await frontend.request(method, params, { timeoutMs: 5000 }))}`
    } catch (error) {
      outcome = `-> ${error.code}: ${error.message}`
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    console.log(`${method}(${JSON.stringify(params)}) ${outcome}   [${ms.toFixed(2)} ms]`)
  }

  const rtts = []
  for (let i = 0; i < 50; i++) {
    const started = process.hrtime.bigint()
    await frontend.request('add', { a: i, b: 1 })
    rtts.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  rtts.sort((x, y) => x - y)
  console.log(`\n50 more requests: p50 ${rtts[25].toFixed(2)} ms, p99 ${rtts[49].toFixed(2)} ms`)

  await frontend.request('shutdown', null, { timeoutMs: 5000 }).catch(() => {})
  frontend.close()
  await new Promise((resolve) => {
    backend.child.once('exit', resolve)
    setTimeout(() => backend.child.kill(), 2000).unref()
  })
  fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
