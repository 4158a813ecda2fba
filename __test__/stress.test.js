'use strict'
// Crash safety and concurrent writers (bounded to keep CI within minutes).
const { spawn } = require('node:child_process')
const { useHarness } = require('./helpers/channels.js')
const fs = require('node:fs')
const path = require('node:path')
const { FileChannel } = require('../index.js')

const OUTBOX = 'frontend_to_backend.json'
// Windows runs here under Wine, where every file call is a round trip to wineserver (a send
// takes ~5 ms, a process ~0.6 s to start, against ~0.05 ms and 0.1 s on Linux): there the same test
// runs fewer rounds, to stay within minutes.
const ROUNDS = process.platform === 'win32' ? 40 : 200
const h = useHarness()
const tempDir = () => h.tmpDir('ipckit-stress-')

function runAndKill(dir, afterMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'peer/kill_writer.js'), dir, 'frontend'])
    let output = ''
    let killTimer
    child.stdout.on('data', (chunk) => {
      output += chunk
      // Start the clock once it is really sending, then kill at a random moment.
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), afterMs)
    })
    child.on('exit', () => {
      clearTimeout(killTimer)
      // Only ids whose line is complete had their send return.
      resolve(output.split('\n').slice(0, -1))
    })
  })
}

test(`a writer killed with SIGKILL at random moments (${ROUNDS} times) never corrupts or loses a completed send`, async () => {
  const dir = tempDir()
  let confirmed = 0
  let killedHoldingLock = 0
  for (let round = 0; round < ROUNDS; round++) {
    const returned = await runAndKill(dir, Math.floor(Math.random() * 8))
    const text = fs.readFileSync(path.join(dir, OUTBOX), 'utf8')
    const onDisk = JSON.parse(text) // always a valid array
    expect(Array.isArray(onDisk)).toBe(true)
    const ids = new Set(onDisk.map((m) => m.id))
    for (const id of returned) expect(ids.has(id)).toBe(true)
    confirmed += returned.length
    if (fs.existsSync(path.join(dir, 'frontend_to_backend.lock'))) killedHoldingLock++
    // Keep the file small: the next writer starts from an empty outbox.
    if (onDisk.length > 500) {
      const recovery = FileChannel.frontend(dir, { staleLockMs: 300, lockTimeoutMs: 2000, acknowledge: false })
      recovery.clear()
      recovery.close()
    }
  }
  expect(confirmed).toBeGreaterThan(ROUNDS)
  // Some kills must have hit a send in progress, or the test proved nothing about recovery.
  expect(killedHoldingLock).toBeGreaterThan(0)
  // The next writer recovers by itself within staleLockMs.
  const writer = FileChannel.frontend(dir, { staleLockMs: 300, lockTimeoutMs: 2000, acknowledge: false })
  h.track(writer)
  const started = Date.now()
  writer.sendEvent('after', 1)
  expect(Date.now() - started).toBeLessThan(2000)
}, 120000)
