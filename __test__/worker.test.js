'use strict'

// FileChannel inside worker_threads: the addon loads in a Worker, a Worker talks to a backend in
// the main thread, two Workers share a channel at once, and terminating a Worker that has
// pending waits neither crashes the process nor disturbs the main thread's channels.

const { useHarness } = require('./helpers/channels.js')
const { waitFor } = require('../test-support')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { FileChannel } = require('..')

const PKG = path.join(__dirname, '..')

// Runs in the Worker. workerData: { pkg, dir, mode, count, tag }.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { FileChannel } = require(workerData.pkg)
const { dir, mode, count, tag } = workerData
const channel = FileChannel.frontend(dir)

async function main() {
  if (mode === 'requests') {
    const results = []
    for (let i = 0; i < count; i++) results.push(await channel.request('echo', { tag, i }, { timeoutMs: 10000 }))
    const rejected = await channel.request('fail', tag).then(() => null, (error) => error.code + ': ' + error.message)
    parentPort.postMessage({ results, rejected })
    channel.close() // nothing else keeps the Worker alive: it must end by itself
  } else if (mode === 'hang') {
    // Waits that nothing will settle soon: unanswered requests and ids that never come.
    const pending = []
    for (let i = 0; i < count; i++) pending.push(channel.request('hang', i, { timeoutMs: 60000 }).catch(() => {}))
    for (let i = 0; i < count; i++) {
      pending.push(channel.waitResponse('00000000-0000-4000-8000-00000000000' + (i % 10), 60000).catch(() => {}))
    }
    channel.on('event', () => {})
    parentPort.postMessage({ waiting: channel.pendingWaits })
  } else if (mode === 'crowd') {
    // Many channels, each with many waits whose deadlines fall after the Worker is gone: the
    // process's dispatcher expires them into a JavaScript environment that no longer exists.
    for (let c = 0; c < count; c++) {
      const crowded = FileChannel.frontend(dir + '/crowd-' + c)
      for (let i = 0; i < 2000; i++) crowded.waitResponse('crowd-' + c + '-' + i, 100 + (i % 20) * 100).catch(() => {})
    }
    parentPort.postMessage({ waiting: true })
  } else if (mode === 'flood') {
    // Requests back to back until terminated mid-flight.
    let done = 0
    for (;;) {
      await channel.request('echo', done, { timeoutMs: 10000 })
      if (++done === 5) parentPort.postMessage({ flowing: true })
    }
  }
}
main().catch((error) => parentPort.postMessage({ error: String(error && error.stack || error) }))
`

function startWorker(dir, mode, extra = {}) {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { pkg: PKG, dir, mode, ...extra } })
  const exited = new Promise((resolve, reject) => {
    worker.once('exit', resolve)
    worker.once('error', reject)
  })
  const nextMessage = () =>
    new Promise((resolve, reject) => {
      worker.once('message', (message) => (message.error ? reject(new Error(message.error)) : resolve(message)))
      worker.once('error', reject)
    })
  return { worker, exited, nextMessage }
}

const h = useHarness()
let dir
beforeEach(() => {
  dir = h.tmpDir('ipckit-worker-')
})

function open(role) {
  return h.track(FileChannel[role](dir))
}

function serveBackend() {
  const received = []
  const hung = []
  const backend = open('backend').serve({
    echo: (params) => (received.push(params), params),
    fail: (tag) => {
      throw new Error(`refused ${tag}`)
    },
    hang: (i) => (hung.push(i), new Promise(() => {})), // never answers
  })
  return { backend, received, hung }
}

test('a Worker does request/response with a backend in the main thread, then exits by itself', async () => {
  serveBackend()
  const { exited, nextMessage } = startWorker(dir, 'requests', { count: 20, tag: 'w1' })
  const { results, rejected } = await nextMessage()
  expect(results).toEqual(Array.from({ length: 20 }, (_, i) => ({ tag: 'w1', i })))
  expect(rejected).toBe('EREMOTE: refused w1')
  expect(await exited).toBe(0) // close() released everything the Worker's event loop waited on
})

test('two Workers at once on the same channel each get their own answers', async () => {
  const { received } = serveBackend()
  const a = startWorker(dir, 'requests', { count: 30, tag: 'a' })
  const b = startWorker(dir, 'requests', { count: 30, tag: 'b' })
  const [fromA, fromB] = await Promise.all([a.nextMessage(), b.nextMessage()])
  expect(fromA.results).toEqual(Array.from({ length: 30 }, (_, i) => ({ tag: 'a', i })))
  expect(fromB.results).toEqual(Array.from({ length: 30 }, (_, i) => ({ tag: 'b', i })))
  expect(fromA.rejected).toBe('EREMOTE: refused a')
  expect(fromB.rejected).toBe('EREMOTE: refused b')
  // Both wrote the one outbox under its lock: the backend saw every request exactly once.
  expect(received).toHaveLength(60)
  expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0])
})

test('two Workers at once on separate channels', async () => {
  const dirs = [path.join(dir, 'one'), path.join(dir, 'two')]
  for (const d of dirs) {
    h.track(FileChannel.backend(d).serve({ echo: (params) => params, fail: () => Promise.reject(new Error('no')) }))
  }
  const workers = dirs.map((d, n) => startWorker(d, 'requests', { count: 15, tag: n }))
  const replies = await Promise.all(workers.map((w) => w.nextMessage()))
  replies.forEach((reply, n) => expect(reply.results).toEqual(Array.from({ length: 15 }, (_, i) => ({ tag: n, i }))))
  expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0])
})

test('terminating a Worker with pending waits does not crash; the main thread keeps working', async () => {
  const { backend, hung } = serveBackend()
  const hanging = startWorker(dir, 'hang', { count: 10 })
  const { waiting } = await hanging.nextMessage()
  expect(waiting).toBe(20)
  // The backend has taken every request: the Worker's 20 waits are really pending.
  await waitFor(() => hung.length >= 10, { timeoutMs: 5000, what: 'the 10 hung requests' })
  expect(hung).toHaveLength(10)
  await hanging.worker.terminate()
  expect(await hanging.exited).toBe(1) // terminated, not crashed: the process is still here

  // The main thread's own channel still works, in both directions.
  const frontend = open('frontend')
  expect(await frontend.request('echo', 'after terminate', { timeoutMs: 5000 })).toBe('after terminate')
  // (Not the first event: the Node backend announced itself with backend_ready.)
  const event = new Promise((resolve) =>
    frontend.on('event', (message) => message.method === 'still-here' && resolve(message)),
  )
  backend.sendEvent('still-here', 1)
  expect((await event).method).toBe('still-here')

  // And a new Worker on the same channel works too.
  const again = startWorker(dir, 'requests', { count: 5, tag: 'again' })
  expect((await again.nextMessage()).results).toHaveLength(5)
  expect(await again.exited).toBe(0)
})

test("a terminated Worker whose channels still had waits never stalls the main thread's deadlines", async () => {
  const crowd = startWorker(dir, 'crowd', { count: 10 })
  await crowd.nextMessage()
  await crowd.worker.terminate()
  const terminated = performance.now()
  // Its 20,000 waits expire over the next 2 s, each refused by the gone environment. Meanwhile
  // (and after) the main thread's short waits expire on time: the shared dispatcher never
  // stops in a channel's close.
  const frontend = open('frontend')
  let expired = 0
  while (performance.now() - terminated < 2500) {
    await expect(frontend.waitResponse(`main-${expired}`, 50)).rejects.toMatchObject({ code: 'ETIMEDOUT' })
    expired++
  }
  expect(expired).toBeGreaterThan(0)
}, 30000)

test('terminating Workers in the middle of a flow of requests, repeatedly', async () => {
  serveBackend()
  for (let round = 0; round < 3; round++) {
    const flood = startWorker(dir, 'flood')
    expect(await flood.nextMessage()).toEqual({ flowing: true })
    await flood.worker.terminate()
    expect(await flood.exited).toBe(1)
  }
  const frontend = open('frontend')
  expect(await frontend.request('echo', 'alive', { timeoutMs: 5000 })).toBe('alive')
})
