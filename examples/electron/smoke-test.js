'use strict'

// Runs main.js and preload.js under plain Node with a stand-in for the `electron` module, so the
// IPC path (page API → preload → ipcMain.handle → FileChannel → backend → back) can be checked
// where no Electron runtime is available. It does not replace running the app: no window, no
// Chromium, no sandbox. The backend is a Node one in this process, or the Python example backend
// with `node smoke-test.js --python <python with ipckit==0.1.12>`.

const assert = require('node:assert')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const Module = require('node:module')
const { spawn } = require('node:child_process')

// `ipckit` from node_modules when installed, else this repository.
let ipckitPath
try {
  ipckitPath = require.resolve('ipckit')
} catch {
  ipckitPath = require.resolve('../..')
}
const { FileChannel } = require(ipckitPath)

const handlers = new Map() // ipcMain.handle
const rendererListeners = new Map() // ipcRenderer.on
const readyCallbacks = []
const exposed = {}
const quitCallbacks = []
const sent = []

const electron = {
  app: {
    isPackaged: false,
    whenReady: () => new Promise((resolve) => readyCallbacks.push(resolve)),
    on: (name, callback) => name === 'will-quit' && quitCallbacks.push(callback),
    quit: () => {},
  },
  BrowserWindow: class {
    static getAllWindows() {
      return []
    }
    constructor(options) {
      assert.strictEqual(options.webPreferences.sandbox, true)
      assert.strictEqual(options.webPreferences.contextIsolation, true)
      this.webContents = {
        send: (channel, message) => {
          sent.push(message)
          for (const listener of rendererListeners.get(channel) ?? []) listener({}, message)
        },
      }
    }
    isDestroyed() {
      return false
    }
    loadFile(file) {
      assert.ok(fs.existsSync(file), `${file} exists`)
    }
  },
  ipcMain: { handle: (channel, handler) => handlers.set(channel, handler) },
  contextBridge: { exposeInMainWorld: (key, api) => (exposed[key] = api) },
  ipcRenderer: {
    invoke: async (channel, ...args) => handlers.get(channel)({ sender: null }, ...args),
    on: (channel, listener) => rendererListeners.set(channel, [...(rendererListeners.get(channel) ?? []), listener]),
    removeListener: (channel, listener) =>
      rendererListeners.set(
        channel,
        (rendererListeners.get(channel) ?? []).filter((l) => l !== listener),
      ),
  },
}

const originalLoad = Module._load
Module._load = function load(request, parent, isMain) {
  if (request === 'electron') return electron
  if (request === 'ipckit') return originalLoad.call(this, ipckitPath, parent, isMain)
  return originalLoad.call(this, request, parent, isMain)
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-electron-smoke-'))
  process.env.IPCKIT_CHANNEL = dir
  const pythonAt = process.argv.indexOf('--python')
  let python = null
  let backend = null
  if (pythonAt !== -1) {
    python = spawn(process.argv[pythonAt + 1], [path.join(__dirname, '..', 'python-backend', 'backend.py'), dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    await new Promise((resolve) => python.stdout.once('data', resolve))
  } else {
    backend = FileChannel.backend(dir).serve({
      ping: () => 'pong',
      add: ({ a, b }) => a + b,
      info: () => ({ node: process.version }),
      count: async ({ to }) => {
        for (let step = 1; step <= to; step++) backend.sendEvent('progress', { step, of: to })
        return { counted: to }
      },
    })
  }

  require('./main.js')
  readyCallbacks.forEach((resolve) => resolve())
  await new Promise((resolve) => setImmediate(resolve))
  require('./preload.js')
  const page = exposed.backend // what renderer.js sees as window.backend

  const events = []
  const stop = page.onEvent((message) => events.push(message))
  assert.deepStrictEqual(await page.channel(), { dir, role: 'frontend' })
  assert.strictEqual(await page.request('ping'), 'pong')
  assert.strictEqual(await page.request('add', { a: 2, b: 40 }), 42)
  console.log('smoke: info =', JSON.stringify(await page.request('info')))
  assert.deepStrictEqual(await page.request('count', { to: 3 }), { counted: 3 })
  await assert.rejects(page.request('shutdown'), /method not allowed: shutdown/)
  await assert.rejects(page.request('add', { a: 'x' }), /add needs numbers/)
  const deadline = Date.now() + 3000
  while (events.filter((e) => e.name === 'progress').length < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.deepStrictEqual(
    events.filter((e) => e.name === 'progress').map((e) => e.payload),
    [1, 2, 3].map((step) => ({ step, of: 3 })),
  )
  stop()

  quitCallbacks.forEach((callback) => callback())
  if (python) {
    const channel = FileChannel.frontend(dir)
    await channel.request('shutdown', null, { timeoutMs: 5000 })
    channel.close()
    await new Promise((resolve) => python.once('exit', resolve))
  }
  backend?.close()
  fs.rmSync(dir, { recursive: true, force: true })
  console.log(
    `smoke: OK (page → preload → ipcMain → FileChannel → ${python ? 'Python' : 'Node'} backend and back; events forwarded)`,
  )
}

main().catch((error) => {
  console.error('smoke: FAILED', error)
  process.exit(1)
})
