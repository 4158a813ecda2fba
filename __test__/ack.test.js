'use strict'
// Lossless delivery between our peers (acknowledgements and backpressure).
const { useHarness } = require('./helpers/channels.js')
const { sleep, waitFor, spawnLines } = require('../test-support')
const fs = require('node:fs')
const path = require('node:path')
const { FileChannel } = require('../index.js')

// Windows runs here under Wine, where every file call is a round trip to wineserver (a send
// takes ~5 ms, a process ~0.6 s to start, against ~0.05 ms and 0.1 s on Linux): there the same test
// runs fewer rounds, to stay within minutes.
const REQUESTS = process.platform === 'win32' ? 2000 : 10000

const h = useHarness()
let dir
beforeEach(() => {
  dir = h.tmpDir('ipckit-ack-')
})

function open(role, options) {
  return h.track(FileChannel[role](dir, options))
}

function outboxLength(name) {
  return JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')).length
}

/** Sends synchronously, waiting `pauseMs` after each ENOBUFS (full backlog); returns the refusals. */
async function sendWhenRoom(send, pauseMs, onRefused = () => {}) {
  for (let refused = 0; ; refused++) {
    try {
      send()
      return refused
    } catch (error) {
      if (error.code !== 'ENOBUFS') throw error
      onRefused()
      await sleep(pauseMs)
    }
  }
}

/** peer/slow_reader.js: its JSON lines one after the other (`next()`), each within its `timeoutMs`. */
function startSlowReader(expect, intervalMs, timeoutMs) {
  const args = [path.join(__dirname, 'peer/slow_reader.js'), dir, expect, intervalMs, timeoutMs]
  const child = h.trackProcess(spawnLines(process.execPath, args.map(String), { json: true, label: 'slow reader' }))
  return { child, next: () => child.next({ timeoutMs }) }
}

test(`${REQUESTS.toLocaleString('en-US')} requests to a slow reader in another process: none lost, none duplicated, backlog bounded`, async () => {
  const maxBacklog = 1000
  // The reader must fall behind the writer, also when a loaded machine slows the writer down:
  // it reads every 250 ms (under Wine, where a send takes milliseconds, every 3 s: at 1 s a
  // slowed writer sometimes stayed within the cap).
  const readEveryMs = process.platform === 'win32' ? 3000 : 250
  const reader = startSlowReader(REQUESTS, readEveryMs, 120000)
  expect(await reader.next()).toEqual({ ready: true })
  const writer = open('frontend', { maxBacklog })
  let largest = 0
  for (let i = 0; i < REQUESTS; i++) {
    await writer.sendAsync('request', 'work', i, { timeoutMs: 20000 })
    if (i % 100 === 0) largest = Math.max(largest, outboxLength('frontend_to_backend.json'))
  }
  const summary = await reader.next()
  expect(summary).toEqual({ received: REQUESTS, unique: REQUESTS, duplicates: 0, outOfOrder: 0, errors: [] })
  expect(largest).toBeGreaterThan(100) // the reader really was behind the reference cap
  expect(largest).toBeLessThanOrEqual(maxBacklog)
}, 120000)

test(`${REQUESTS.toLocaleString('en-US')} events, maxBacklog 200, to a reader calling recv() every 300 ms, the writer starting once its .ack exists: all, in order`, async () => {
  const reader = startSlowReader(REQUESTS, 300, 150000)
  expect(await reader.next()).toEqual({ ready: true })
  // The reader's acknowledgement is there (its last_id still null) before the first send.
  await waitFor(
    () => fs.readdirSync(dir).some((name) => name.startsWith('frontend_to_backend.') && name.endsWith('.ack')),
    {
      timeoutMs: 20000,
      intervalMs: 10,
      what: "the reader's .ack file",
    },
  )
  const writer = open('frontend', { maxBacklog: 200 })
  for (let i = 0; i < REQUESTS; i++) await sendWhenRoom(() => writer.sendRequest('work', i), 20)
  expect(await reader.next()).toEqual({
    received: REQUESTS,
    unique: REQUESTS,
    duplicates: 0,
    outOfOrder: 0,
    errors: [],
  })
}, 180000)

test('the synchronous send throws ENOBUFS naming the backlog; sendAsync waits and completes', async () => {
  const writer = open('backend', { maxBacklog: 300 })
  const reader = open('frontend')
  for (let i = 0; i < 300; i++) writer.sendEvent('e', i)
  let thrown
  try {
    writer.sendEvent('e', 300)
  } catch (error) {
    thrown = error
  }
  expect(Object.prototype.toString.call(thrown)).toBe('[object Error]')
  expect(thrown.code).toBe('ENOBUFS')
  expect(thrown.message).toContain('backend_to_frontend.json')
  expect(thrown.message).toContain('maxBacklog')
  expect(outboxLength('backend_to_frontend.json')).toBe(300)

  const pending = writer.sendAsync('event', 'e', 300, { timeoutMs: 5000 })
  await sleep(50)
  expect(reader.recv()).toHaveLength(300)
  await pending
  await sleep(50)
  expect(reader.recv().map((m) => m.payload)).toEqual([300])
})

test('sendAsync gives up with ETIMEDOUT, and aborts with AbortError', async () => {
  const writer = open('backend', { maxBacklog: 120 })
  open('frontend')
  for (let i = 0; i < 120; i++) writer.sendEvent('e', i)
  await expect(writer.sendAsync('event', 'e', 1, { timeoutMs: 60 })).rejects.toMatchObject({ code: 'ETIMEDOUT' })
  const controller = new AbortController()
  const aborted = writer.sendAsync('event', 'e', 1, { signal: controller.signal })
  setTimeout(() => controller.abort(), 20)
  await expect(aborted).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' })
  // Aborting gave up on the promise, not the message: still waiting for room at close(), whose
  // lost message is reported (the outbox stayed full: close() does not wait for room).
  const problems = []
  writer.on('error', (error) => problems.push(error))
  writer.close()
  expect(problems).toHaveLength(1)
  expect(problems[0]).toMatchObject({ code: 'ELOST' })
  expect(problems[0].message).toContain('1 message sent before close() could not be written')
  expect(problems[0].message).toContain('maxBacklog')
})

test('a reader that never acknowledges (acknowledge: false) gets the reference cap of 100, and is told of the possible loss', () => {
  const writer = open('backend')
  const reader = open('frontend', { acknowledge: false })
  reader.recv()
  for (let i = 0; i < 150; i++) writer.sendEvent('e', i)
  expect(outboxLength('backend_to_frontend.json')).toBe(100)
  // 150 sent or exactly 100 cannot be told apart from the file: a possible loss, never a certain one.
  expect(() => reader.recv()).toThrow(expect.objectContaining({ code: 'EMAYBELOST' }))
  expect(reader.recv().map((m) => m.payload)).toEqual(Array.from({ length: 100 }, (_, i) => i + 50))
})

test('a closed reader stops holding messages back, and so does one whose acknowledgement went stale', async () => {
  // Under Wine 150 sends take most of a second: the reader must stay fresh through them.
  const ackTimeoutMs = process.platform === 'win32' ? 8000 : 1000
  const writer = open('backend', { ackTimeoutMs })
  const reader = open('frontend')
  for (let i = 0; i < 150; i++) writer.sendEvent('e', i)
  expect(outboxLength('backend_to_frontend.json')).toBe(150)
  // Wait until the (silent) reader's acknowledgement is older than the writer's ackTimeoutMs.
  const ack = fs.readdirSync(dir).find((name) => name.startsWith('backend_to_frontend.') && name.endsWith('.ack'))
  const { updated } = JSON.parse(fs.readFileSync(path.join(dir, ack), 'utf8'))
  await waitFor(() => Date.now() > updated + ackTimeoutMs + 50, {
    timeoutMs: ackTimeoutMs + 10000,
    intervalMs: 20,
    what: 'the acknowledgement to go stale',
  })
  writer.sendEvent('e', 150)
  expect(outboxLength('backend_to_frontend.json')).toBe(100)
  reader.close()
  expect(
    fs.readdirSync(dir).filter((name) => name.startsWith('backend_to_frontend.') && name.endsWith('.ack')),
  ).toEqual([])
})

test('a reader whose JavaScript thread is busy acknowledges only what it took: the writer waits (ENOBUFS), nothing is lost', async () => {
  const TOTAL = 1000
  // The reader's listener blocks its JavaScript thread once, early, until the writer has been
  // refused (or has sent everything, which fails the test below); its native side keeps reading.
  const release = path.join(h.tmpDir('ipckit-release-'), 'release')
  const script = `
    const fs = require('node:fs')
    const { FileChannel } = require(${JSON.stringify(path.join(__dirname, '..', 'index.js'))})
    const channel = FileChannel.backend(${JSON.stringify(dir)})
    const got = []
    channel.on('event', (message) => {
      got.push(message.payload)
      if (got.length === 1) {
        process.stdout.write('blocking\\n')
        const until = Date.now() + 60000
        while (!fs.existsSync(${JSON.stringify(release)}) && Date.now() < until) {}
      }
      if (got.length === ${TOTAL}) {
        const inOrder = got.every((value, index) => value === index)
        process.stdout.write(JSON.stringify({ received: got.length, inOrder }) + '\\n')
        channel.close()
      }
    })
    process.stdout.write('ready\\n')
  `
  const child = h.trackProcess(spawnLines(process.execPath, ['-e', script], { label: 'busy reader' }))
  const next = () => child.next({ timeoutMs: 60000 })
  expect(await next()).toBe('ready')
  const writer = open('frontend', { maxBacklog: 200 })
  let refused = 0
  const refusedNow = () => {
    refused++
    if (!fs.existsSync(release)) fs.writeFileSync(release, '')
  }
  for (let i = 0; i < TOTAL; i++) {
    await sendWhenRoom(() => writer.sendEvent('e', i), 5, refusedNow)
    if (i === 0) expect(await next()).toBe('blocking')
  }
  fs.writeFileSync(release, '')
  expect(JSON.parse(await next())).toEqual({ received: TOTAL, inOrder: true })
  // Its native side read on while JavaScript was blocked, but did not acknowledge it: the writer
  // had to wait for room instead of the reader buffering everything.
  expect(refused).toBeGreaterThan(0)
}, 120000)

test('a channel used only for request() does not hold its peer back with events it never pulls: they wait for a later recv()', async () => {
  const ROUNDS = process.platform === 'win32' ? 120 : 300
  const backend = open('backend', { maxBacklog: 100 })
  // Each answer comes with an event nobody listens to: two messages per round trip.
  backend.handle('echo', (params) => {
    backend.sendEvent('log', params.i)
    return params
  })
  const problems = []
  backend.on('error', (error) => problems.push(error.code))
  const frontend = open('frontend')
  for (let i = 0; i < ROUNDS; i++) {
    const result = await frontend.request('echo', { i }, { timeoutMs: 20000 })
    expect(result).toEqual({ i })
  }
  expect(problems).toEqual([])
  // The backend's outbox was trimmed as the frontend read on: not held at the backlog.
  expect(outboxLength('backend_to_frontend.json')).toBeLessThan(ROUNDS)
  // The events were kept for the frontend, in order.
  const logs = frontend
    .recv()
    .filter((m) => m.method === 'log')
    .map((m) => m.params ?? m.payload)
  expect(logs).toEqual(Array.from({ length: ROUNDS }, (_, i) => i))
}, 120000)
