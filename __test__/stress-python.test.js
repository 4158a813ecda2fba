'use strict'
// Concurrent writers of both implementations: two Node and two Python (reference) processes append
// to one outbox. Split from stress.test.js so that the Windows run (under Wine, where no Python
// runs) leaves it out by path (jest.windows.config.js) instead of skipping it.
const path = require('node:path')
const { useHarness } = require('./helpers/channels.js')
const { peerPython } = require('./helpers/python.js')
const { waitFor, spawnLines } = require('../test-support')

const h = useHarness()

/** Runs a writer process to its end; rejects, with its output, unless it exits 0. */
function runWriter(command, args, label) {
  return h.trackProcess(spawnLines(command, args, { stdin: 'ignore', label })).success(50000)
}

function pythonWriter(python, dir, count) {
  const script = `
import sys, time
from ipckit import FileChannel
ch = FileChannel.backend(sys.argv[1])
for i in range(int(sys.argv[2])):
    ch.send_event("py", {"i": i, "w": sys.argv[3]})
    time.sleep(0.002)
`
  return (tag) => runWriter(python, ['-c', script, dir, String(count), tag], `python writer ${tag}`)
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
  return (tag) => runWriter(process.execPath, ['-e', script, dir, String(count), tag], `node writer ${tag}`)
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
  await waitFor(() => seen.size >= 4 * perWriter, { timeoutMs: 5000, intervalMs: 20, what: 'every message' })
  expect(problems).toEqual([])
  expect(seen.size).toBe(4 * perWriter)
  expect([...seen.values()].every((count) => count === 1)).toBe(true)
}, 60000)
