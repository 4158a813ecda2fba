'use strict'

// Electron main process: owns the ipckit channel (a native addon, so it lives here, not in the
// sandboxed renderer) and offers the renderer a narrow, allow-listed API through ipcMain.handle.
//
// Channel directory: $IPCKIT_CHANNEL, else the first argument after the app path, else
// <tmp>/ipckit-example (the default of examples/python-backend/backend.py).

const os = require('node:os')
const path = require('node:path')
const { app, BrowserWindow, ipcMain } = require('electron')
const { FileChannel } = require('ipckit')

const CHANNEL_DIR =
  process.env.IPCKIT_CHANNEL ??
  process.argv.slice(app.isPackaged ? 1 : 2).find((arg) => !arg.startsWith('-')) ??
  path.join(os.tmpdir(), 'ipckit-example')

// The only methods the renderer may call, with a check of their params. Never forward an
// arbitrary method name from a renderer: it is less trusted than the main process.
const ALLOWED = {
  ping: () => undefined,
  add: (params) => {
    if (typeof params?.a !== 'number' || typeof params?.b !== 'number') throw new Error('add needs numbers a and b')
    return { a: params.a, b: params.b }
  },
  info: () => undefined,
  count: (params) => ({ to: Math.min(20, Math.max(1, Number(params?.to) || 3)) }),
}

let channel = null
let window = null

function openChannel() {
  channel = FileChannel.frontend(CHANNEL_DIR)
  // Backend events go to the window (only name and payload: the renderer needs no more).
  channel.on('event', (message) => {
    if (window && !window.isDestroyed())
      window.webContents.send('ipckit:event', { name: message.method, payload: message.payload })
  })
  channel.on('error', (error) => console.error(`ipckit: ${error.code}: ${error.message}`))
}

ipcMain.handle('ipckit:request', async (_event, method, params) => {
  if (!Object.hasOwn(ALLOWED, method)) throw new Error(`method not allowed: ${String(method)}`)
  // Errors thrown here reach the renderer as a rejected promise (message only).
  return channel.request(method, ALLOWED[method](params), { timeoutMs: 5000 })
})

ipcMain.handle('ipckit:channel', () => ({ dir: CHANNEL_DIR, role: channel.role }))

function createWindow() {
  window = new BrowserWindow({
    width: 720,
    height: 520,
    webPreferences: {
      preload: path.join(__dirname, 'preload.js'),
      contextIsolation: true, // the defaults, spelled out: the renderer has no Node.js
      sandbox: true,
      nodeIntegration: false,
    },
  })
  window.loadFile(path.join(__dirname, 'index.html'))
}

app.whenReady().then(() => {
  openChannel()
  createWindow()
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow()
  })
})

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit()
})

// close() rejects pending requests with ECLOSED and releases the directory watcher.
app.on('will-quit', () => channel?.close())

module.exports = { CHANNEL_DIR, ALLOWED } // for smoke-test.js
