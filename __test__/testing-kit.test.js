'use strict'

// ipckit/testing, used the way a user's jest suite uses it: a real frontend and a scripted
// backend over a real temporary directory, including jest's fake timers for scripted delays.

const fs = require('node:fs')
const path = require('node:path')
const { createTestChannel, respond } = require('ipckit/testing')
const { FileChannel } = require('ipckit')
// Its waits run on real time (node:timers), also under jest's fake timers.
const { waitFor } = require('../test-support')

// Node 20 defines Symbol.dispose/asyncDispose in its main realm only; jest's realm has the same
// symbols in the registry.
const dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose')
const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

let t
afterEach(() => {
  jest.useRealTimers()
  t?.close()
  t = undefined
})

test('a real frontend and backend over a real directory, removed by close()', async () => {
  t = createTestChannel({ handlers: { add: ({ a, b }) => a + b } })
  expect(t.channel).toBeInstanceOf(FileChannel)
  expect(t.channel.role).toBe('frontend')
  expect(t.backend.channel.role).toBe('backend')
  expect(fs.existsSync(path.join(t.dir, 'frontend_to_backend.json'))).toBe(true)
  await expect(t.channel.request('add', { a: 2, b: 40 })).resolves.toBe(42)
  expect(t.backend.requests.map((m) => [m.method, m.payload])).toEqual([['add', { a: 2, b: 40 }]])
  const { dir, channel } = t
  t.close()
  t.close() // idempotent
  expect(channel.closed).toBe(true)
  expect(t.backend.gone).toBe(true)
  expect(fs.existsSync(path.dirname(dir))).toBe(false)
})

test('Symbol.asyncDispose (await using) and Symbol.dispose (using) close both ends and remove the directory', async () => {
  // `await using kit = createTestChannel()` calls this at the end of the block (the syntax needs
  // Node 24; the consumer test type-checks it).
  const kit = createTestChannel({ handlers: { ping: () => 'pong' } })
  await expect(kit.channel.request('ping')).resolves.toBe('pong')
  await kit[asyncDispose]()
  expect(kit.channel.closed).toBe(true)
  expect(fs.existsSync(kit.dir)).toBe(false)
  const sync = createTestChannel()
  sync[dispose]()
  expect(sync.backend.channel.closed).toBe(true)
  expect(fs.existsSync(sync.dir)).toBe(false)
})

test('fail with an error: EREMOTE with the text, code and data', async () => {
  t = createTestChannel({
    handlers: { save: respond.error('disk full', { code: 'ENOSPC', data: { free: 0 } }) },
  })
  const error = await t.channel.request('save', { name: 'a' }).catch((e) => e)
  expect(error).toMatchObject({
    code: 'EREMOTE',
    message: 'disk full',
    method: 'save',
    remoteMessage: 'disk full',
    remoteCode: 'ENOSPC',
    remoteData: { free: 0 },
  })
  expect(error.requestId).toBe(t.backend.requests[0].id)
  // The stack is the caller's: this test file, not native code.
  expect(error.stack.split('\n')[1]).toContain('testing-kit.test.js')
  // An unknown method is an error response naming it.
  await expect(t.channel.request('nope')).rejects.toMatchObject({ code: 'EREMOTE', message: 'unknown method: nope' })
})

test('answer after a delay, driven by jest fake timers', async () => {
  jest.useFakeTimers()
  t = createTestChannel({ handlers: { render: respond.after(60_000, (params) => `rendered ${params.frame}`) } })
  let settled = false
  const result = t.channel.request('render', { frame: 7 }, { timeoutMs: 120_000 }).finally(() => (settled = true))
  await t.backend.waitForRequest('render')
  await jest.advanceTimersByTimeAsync(59_999)
  expect(settled).toBe(false)
  await jest.advanceTimersByTimeAsync(1)
  await expect(result).resolves.toBe('rendered 7')
})

test('send progress, then the result; the frontend sees every update before the answer', async () => {
  t = createTestChannel({
    handlers: { bake: respond.progress([1, 2, { progress: 3, message: 'last' }], 'baked', { total: 3 }) },
  })
  // A request()'s own task.progress events go to its onProgress (issue 13), not to 'event'.
  const updates = []
  const result = t.channel.request('bake', undefined, { onProgress: (update) => updates.push(update) })
  await expect(result).resolves.toBe('baked')
  expect(updates).toEqual([
    { progress: 1, total: 3 },
    { progress: 2, total: 3 },
    { progress: 3, message: 'last' },
  ])
})

test('progress from a handler of your own, with fake timers between the steps', async () => {
  jest.useFakeTimers()
  t = createTestChannel({
    handlers: {
      export: async (params, context) => {
        for (let i = 1; i <= params.steps; i++) {
          await new Promise((resolve) => setTimeout(resolve, 1000))
          context.progress(i, { total: params.steps })
        }
        return 'exported'
      },
    },
  })
  const seen = []
  const result = t.channel.request('export', { steps: 2 }, { onProgress: (update) => seen.push(update.progress) })
  await t.backend.waitForRequest('export')
  await jest.advanceTimersByTimeAsync(2000)
  await expect(result).resolves.toBe('exported')
  expect(seen).toEqual([1, 2])
})

test('never answer: the request times out; it can be answered by hand', async () => {
  t = createTestChannel({ handlers: { hang: respond.never() } })
  await expect(t.channel.request('hang', null, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ETIMEDOUT' })
  expect((await t.backend.waitForRequest('hang')).payload).toBe(null)
  const late = t.channel.request('hang', { n: 2 })
  const request = await t.backend.waitForRequest('hang')
  expect(request.payload).toEqual({ n: 2 })
  t.backend.respond(request.id, 'by hand')
  await expect(late).resolves.toBe('by hand')
})

test('send an event', async () => {
  t = createTestChannel()
  const event = new Promise((resolve) => t.channel.once('event', resolve))
  t.backend.sendEvent('scene.changed', { nodes: 3 })
  await expect(event).resolves.toMatchObject({ type: 'event', method: 'scene.changed', payload: { nodes: 3 } })
})

test('write a malformed message: EBADMSG on the frontend, the good messages still arrive', async () => {
  t = createTestChannel()
  const errors = []
  const events = []
  t.channel.on('error', (error) => errors.push(error))
  t.channel.on('event', (message) => events.push(message.payload))
  t.backend.sendEvent('before', 1)
  const bad = t.backend.writeMalformed()
  t.backend.sendEvent('after', 2)
  await waitFor(() => events.length === 2 && errors.length === 1, { timeoutMs: 10000, what: '2 events and 1 error' })
  expect(events).toEqual([1, 2])
  expect(errors[0].code).toBe('EBADMSG')
  expect(errors[0].message).toContain(bad.id)
})

test('a whole file that is not JSON is reported once', async () => {
  t = createTestChannel()
  const errors = []
  t.channel.on('error', (error) => errors.push(error))
  t.backend.writeRaw('not json at all')
  await waitFor(() => errors.length === 1, { timeoutMs: 10000, what: 'the error' })
  expect(errors[0]).toMatchObject({ code: 'EBADMSG' })
})

test('disappear: the peer is gone; announce sends backend_shutdown and pending requests reject EPEERGONE', async () => {
  t = createTestChannel({ handlers: { slow: respond.after(50, 'late') } })
  const shutdown = new Promise((resolve) => t.channel.once('event', resolve))
  const pending = t.channel.request('slow', null, { timeoutMs: 300 })
  await t.backend.waitForRequest('slow')
  t.backend.disappear({ announce: true })
  expect(t.backend.gone).toBe(true)
  await expect(shutdown).resolves.toMatchObject({ method: 'backend_shutdown', payload: { pid: process.pid } })
  // backend_shutdown makes the peer 'gone': requests in flight reject at once (issue 13)...
  await expect(pending).rejects.toMatchObject({ code: 'EPEERGONE' })
  // ...later ones fail at once (issue 18), or wait for a backend that may come back if they say so.
  await expect(t.channel.request('slow', null, { timeoutMs: 60000 })).rejects.toMatchObject({ code: 'EPEERGONE' })
  await expect(t.channel.request('slow', null, { timeoutMs: 50, waitForPeer: true })).rejects.toMatchObject({
    code: 'ETIMEDOUT',
  })
})

test('options apply to both ends; bad options fail before anything is left behind', () => {
  t = createTestChannel({ options: { maxMessages: 7 } })
  expect(t.channel.closed).toBe(false)
  expect(() => createTestChannel({ options: { pollIntervalMs: 0 } })).toThrow(
    expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('options.pollIntervalMs') }),
  )
})

describe("under jest's default fake timers", () => {
  test("the kit's handler context has the signal of handle(): a cancel aborts it", async () => {
    jest.useFakeTimers()
    let aborted
    t = createTestChannel({
      handlers: {
        render: (params, context) =>
          new Promise((resolve) => {
            context.signal.addEventListener('abort', () => {
              aborted = context.signal.reason
              resolve('stopped')
            })
          }),
      },
    })
    const controller = new AbortController()
    const call = t.channel.request('render', null, { signal: controller.signal, timeoutMs: 20000 })
    const request = await t.backend.waitForRequest('render')
    expect(t.backend.requests).toHaveLength(1)
    controller.abort('user pressed Esc')
    await expect(call).rejects.toMatchObject({ code: 'ABORT_ERR' })
    await waitFor(() => aborted !== undefined, { timeoutMs: 10000, what: 'the handler to see the cancel' })
    expect(aborted).toMatchObject({ code: 'ECANCELED', reason: 'user pressed Esc' })
    expect(request.id).toBe(t.backend.requests[0].id)
  })

  test('idleTimeoutMs fires, and disappear({ announce: true }) fails the pending call', async () => {
    jest.useFakeTimers()
    t = createTestChannel({ handlers: { stuck: respond.never() } })
    await expect(t.channel.request('stuck', null, { idleTimeoutMs: 100, timeoutMs: 20000 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
    })
    const pending = t.channel.request('stuck', null, { timeoutMs: 20000 })
    await t.backend.waitForRequest('stuck')
    t.backend.disappear({ announce: true })
    await expect(pending).rejects.toMatchObject({ code: 'EPEERGONE' })
  })

  test('a real backend using handle() announces itself', async () => {
    jest.useFakeTimers()
    t = createTestChannel()
    const announced = new Promise((resolve) =>
      t.channel.on('event', (message) => {
        if (message.method === 'backend_ready' && message.payload.available_methods.includes('m')) resolve(message)
      }),
    )
    const back = FileChannel.backend(t.dir)
    try {
      back.handle('m', () => 1)
      await expect(announced).resolves.toMatchObject({ payload: { available_methods: ['m'], pid: process.pid } })
    } finally {
      back.close()
    }
  })
})
