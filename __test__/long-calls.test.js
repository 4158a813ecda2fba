'use strict'

// Long calls (issue 13, PROTOCOL-EXTENSIONS.md "progress, cancellation and presence") on the
// Node side: request()'s onProgress / idleTimeoutMs / signal (with task.cancel), handler
// contexts, late and duplicate replies dropped and counted, presence (channel.peer, 'peer',
// ready(), EPEERGONE). Node <-> Node here, in one process and with a killed child; the Python
// peers are in long-calls-python.test.js.

const {
  useHarness,
  expectRejects,
  writeMessages,
  diskMessage,
  readMessages,
  BACKEND_OUTBOX,
} = require('./helpers/channels')
const { waitFor, sleep } = require('../test-support')

const h = useHarness()

/** Resolves when `signal` aborts, with its reason. */
const aborted = (signal) =>
  new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason)
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true })
  })

test('onProgress gets the updates in order; they do not reach event listeners or recv()', async () => {
  const { front, back } = h.pair()
  back.handle('render', async ({ frames }, context) => {
    for (let n = 1; n <= frames; n++) context.progress(n, { total: frames, message: `frame ${n}` })
    context.progress(0.5) // neither total nor message
    return 'done'
  })
  const events = []
  front.on('event', (message) => events.push(message))
  const updates = []
  await expect(front.request('render', { frames: 20 }, { onProgress: (u) => updates.push(u) })).resolves.toBe('done')
  expect(updates).toEqual([
    ...Array.from({ length: 20 }, (_, i) => ({ progress: i + 1, total: 20, message: `frame ${i + 1}` })),
    { progress: 0.5 },
  ])
  expect(events.filter((m) => m.method === 'task.progress')).toEqual([])
  front.removeAllListeners('event')
  expect(front.recv().filter((m) => m.method === 'task.progress')).toEqual([])
})

test('progress of requests sent with sendRequest() stays an ordinary event', async () => {
  const { front, back } = h.pair()
  back.handle('render', (params, context) => {
    context.progress(1, { total: 1 })
    return 'done'
  })
  const id = front.sendRequest('render')
  const response = await front.waitResponse(id, 10000)
  expect(response.payload).toBe('done')
  const progress = await waitFor(() => front.recv().find((m) => m.method === 'task.progress'), { what: 'progress' })
  expect(progress.payload).toEqual({ progressToken: id, progress: 1, total: 1 })
})

test('idleTimeoutMs extends while progress flows, and fails a silent call long before timeoutMs', async () => {
  const { front, back } = h.pair()
  let silentSignal
  back.serve({
    steady: async (params, context) => {
      // 1.5 s of work, progress every 40 ms: never 700 ms without news, even on a loaded machine.
      const end = Date.now() + 1500
      for (let n = 0; Date.now() < end; n++) {
        context.progress(n)
        await sleep(40)
      }
      return 'finished'
    },
    silent: (params, context) => {
      silentSignal = context.signal
      return aborted(context.signal).then(() => 'stopped')
    },
  })
  await expect(front.request('steady', null, { idleTimeoutMs: 700, timeoutMs: 20000 })).resolves.toBe('finished')
  const started = Date.now()
  const error = await expectRejects(
    front.request('silent', null, { idleTimeoutMs: 300, timeoutMs: 20000 }),
    'ETIMEDOUT',
    'idleTimeoutMs',
  )
  expect(Date.now() - started).toBeLessThan(10000)
  expect(error.method).toBe('silent')
  // Giving up sends task.cancel (reason "timeout"): the handler's signal aborts.
  await waitFor(() => silentSignal?.aborted, { what: 'the handler to be cancelled', timeoutMs: 10000 })
  expect(silentSignal.reason.reason).toBe('timeout')
  // Its answer comes anyway and is dropped.
  await waitFor(() => front.stats.droppedResponses === 1, { what: 'the late reply to be counted', timeoutMs: 10000 })
})

test('aborting rejects with ABORT_ERR, cancels the handler, and its late reply is dropped and counted', async () => {
  const { front, back } = h.pair()
  let context
  back.handle('bake', (params, ctx) => {
    context = ctx
    return aborted(ctx.signal).then(() => ({ stopped: true }))
  })
  const controller = new AbortController()
  const call = front.request('bake', { frames: 100 }, { signal: controller.signal, timeoutMs: 20000 })
  await waitFor(() => context, { what: 'the handler to start', timeoutMs: 10000 })
  controller.abort('user pressed Esc')
  await expectRejects(call, 'ABORT_ERR')
  const reason = await aborted(context.signal)
  expect(reason).toMatchObject({ code: 'ECANCELED', reason: 'user pressed Esc' })
  await waitFor(() => front.stats.droppedResponses === 1, { what: 'the late reply to be counted', timeoutMs: 10000 })
  // (The backend's backend_ready announcement is an ordinary event: it is there.)
  expect(front.recv().filter((m) => m.type === 'response')).toEqual([])
  expect(front.stats).toEqual({ droppedResponses: 1, droppedProgress: 0, droppedRequests: 0 })
  // A later request is answered normally.
  back.handle('add', ({ a, b }) => a + b)
  await expect(front.request('add', { a: 1, b: 2 })).resolves.toBe(3)
})

test('onProgress hears nothing after an abort, even from updates read in the same batch', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  const controller = new AbortController()
  const updates = []
  const call = front.request('render', null, {
    signal: controller.signal,
    timeoutMs: 10000,
    onProgress: (update) => {
      updates.push(update.progress)
      if (update.progress === 2) controller.abort()
    },
  })
  const request = await waitFor(
    () => readMessages(dir, 'frontend_to_backend.json').find((m) => m.method === 'render'),
    {
      what: 'the request on disk',
    },
  )
  const first = diskMessage({ type: 'event', method: 'task.progress' })
  // One write: the reader takes the five updates in one batch.
  writeMessages(
    dir,
    BACKEND_OUTBOX,
    [1, 2, 3, 4, 5].map((progress) => ({
      ...diskMessage({ type: 'event', method: 'task.progress', payload: { progressToken: request.id, progress } }),
      timestamp: first.timestamp + progress,
    })),
  )
  await expectRejects(call, 'ABORT_ERR')
  expect(updates).toEqual([1, 2])
})

test('handlers written as (params, message) keep working: the context carries the message fields', async () => {
  const { front, back } = h.pair()
  let seen
  back.handle('echo', (params, message) => {
    seen = message
    return { id: message.id, method: message.method, type: message.type, params: message.payload }
  })
  const answer = await front.request('echo', { x: 1 })
  expect(answer).toEqual({ id: seen.id, method: 'echo', type: 'request', params: { x: 1 } })
  expect(seen).toEqual(seen.message)
  expect(JSON.parse(JSON.stringify(seen))).toEqual(JSON.parse(JSON.stringify(seen.message)))
  expect(Object.keys(seen).sort()).toEqual(Object.keys(seen.message).sort())
  expect(seen.signal).toBeInstanceOf(AbortSignal)
  expect(typeof seen.progress).toBe('function')
})

test("a handler's signal, asked for only after the cancel or the close, is already aborted with its reason", () => {
  const { RunningHandlers } = require('../lib/handler-context.js')
  const running = new RunningHandlers({ sendProgress: () => {} })
  const request = { id: 'r1', timestamp: 1, type: 'request', method: 'bake', payload: null }
  const first = running.start(request).context
  const second = running.start({ ...request, id: 'r2' }).context
  expect(running.cancel({ payload: { requestId: 'r1', reason: 'user pressed Esc' } })).toBe(true)
  expect(first.signal.aborted).toBe(true)
  expect(first.signal.reason).toMatchObject({ code: 'ECANCELED', name: 'AbortError', reason: 'user pressed Esc' })
  // Progress after the cancel is dropped, not sent.
  first.progress(0.5)
  running.closeAll()
  expect(second.signal.aborted).toBe(true)
  expect(second.signal.reason).toMatchObject({ code: 'ECLOSED' })
  // Asked for first, then aborted: the same signal, its listeners told.
  const third = running.start({ ...request, id: 'r3' }).context
  const heard = []
  third.signal.addEventListener('abort', () => heard.push(third.signal.reason.code))
  running.cancel({ payload: { requestId: 'r3' } })
  running.closeAll()
  expect(heard).toEqual(['ECANCELED'])
})

test('a hand-made request with fields named like the context accessors keeps the accessors', () => {
  const { RunningHandlers } = require('../lib/handler-context.js')
  const sent = []
  const running = new RunningHandlers({ sendProgress: (payloads) => sent.push(...payloads) })
  const request = { id: 'r1', type: 'request', method: 'm', payload: 1, signal: 'x', progress: 2, message: 3 }
  const { context, done } = running.start(request)
  expect(context.signal).toBeInstanceOf(AbortSignal)
  expect(context.message).toBe(request)
  expect(Object.keys(context).sort()).toEqual(['id', 'method', 'payload', 'type'])
  context.progress(1)
  done()
  expect(sent).toEqual([{ progressToken: 'r1', progress: 1 }])
})

test('a duplicate response resolves nothing else, never reaches recv(), and is counted', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  const call = front.request('twice', null, { timeoutMs: 10000 })
  const request = await waitFor(() => readMessages(dir, 'frontend_to_backend.json').find((m) => m.method === 'twice'), {
    what: 'the request on disk',
  })
  const answer = (payload) => diskMessage({ type: 'response', reply_to: request.id, payload, method: undefined })
  const first = answer(1)
  const second = { ...answer(2), timestamp: first.timestamp + 1 }
  writeMessages(dir, BACKEND_OUTBOX, [first, second])
  await expect(call).resolves.toBe(1)
  await waitFor(() => front.stats.droppedResponses === 1, { what: 'the duplicate to be counted' })
  expect(front.recv()).toEqual([])
})

test('responses to requests nobody waited for still reach recv()', async () => {
  const { front, back } = h.pair()
  back.handle('add', ({ a, b }) => a + b)
  const id = front.sendRequest('add', { a: 2, b: 3 })
  const response = await waitFor(() => front.recv().find((m) => m.type === 'response'), { what: 'the response' })
  expect(response).toMatchObject({ replyTo: id, payload: 5 })
  expect(front.stats.droppedResponses).toBe(0)
})

test('presence: ready() before and after the backend starts, peer events, EPEERGONE when it closes', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  expect(front.peer).toEqual({ state: 'unknown' })
  const changes = []
  front.on('peer', (status) => changes.push(status))
  const before = front.ready({ timeoutMs: 20000 })
  const back = h.backend(dir)
  back.serve({ wait: (params, context) => aborted(context.signal), add: ({ a, b }) => a + b })
  const status = await before
  expect(status).toMatchObject({ state: 'ready', pid: process.pid })
  await waitFor(() => front.peer.methods, { what: 'the announced methods' })
  expect(front.peer.methods).toEqual(['add', 'wait'])
  // After: at once.
  await expect(front.ready({ timeoutMs: 0 })).resolves.toMatchObject({ state: 'ready' })
  const pending = front.request('wait', null, { timeoutMs: 30000 })
  const closedAt = Date.now()
  back.close()
  const error = await expectRejects(pending, 'EPEERGONE')
  expect(Date.now() - closedAt).toBeLessThan(2000)
  expect(error.peer).toMatchObject({ state: 'gone', pid: process.pid })
  await waitFor(() => changes.some((c) => c.state === 'gone'), { what: "the 'gone' event" })
  expect(changes.map((c) => c.state)).toEqual(expect.arrayContaining(['ready', 'gone']))
  expect(front.peer.state).toBe('gone')
  // A new backend brings it back.
  const again = front.ready({ timeoutMs: 20000 })
  const back2 = h.backend(dir)
  back2.handle('add', ({ a, b }) => a + b)
  await expect(again).resolves.toMatchObject({ state: 'ready' })
  await expect(front.request('add', { a: 1, b: 1 })).resolves.toBe(2)
})

test('ready() rejects on its timeout, on abort and on close', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  await expectRejects(front.ready({ timeoutMs: 50 }), 'ETIMEDOUT')
  const controller = new AbortController()
  const aborting = front.ready({ signal: controller.signal })
  controller.abort()
  await expectRejects(aborting, 'ABORT_ERR')
  const closing = front.ready()
  front.close()
  await expectRejects(closing, 'ECLOSED')
  expect(front.pendingWaits).toBe(0)
})

test('a Node backend announces backend_ready with its methods and backend_shutdown on close', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  const events = []
  front.on('event', (message) => events.push(message))
  const back = h.backend(dir)
  back.serve({ b: () => 1, a: () => 2 })
  await waitFor(() => events.some((m) => m.method === 'backend_ready'), { what: 'backend_ready' })
  expect(events[0].payload).toEqual({ available_methods: ['a', 'b'], pid: process.pid, host: expect.any(String) })
  back.handle('c', () => 3)
  await waitFor(() => events.filter((m) => m.method === 'backend_ready').length === 2, { what: 'the new list' })
  expect(events[1].payload.available_methods).toEqual(['a', 'b', 'c'])
  back.close()
  await waitFor(() => events.some((m) => m.method === 'backend_shutdown'), { what: 'backend_shutdown' })
  expect(events.at(-1).payload).toEqual({ pid: process.pid })
})

test('EPEERGONE within 2 s of kill -9 of a Node backend process', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  const child = h.peer(['backend', dir])
  const { pid } = await child.ready()
  await expect(front.ready({ timeoutMs: 20000 })).resolves.toMatchObject({ state: 'ready', pid })
  const pending = front.request('slow', { ms: 60000, value: 1 }, { timeoutMs: 60000 })
  // The request is being handled: the backend has read it.
  await waitFor(() => front.pendingWaits === 1, { what: 'the request to be pending' })
  const killedAt = Date.now()
  child.kill('SIGKILL')
  await expectRejects(pending, 'EPEERGONE')
  expect(Date.now() - killedAt).toBeLessThan(2000)
  expect(front.peer.state).toBe('gone')
})

test('EPEERGONE when a backend that never announced itself dies as the request arrives', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  const child = h.peer(['die-on-request', dir])
  await child.ready()
  const sentAt = Date.now()
  await expectRejects(front.request('anything', null, { timeoutMs: 20000 }), 'EPEERGONE')
  expect(Date.now() - sentAt).toBeLessThan(5000)
  // It killed itself (Windows has no signals: the process is terminated with a non-zero code).
  const { code, signal } = await child.exited
  if (process.platform === 'win32') expect(code).not.toBe(0)
  else expect(signal).toBe('SIGKILL')
})
