'use strict'

// Push delivery: waitResponse, request, listeners and the delivery rule, async iteration,
// handlers, bursts, the event loop staying free, and ref/unref.

const fs = require('node:fs')
const path = require('node:path')
const {
  useHarness,
  removeLiveDir,
  settle,
  expectRejects,
  readMessages,
  diskMessage,
  FRONTEND_OUTBOX,
  BACKEND_OUTBOX,
  UUID_V4,
} = require('./helpers/channels.js')
const { waitFor, sleep } = require('../test-support')

const h = useHarness()

describe('waitResponse', () => {
  test('resolves with the whole response message when it arrives later', async () => {
    const { front, back } = h.pair()
    const id = front.sendRequest('get', { k: 1 })
    const pending = settle(front.waitResponse(id, 5000))
    expect(front.pendingWaits).toBe(1)
    await sleep(30)
    back.sendResponse(id, { answer: 42 })
    const { value, error } = await pending
    expect(error).toBeUndefined()
    const [onDisk] = readMessages(front.dir, BACKEND_OUTBOX)
    expect(value).toEqual({
      id: onDisk.id,
      timestamp: onDisk.timestamp,
      type: 'response',
      replyTo: id,
      payload: { answer: 42 },
    })
    expect(front.pendingWaits).toBe(0)
    // Taken by the wait: not left for recv().
    expect(front.recv()).toEqual([])
  })

  test('an error response resolves too, carrying error and a null payload', async () => {
    const { front, back } = h.pair()
    const id = front.sendRequest('get')
    const pending = front.waitResponse(id, 5000)
    setTimeout(() => back.sendError(id, 'no such thing'), 10)
    const message = await pending
    expect(message.type).toBe('response')
    expect(message.replyTo).toBe(id)
    expect(message.payload).toBeNull()
    expect(message.error).toBe('no such thing')
  })

  test('finds a response that is already in the inbox file when called', async () => {
    const { front, back } = h.pair()
    const id = front.sendRequest('get')
    back.sendResponse(id, 'early')
    const message = await front.waitResponse(id, 2000)
    expect(message.payload).toBe('early')
    expect(front.recv()).toEqual([])
  })

  test('finds a response already read into the recv() queue', async () => {
    const { front, back } = h.pair()
    const id = front.sendRequest('get')
    back.sendEvent('first', 1)
    back.sendResponse(id, 'queued')
    back.sendEvent('last', 2)
    expect(front.recvOne().method).toBe('first') // reads the file; the rest is queued in memory
    const message = await front.waitResponse(id, 2000)
    expect(message.payload).toBe('queued')
    expect(front.recv().map((m) => m.method)).toEqual(['last'])
  })

  test('rejects with ETIMEDOUT naming the request, not before its time', async () => {
    const { front } = h.pair()
    const id = front.sendRequest('never')
    const started = performance.now()
    const error = await expectRejects(front.waitResponse(id, 150), 'ETIMEDOUT', id)
    expect(performance.now() - started).toBeGreaterThanOrEqual(149)
    expect(error.code).toBe('ETIMEDOUT')
    expect(front.pendingWaits).toBe(0)
  })

  test('a timeout of 0 rejects ETIMEDOUT unless the response is already there', async () => {
    const { front, back } = h.pair()
    const id = front.sendRequest('x')
    await expectRejects(front.waitResponse(id, 0), 'ETIMEDOUT')
    back.sendResponse(id, 'there')
    expect((await front.waitResponse(id, 0)).payload).toBe('there')
  })

  test('messages that are not its response stay for recv(), in order', async () => {
    const { front, back } = h.pair()
    const id = front.sendRequest('get')
    const other = front.sendRequest('other')
    const pending = front.waitResponse(id, 5000)
    await sleep(20)
    back.sendEvent('progress', 1)
    back.sendRequest('back-asks', 2)
    back.sendResponse(other, 3)
    await sleep(30)
    back.sendEvent('progress', 4)
    back.sendResponse(id, 'mine')
    back.sendEvent('after', 5)
    expect((await pending).payload).toBe('mine')
    await sleep(30)
    const rest = front.recv()
    expect(rest.map((m) => [m.type, m.payload])).toEqual([
      ['event', 1],
      ['request', 2],
      ['response', 3],
      ['event', 4],
      ['event', 5],
    ])
    expect(front.recv()).toEqual([])
  })

  test('two waits on the same id both resolve with the response', async () => {
    const { front, back } = h.pair()
    const id = front.sendRequest('get')
    const both = Promise.all([front.waitResponse(id, 5000), front.waitResponse(id, 5000)])
    setTimeout(() => back.sendResponse(id, 'shared'), 10)
    const [a, b] = await both
    expect(a.payload).toBe('shared')
    expect(b.payload).toBe('shared')
    expect(a.id).toBe(b.id)
  })

  test('aborting one wait does not cancel another wait on the same id', async () => {
    const { front, back } = h.pair()
    const id = front.sendRequest('get')
    const controller = new AbortController()
    const aborted = settle(front.waitResponse(id, 5000, { signal: controller.signal }))
    const kept = settle(front.waitResponse(id, 5000))
    controller.abort()
    const first = await aborted
    expect(first.error.name).toBe('AbortError')
    expect(first.error.code).toBe('ABORT_ERR')
    back.sendResponse(id, 'for the other wait')
    const second = await kept
    expect(second.error).toBeUndefined()
    expect(second.value && second.value.payload).toBe('for the other wait')
  })

  test('an AbortSignal rejects with AbortError before and during the wait; a late response stays for recv()', async () => {
    const { front, back } = h.pair()
    const id = front.sendRequest('get')
    const before = await settle(front.waitResponse(id, 5000, { signal: AbortSignal.abort() }))
    expect(before.error.name).toBe('AbortError')
    expect(before.error.code).toBe('ABORT_ERR')
    const controller = new AbortController()
    const during = settle(front.waitResponse(id, 5000, { signal: controller.signal }))
    expect(front.pendingWaits).toBe(1)
    setTimeout(() => controller.abort(), 20)
    const result = await during
    expect(result.error.name).toBe('AbortError')
    expect(result.error.code).toBe('ABORT_ERR')
    expect(front.pendingWaits).toBe(0)
    back.sendResponse(id, 'late')
    await sleep(20)
    expect(front.recv().map((m) => m.payload)).toEqual(['late'])
  })
})

describe('many waits at once', () => {
  test('500 waitResponse in flight, each resolved with its own answer', async () => {
    const { front, back } = h.pair()
    const waits = []
    const requests = []
    for (let wave = 0; wave < 10; wave++) {
      for (let i = 0; i < 50; i++) {
        const n = wave * 50 + i
        const id = front.sendRequest('square', n)
        waits.push({ id, n, result: settle(front.waitResponse(id, 30000)) })
      }
      const got = back.recv()
      expect(got).toHaveLength(50)
      requests.push(...got)
    }
    expect(front.pendingWaits).toBe(500)
    expect(requests.map((r) => r.payload)).toEqual(waits.map((w) => w.n))
    // Answer in waves the reader can keep up with, in reverse order within each wave.
    for (let wave = 0; wave < 10; wave++) {
      const slice = requests.slice(wave * 50, wave * 50 + 50).reverse()
      for (const request of slice) back.sendResponse(request.id, { n: request.payload, sq: request.payload ** 2 })
      await Promise.all(waits.slice(wave * 50, wave * 50 + 50).map((w) => w.result))
    }
    const results = await Promise.all(waits.map((w) => w.result))
    results.forEach((result, i) => {
      expect(result.error).toBeUndefined()
      expect(result.value.replyTo).toBe(waits[i].id)
      expect(result.value.payload).toEqual({ n: waits[i].n, sq: waits[i].n ** 2 })
    })
    expect(front.pendingWaits).toBe(0)
    expect(front.recv()).toEqual([])
  })

  test('1,000 waits on ids that never come all reject ETIMEDOUT, none early', async () => {
    const { front } = h.pair()
    // Under Wine (the Windows run here) each waitResponse call costs a wineserver round trip
    // (~0.7 ms), so making 1,000 of them takes longer than 300 ms.
    const timeoutMs = process.platform === 'win32' ? 3000 : 300
    const waits = []
    for (let i = 0; i < 1000; i++) {
      const started = performance.now()
      waits.push(
        front.waitResponse(`never-${i}`, timeoutMs).then(
          () => ({ resolved: true }),
          (error) => ({ code: error.code, message: error.message, elapsed: performance.now() - started }),
        ),
      )
    }
    expect(front.pendingWaits).toBe(1000)
    const results = await Promise.all(waits)
    expect(results.filter((r) => r.code !== 'ETIMEDOUT')).toEqual([])
    expect(results.every((r, i) => r.message.includes(`never-${i}`))).toBe(true)
    const early = results.filter((r) => r.elapsed < timeoutMs - 1)
    expect(early).toEqual([])
    expect(front.pendingWaits).toBe(0)
  })
})

describe('request()', () => {
  test('resolves with the response payload', async () => {
    const { front, back } = h.pair()
    back.handle('sum', (list) => list.reduce((a, b) => a + b, 0))
    await expect(front.request('sum', [1, 2, 3, 4], { timeoutMs: 5000 })).resolves.toBe(10)
    await expect(front.request('sum', [], { timeoutMs: 5000 })).resolves.toBe(0)
  })

  test('rejects with EREMOTE and the remote error text for an error response', async () => {
    const { front, back } = h.pair()
    back.on('request', (message) => back.sendError(message.id, `cannot ${message.method}: disk full`))
    await expectRejects(front.request('save', {}, { timeoutMs: 5000 }), 'EREMOTE', 'cannot save: disk full')
  })

  test('rejects ETIMEDOUT when nobody answers', async () => {
    const { front } = h.pair()
    await expectRejects(front.request('nobody', 1, { timeoutMs: 80 }), 'ETIMEDOUT')
    expect(front.pendingWaits).toBe(0)
  })

  test('an AbortSignal already aborted rejects at once with AbortError and sends nothing', async () => {
    const { dir, front } = h.pair()
    const { error } = await settle(front.request('m', 1, { signal: AbortSignal.abort(), timeoutMs: 5000 }))
    expect(error.name).toBe('AbortError')
    expect(error.code).toBe('ABORT_ERR')
    expect(readMessages(dir, FRONTEND_OUTBOX)).toEqual([])
  })

  test('aborting during the wait rejects with AbortError; the late response is dropped and counted', async () => {
    const { front, back } = h.pair()
    const controller = new AbortController()
    const pending = settle(front.request('slow', 1, { signal: controller.signal, timeoutMs: 5000 }))
    expect(front.pendingWaits).toBe(1)
    // The backend has it before the caller gives up (one it never read would be withdrawn).
    const request = await waitFor(() => back.recv().find((m) => m.type === 'request'), {
      what: 'the request to be written',
    })
    controller.abort(new Error('user gave up'))
    const { error } = await pending
    expect(error.name).toBe('AbortError')
    expect(error.code).toBe('ABORT_ERR')
    expect(front.pendingWaits).toBe(0)
    back.sendResponse(request.id, 'too late')
    // Issue 13: a reply to a request() that gave up never reaches anything; it is counted.
    await waitFor(() => front.stats.droppedResponses === 1, { what: 'the late reply to be counted' })
    expect(front.recv()).toEqual([])
  })
})

describe('listeners and the delivery rule', () => {
  function sendOneOfEach(back, front) {
    const requestId = front.sendRequest('ignored')
    back.sendRequest('req', 'r')
    back.sendEvent('evt', 'e')
    back.sendResponse(requestId, 's')
  }

  test("on('message') receives every type, in order; recv() gets nothing", async () => {
    const { front, back } = h.pair()
    const got = []
    front.on('message', (m) => got.push([m.type, m.payload]))
    sendOneOfEach(back, front)
    await waitFor(() => got.length === 3, { what: '3 messages' })
    await sleep(30)
    expect(got).toEqual([
      ['request', 'r'],
      ['event', 'e'],
      ['response', 's'],
    ])
    expect(front.recv()).toEqual([])
  })

  test.each(['request', 'event', 'response'])(
    "on('%s') takes only that type; the others stay for recv()",
    async (type) => {
      const { front, back } = h.pair()
      const got = []
      front.on(type, (m) => got.push(m.type))
      sendOneOfEach(back, front)
      await waitFor(() => got.length === 1, { what: `the ${type}` })
      await sleep(40)
      expect(got).toEqual([type])
      const rest = front.recv().map((m) => m.type)
      expect(rest).toEqual(['request', 'event', 'response'].filter((t) => t !== type))
    },
  )

  test('a typed listener and a message listener both see a message once (one emit each)', async () => {
    const { front, back } = h.pair()
    const order = []
    front.on('message', (m) => order.push(`message:${m.payload}`))
    front.on('event', (m) => order.push(`event:${m.payload}`))
    back.sendEvent('e', 1)
    back.sendEvent('e', 2)
    await waitFor(() => order.length === 4)
    await sleep(30)
    expect(order).toEqual(['message:1', 'event:1', 'message:2', 'event:2'])
  })

  test('a pending wait takes its response even when response and message listeners exist', async () => {
    const { front, back } = h.pair()
    const seen = []
    front.on('response', (m) => seen.push(['response', m.payload]))
    front.on('message', (m) => seen.push(['message', m.payload]))
    const id = front.sendRequest('get')
    const other = front.sendRequest('get2')
    const pending = front.waitResponse(id, 5000)
    back.sendResponse(other, 'for listeners')
    back.sendResponse(id, 'for the wait')
    expect((await pending).payload).toBe('for the wait')
    await waitFor(() => seen.length === 2)
    await sleep(30)
    // 'message' is emitted first, then the typed event (as for every other message).
    expect(seen).toEqual([
      ['message', 'for listeners'],
      ['response', 'for listeners'],
    ])
  })

  test('off() sends later messages back to recv(); once() fires exactly once', async () => {
    const { front, back } = h.pair()
    const got = []
    const listener = (m) => got.push(m.payload)
    front.on('event', listener)
    expect(front.listenerCount('event')).toBe(1)
    back.sendEvent('e', 1)
    await waitFor(() => got.length === 1)
    front.off('event', listener)
    expect(front.listenerCount('event')).toBe(0)
    back.sendEvent('e', 2)
    await sleep(50)
    expect(got).toEqual([1])
    expect(front.recv().map((m) => m.payload)).toEqual([2])

    const onceGot = []
    front.once('event', (m) => onceGot.push(m.payload))
    back.sendEvent('e', 3)
    await waitFor(() => onceGot.length === 1)
    expect(front.listenerCount('event')).toBe(0)
    back.sendEvent('e', 4)
    await sleep(50)
    expect(onceGot).toEqual([3])
    expect(front.recv().map((m) => m.payload)).toEqual([4])
  })

  test('removeAllListeners() stops delivery to listeners', async () => {
    const { front, back } = h.pair()
    const got = []
    front.on('message', (m) => got.push(m))
    front.on('event', (m) => got.push(m))
    front.removeAllListeners()
    back.sendEvent('e', 'x')
    await sleep(50)
    expect(got).toEqual([])
    expect(front.recv().map((m) => m.payload)).toEqual(['x'])
  })

  test("a throwing listener does not stop other messages; the throw is reported through 'error'", async () => {
    const { front, back } = h.pair()
    const got = []
    const errors = []
    const boom = new Error('listener exploded')
    front.on('error', (error) => errors.push(error))
    front.on('event', (m) => {
      got.push(m.payload)
      if (m.payload === 2) throw boom
    })
    for (let i = 1; i <= 5; i++) back.sendEvent('e', i)
    await waitFor(() => got.length === 5, { what: 'all 5 events' })
    await sleep(30)
    expect(got).toEqual([1, 2, 3, 4, 5])
    expect(errors).toEqual([boom])
    expect(front.closed).toBe(false)
    back.sendEvent('e', 6)
    await waitFor(() => got.length === 6)
  })
})

describe('re-entrancy', () => {
  test('close() inside a listener stops delivery of the messages after it', async () => {
    const { front, back } = h.pair()
    const got = []
    front.on('event', (m) => {
      got.push(m.payload)
      front.close()
    })
    for (let i = 0; i < 5; i++) back.sendEvent('e', i)
    await waitFor(() => got.length > 0)
    await sleep(100)
    expect(got).toEqual([0])
    expect(front.closed).toBe(true)
  })

  test('sending from inside a listener works and is delivered once', async () => {
    const { front, back } = h.pair()
    const replies = []
    back.on('event', (m) => back.sendEvent('pong', m.payload))
    front.on('event', (m) => replies.push(m.payload))
    for (let i = 0; i < 20; i++) front.sendEvent('ping', i)
    await waitFor(() => replies.length === 20, { what: '20 pongs' })
    await sleep(50)
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  test('an async handler finishing after close() neither sends nor throws', async () => {
    const { dir, front, back } = h.pair()
    let started = false
    back.handle('slow', async () => {
      started = true
      await sleep(60)
      return 'too late'
    })
    front.sendRequest('slow')
    await waitFor(() => started, { what: 'the handler to start' })
    back.close()
    await sleep(150)
    // Only the backend's own announcements (backend_ready on serve, backend_shutdown on close).
    expect(readMessages(dir, BACKEND_OUTBOX).map((m) => m.method)).toEqual(['backend_ready', 'backend_shutdown'])
  })

  test('a 1 MB payload round-trips exactly', async () => {
    const { front, back } = h.pair()
    back.handle('echo', (params) => params)
    const big = { text: 'é😀'.repeat(200000), list: Array.from({ length: 1000 }, (_, i) => i) }
    await expect(front.request('echo', big, { timeoutMs: 10000 })).resolves.toEqual(big)
  })
})

describe('messages() async iteration', () => {
  test('yields every message in order; aborting rejects with AbortError (like events.on) and loses nothing', async () => {
    const { front, back } = h.pair()
    const controller = new AbortController()
    const got = []
    const loop = (async () => {
      for await (const message of front.messages({ signal: controller.signal })) {
        got.push(message.payload)
        if (got.length === 5) controller.abort('enough')
      }
      return 'ended'
    })()
    for (let i = 0; i < 8; i++) back.sendEvent('e', i)
    await expect(loop).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'enough' })
    expect(got).toEqual([0, 1, 2, 3, 4])
    // What the iterator held but did not yield goes back to recv(), with what arrives later.
    const rest = []
    await waitFor(() => rest.push(...front.recv().map((m) => m.payload)) && rest.length === 3)
    expect(rest).toEqual([5, 6, 7])
  })

  test('ends when the channel closes', async () => {
    const { front, back } = h.pair()
    const got = []
    const loop = (async () => {
      for await (const message of front.messages()) got.push(message.payload)
      return 'ended'
    })()
    back.sendEvent('e', 'a')
    await waitFor(() => got.length === 1)
    front.close()
    await expect(loop).resolves.toBe('ended')
    expect(got).toEqual(['a'])
  })

  test('an already aborted signal throws AbortError at once (like events.on); break stops taking messages', async () => {
    const { front, back } = h.pair()
    expect(() => front.messages({ signal: AbortSignal.abort() })).toThrow(
      expect.objectContaining({ name: 'AbortError', code: 'ABORT_ERR' }),
    )
    back.sendEvent('e', 1)
    back.sendEvent('e', 2)
    for await (const message of front.messages()) {
      expect(message.payload).toBe(1)
      break
    }
    back.sendEvent('e', 3)
    // After break nothing iterates: new messages go to recv() again.
    const received = []
    await waitFor(() => received.push(...front.recv().map((m) => m.payload)) && received.includes(3), {
      what: 'the message sent after break to reach recv()',
    })
  })
})

describe('handle() and serve()', () => {
  test('return value, thrown error, async handler and unknown method', async () => {
    const { front, back } = h.pair()
    const calls = []
    back.serve({
      add: ({ a, b }, message) => {
        calls.push(message.id)
        return a + b
      },
      fail: () => {
        throw new Error('handler failed on purpose')
      },
      later: async (value) => {
        await sleep(10)
        return { value }
      },
      rejects: async () => {
        await sleep(1)
        throw new RangeError('async failure')
      },
      nothing: () => undefined,
    })
    const addId = front.sendRequest('add', { a: 2, b: 3 })
    expect((await front.waitResponse(addId, 5000)).payload).toBe(5)
    expect(calls).toEqual([addId])
    const failed = await front.waitResponse(front.sendRequest('fail'), 5000)
    expect(failed.payload).toBeNull()
    expect(failed.error).toBe('handler failed on purpose')
    await expect(front.request('later', 'v', { timeoutMs: 5000 })).resolves.toEqual({ value: 'v' })
    await expectRejects(front.request('rejects', null, { timeoutMs: 5000 }), 'EREMOTE', 'async failure')
    await expect(front.request('nothing', null, { timeoutMs: 5000 })).resolves.toBeNull()
    const unknown = await front.waitResponse(front.sendRequest('frobnicate'), 5000)
    expect(unknown.error).toContain('frobnicate')
    await expectRejects(front.request('frobnicate2', null, { timeoutMs: 5000 }), 'EREMOTE', 'frobnicate2')
  })

  test('a handler returning a value JSON cannot hold answers with an error, not silence', async () => {
    const { front, back } = h.pair()
    const errors = []
    back.on('error', (error) => errors.push(error))
    back.handle('bad', () => ({ n: NaN }))
    const result = await settle(front.request('bad', null, { timeoutMs: 1000 }))
    // The requester must learn that the handler failed instead of waiting for its timeout.
    expect(result.error && result.error.code).toBe('EREMOTE')
  })

  test('unhandle() stops answering: requests go to recv() again', async () => {
    const { front, back } = h.pair()
    back.handle('ping', () => 'pong')
    await expect(front.request('ping', null, { timeoutMs: 5000 })).resolves.toBe('pong')
    back.unhandle('ping')
    const id = front.sendRequest('ping')
    await sleep(50)
    expect(back.recv().map((m) => m.id)).toEqual([id])
  })
})

describe('bursts and clear()', () => {
  test('300 events sent as fast as possible are read exactly once, in order', () => {
    const { dir, front, back } = h.pair()
    for (let i = 0; i < 300; i++) back.sendEvent('burst', i)
    const onDisk = readMessages(dir, BACKEND_OUTBOX)
    // The burst really shares milliseconds (the reference would repeat these). Not under Wine (the
    // Windows run here), where a send takes ~5 ms: there this checks exactly-once and order only.
    if (process.platform !== 'win32') {
      expect(new Set(onDisk.map((m) => m.timestamp)).size).toBeLessThan(onDisk.length)
    }
    const got = front.recv()
    expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    expect(new Set(got.map((m) => m.id)).size).toBe(300)
    expect(front.recv()).toEqual([])
  })

  test('same-millisecond sends interleaved with reads are each delivered once', () => {
    const { front, back } = h.pair()
    const got = []
    for (let i = 0; i < 300; i++) {
      back.sendEvent('burst', i)
      if (i % 7 === 0) got.push(...front.recv())
    }
    got.push(...front.recv())
    expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    expect(front.recv()).toEqual([])
  })

  test('1,000 events in waves of 100 with a listener: each received exactly once, in order', async () => {
    const { front, back } = h.pair()
    const got = []
    front.on('event', (m) => got.push(m.payload))
    for (let wave = 0; wave < 10; wave++) {
      for (let i = 0; i < 100; i++) back.sendEvent('burst', wave * 100 + i)
      await waitFor(() => got.length >= (wave + 1) * 100, { what: `wave ${wave}`, timeoutMs: 10000 })
    }
    await sleep(50)
    expect(got).toHaveLength(1000)
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i))
  })

  test('the peer calling clear() then sending more: new messages delivered, nothing twice (listener)', async () => {
    const { front, back } = h.pair()
    const got = []
    front.on('event', (m) => got.push(m.payload))
    for (let i = 0; i < 5; i++) back.sendEvent('e', i)
    await waitFor(() => got.length === 5)
    back.clear()
    await sleep(20)
    for (let i = 5; i < 10; i++) back.sendEvent('e', i)
    await waitFor(() => got.length >= 10)
    await sleep(50)
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  test('the peer calling clear() then sending more: new messages delivered, nothing twice (recv)', () => {
    const { front, back } = h.pair()
    for (let i = 0; i < 5; i++) back.sendEvent('e', i)
    expect(front.recv().map((m) => m.payload)).toEqual([0, 1, 2, 3, 4])
    back.clear()
    expect(front.recv()).toEqual([])
    for (let i = 5; i < 8; i++) back.sendEvent('e', i)
    expect(front.recv().map((m) => m.payload)).toEqual([5, 6, 7])
    back.clear()
    back.sendEvent('e', 8)
    expect(front.recv().map((m) => m.payload)).toEqual([8])
  })

  test('a peer re-creating the channel directory: later messages still delivered', async () => {
    const { dir, front } = h.pair()
    const got = []
    front.on('event', (m) => got.push(m.payload))
    // While the directory is gone, a read may report the missing inbox and a publication of our
    // position its missing directory (Windows sees the removal as changes and reads at once):
    // files of this directory not found, nothing else.
    const problems = []
    front.on('error', (error) => problems.push(error))
    const first = h.backend(dir)
    first.sendEvent('e', 'before')
    await waitFor(() => got.length === 1)
    first.close()
    await removeLiveDir(dir)
    await sleep(50)
    const second = h.backend(dir)
    second.sendEvent('e', 'after')
    await waitFor(() => got.length === 2, { what: 'the event after re-creation', timeoutMs: 5000 })
    expect(got).toEqual(['before', 'after'])
    for (const problem of problems) {
      expect(problem).toMatchObject({ code: 'ENOENT' })
      expect(problem.message).toContain(path.join(dir, 'backend_to_frontend.'))
    }
  })
})

describe('watching and polling', () => {
  test('a peer that writes the inbox in place (as fs.writeFileSync does) is seen at once, not by the slow re-read', async () => {
    const dir = h.channelDir()
    // A safety re-read a minute away: only the watcher can bring these in time.
    const front = h.frontend(dir, { pollIntervalMs: 60000 })
    const got = []
    front.on('event', (m) => got.push(m.payload))
    const inbox = path.join(dir, BACKEND_OUTBOX)
    const written = []
    for (let i = 0; i < 3; i++) {
      written.push(diskMessage({ payload: i }))
      // In place: the same file truncated and rewritten, never renamed.
      fs.writeFileSync(inbox, JSON.stringify(written))
      await waitFor(() => got.length >= i + 1, { what: `in-place write ${i}`, timeoutMs: 20000 })
    }
    expect(got).toEqual([0, 1, 2])
  })

  test('a read between an in-place writer truncating the inbox and writing it delivers nothing twice', async () => {
    const dir = h.channelDir()
    const front = h.frontend(dir, { pollIntervalMs: 60000 })
    const inbox = path.join(dir, BACKEND_OUTBOX)
    const written = [diskMessage({ payload: 0 }), diskMessage({ payload: 1 })]
    fs.writeFileSync(inbox, JSON.stringify(written))
    expect(front.recv().map((m) => m.payload)).toEqual([0, 1])
    // What a read sees between fs.writeFileSync's truncate and its write (empty, or blank).
    for (const blank of ['', '\n ']) {
      fs.writeFileSync(inbox, blank)
      expect(front.recv()).toEqual([])
    }
    written.push(diskMessage({ payload: 2 }))
    fs.writeFileSync(inbox, JSON.stringify(written))
    // One read finds the whole version: had the blank ones been taken for versions, 0 and 1
    // would come again with 2.
    const got = []
    await waitFor(() => got.push(...front.recv().map((m) => m.payload)), { what: 'message 2' })
    expect(got).toEqual([2])
  })

  test('a peer that renames, then writes in place, is watched for in-place writes from the first one a read finds', async () => {
    const dir = h.channelDir()
    // A safety re-read a minute away: after the read below, only the watcher brings message 3.
    const front = h.frontend(dir, { pollIntervalMs: 60000 })
    const back = h.backend(dir)
    const got = []
    front.on('event', (m) => got.push(m.payload))
    // A renaming writer first: once a read has seen its file replaced, the files that replace
    // it are not watched for in-place writes (the one armed before that read still is).
    expect(front.recv()).toEqual([])
    for (const payload of [0, 1]) {
      back.sendEvent('e', payload)
      await waitFor(() => got.length === payload + 1, { what: `renamed message ${payload}` })
    }
    const inbox = path.join(dir, BACKEND_OUTBOX)
    const writeInPlace = (payload) => {
      const messages = JSON.parse(fs.readFileSync(inbox, 'utf8'))
      messages.push(diskMessage({ payload }))
      fs.writeFileSync(inbox, JSON.stringify(messages))
    }
    writeInPlace(2)
    // Nothing announces it: a read (recv() reads, and routes to the listener) finds it.
    expect(front.recv()).toEqual([])
    await waitFor(() => got.length >= 3, { what: 'the in-place write the read found' })
    writeInPlace(3)
    await waitFor(() => got.length >= 4, { what: 'the second in-place write', timeoutMs: 20000 })
    expect(got).toEqual([0, 1, 2, 3])
  })

  test('watch: false polls: listeners and waits still get every message', async () => {
    const dir = h.channelDir()
    const front = h.frontend(dir, { watch: false, pollIntervalMs: 20 })
    const back = h.backend(dir)
    const got = []
    front.on('event', (m) => got.push(m.payload))
    for (let i = 0; i < 5; i++) back.sendEvent('e', i)
    const id = front.sendRequest('get')
    const pending = front.waitResponse(id, 5000)
    back.sendResponse(id, 'polled')
    expect((await pending).payload).toBe('polled')
    await waitFor(() => got.length === 5)
    expect(got).toEqual([0, 1, 2, 3, 4])
  })

  test('a watching reader costs little more CPU than a polling one for the same messages', async () => {
    async function cpuFor(options) {
      const dir = h.channelDir()
      const front = h.frontend(dir, options)
      const back = h.backend(dir)
      let received = 0
      front.on('event', () => received++)
      await sleep(100)
      const before = process.cpuUsage()
      for (let i = 0; i < 8; i++) {
        back.sendEvent('tick', i)
        await sleep(100)
      }
      const used = process.cpuUsage(before)
      await waitFor(() => received === 8, { what: 'all ticks' })
      front.close()
      back.close()
      return (used.user + used.system) / 1000
    }
    const polling = await cpuFor({ watch: false, pollIntervalMs: 100 })
    const watching = await cpuFor({ watch: true })
    // One change should cost one read, not a storm of re-reads until the file "settles".
    expect(watching).toBeLessThan(polling * 5 + 50)
  })
})

describe('the event loop stays free', () => {
  // On Linux the package's threads take SCHED_BATCH, so that waking one (a send handed to the
  // writer) never preempts the JavaScript thread in the middle of the call. /proc tells (a Linux
  // behaviour: the test exists only there).
  const onLinux = process.platform === 'linux' ? test : () => {}
  onLinux("the package's threads give way to the JavaScript thread (SCHED_BATCH on Linux)", async () => {
    const { front } = h.pair()
    front.on('event', () => {})
    await front.promises.sendEvent('tick', 1)
    const SCHED_BATCH = 3
    const policies = {}
    await waitFor(() => {
      for (const task of fs.readdirSync('/proc/self/task')) {
        const name = fs.readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim()
        const stat = fs.readFileSync(`/proc/self/task/${task}/stat`, 'utf8')
        const policy = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38])
        if (name.startsWith('ipckit-')) policies[name] = policy
      }
      return ['ipckit-dispatch', 'ipckit-writer', 'ipckit-watch'].every((name) => name in policies)
    })
    expect(policies).toEqual({
      'ipckit-dispatch': SCHED_BATCH,
      'ipckit-writer': SCHED_BATCH,
      'ipckit-watch': SCHED_BATCH,
    })
    const main = fs.readFileSync('/proc/self/stat', 'utf8')
    expect(Number(main.slice(main.lastIndexOf(')') + 2).split(' ')[38])).toBe(0)
  })

  test('pending waits hold no libuv pool thread: file reads complete while 8 waits are pending', async () => {
    const { front } = h.pair()
    const file = path.join(h.tmpDir(), 'big.bin')
    fs.writeFileSync(file, Buffer.alloc(1 << 20, 7))
    async function sample(n) {
      const times = []
      for (let i = 0; i < n; i++) {
        const started = performance.now()
        const data = await fs.promises.readFile(file)
        times.push(performance.now() - started)
        expect(data.length).toBe(1 << 20)
      }
      return times
    }
    await sample(5) // warm up
    // Waits that held pool threads would take all 4 of them: the reads would wait for the
    // waits to end (after 60 s, past the test's timeout). They complete with the waits pending.
    const waits = Array.from({ length: 8 }, (_, i) => settle(front.waitResponse(`pending-${i}`, 60000)))
    expect(front.pendingWaits).toBe(8)
    await sample(20)
    expect(front.pendingWaits).toBe(8)
    front.close()
    const results = await Promise.all(waits)
    expect(results.every((r) => r.error && r.error.code === 'ECLOSED')).toBe(true)
  })

  test('unref() lets a child process exit while a wait is pending', async () => {
    const dir = h.channelDir()
    const child = h.peer(['unref-wait', dir])
    await child.ready()
    expect(child.lines.find((l) => 'pendingWaits' in l).pendingWaits).toBe(1)
    const exit = await child.exited
    expect(exit).toMatchObject({ code: 0, signal: null })
    // It exited without the wait settling.
    expect(child.lines.some((l) => 'settled' in l)).toBe(false)
  })

  test('process.exit() right after promise sends loses none of them: they are written on exit', async () => {
    const { dir, back } = h.pair()
    const got = []
    back.on('event', (message) => got.push(message.payload))
    const child = h.peer(['exit-after-sends', dir, '2000'])
    expect(await child.exited).toMatchObject({ code: 0 })
    expect(child.stderr).toBe('')
    await waitFor(() => got.length >= 2000, { timeoutMs: 20000, what: 'all 2,000 events' })
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i))
  })

  test('process.exit() while the outbox is locked: the sends that could not be written are reported', async () => {
    const { dir } = h.pair()
    // A live writer (this process) holds the reference's lock for the whole run.
    fs.writeFileSync(path.join(dir, 'frontend_to_backend.lock'), `${process.pid}\n`)
    const child = h.peer(['exit-after-sends', dir, '50'])
    expect(await child.exited).toMatchObject({ code: 0 })
    expect(child.stderr).toMatch(/ipckit: 50 queued send\(s\) could not be written before the process exited/)
  })

  test('unref() lets a child process exit while ready() is pending', async () => {
    const child = h.peer(['unref-ready', h.channelDir()])
    await child.ready()
    const exit = await child.exited
    expect(exit).toMatchObject({ code: 0, signal: null })
    expect(child.lines.some((l) => 'settled' in l)).toBe(false)
  })

  test('without unref() a pending wait keeps the child alive until it resolves', async () => {
    const dir = h.channelDir()
    const child = h.peer(['ref-wait', dir])
    const { id } = await child.nextLine((l) => typeof l.id === 'string')
    expect(id).toMatch(UUID_V4)
    const back = h.backend(dir)
    await sleep(800)
    expect(child.running).toBe(true)
    back.sendResponse(id, 'released')
    const settled = await child.nextLine((l) => 'settled' in l)
    expect(settled).toEqual({ settled: 'resolved', payload: 'released' })
    const exit = await child.exited
    expect(exit).toMatchObject({ code: 0, signal: null })
  })
})
