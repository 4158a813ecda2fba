'use strict'
// Concurrent writers of both implementations: two Node and two Python (reference) processes append
// to one outbox. Split from stress.test.js so that the Windows run (under Wine, where no Python
// runs) leaves it out by path (jest.windows.config.js) instead of skipping it.
const { spawn } = require('node:child_process')
const path = require('node:path')
const { createHarness } = require('./helpers/channels.js')
const { peerPython } = require('./helpers/python.js')

const h = createHarness()
afterEach(() => h.cleanup())

function pythonWriter(python, dir, count) {
  const script = `
import sys, time
from ipckit import FileChannel
ch = FileChannel.backend(sys.argv[1])
for i in range(int(sys.argv[2])):
    ch.send_event("py", {"i": i, "w": sys.argv[3]})
    time.sleep(0.002)
`
  return (tag) =>
    new Promise((resolve, reject) => {
      const child = spawn(python, ['-c', script, dir, String(count), tag], { stdio: ['ignore', 'ignore', 'pipe'] })
      let errors = ''
      child.stderr.on('data', (chunk) => (errors += chunk))
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`python writer ${tag}: ${errors}`))))
    })
}

function nodeWriter(dir, count) {
  const script = `
const { FileChannel } = require(${JSON.stringify(path.join(__dirname, '..'))})
// Four writers contend for one lock: a patient lock timeout, since this test is about loss, not ELOCKED.
const ch = FileChannel.backend(process.argv[1], { lockTimeoutMs: 5000 })
const tag = process.argv[3]
let i = 0
const timer = setInterval(() => {
  ch.sendEvent('node', { i, w: tag })
  if (++i === Number(process.argv[2])) { clearInterval(timer); ch.close() }
}, 2)
`
  return (tag) =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script, dir, String(count), tag], {
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      let errors = ''
      child.stderr.on('data', (chunk) => (errors += chunk))
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`node writer ${tag}: ${errors}`))))
    })
}

test('two Node and two Python processes append to one outbox at once; a reader gets every message once', async () => {
  const python = peerPython()
  const dir = h.tmpDir('ipckit-stress-')
  const perWriter = 500
  const reader = h.frontend(dir)
  const seen = new Map()
  const problems = []
  reader.on('error', (error) => problems.push(error.code))
  reader.on('event', (message) => {
    const key = `${message.payload.w}:${message.payload.i}`
    seen.set(key, (seen.get(key) ?? 0) + 1)
  })
  await Promise.all([
    nodeWriter(dir, perWriter)('n1'),
    nodeWriter(dir, perWriter)('n2'),
    pythonWriter(python, dir, perWriter)('p1'),
    pythonWriter(python, dir, perWriter)('p2'),
  ])
  const deadline = Date.now() + 5000
  while (seen.size < 4 * perWriter && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  expect(problems).toEqual([])
  expect(seen.size).toBe(4 * perWriter)
  expect([...seen.values()].every((count) => count === 1)).toBe(true)
}, 60000)
