'use strict'

// FileChannel as a real EventEmitter ('close', setMaxListeners, prependListener, eventNames),
// messages() like events.on, errors with the caller's stack and EREMOTE details, option
// validation in one place (the core) and the core's defaults exported to JS.

const { EventEmitter, once } = require('node:events')
const { useHarness } = require('./helpers/channels.js')
const { waitFor } = require('../test-support')
const { FileChannel, DEFAULTS, LIMITS, MAX_PAYLOAD_DEPTH } = require('..')

const h = useHarness()

describe('EventEmitter', () => {
  test('instanceof EventEmitter; setMaxListeners silences the 11th-listener warning; prependListener, eventNames', async () => {
    const { front, back } = h.pair()
    expect(front).toBeInstanceOf(EventEmitter)
    const warnings = []
    const onWarning = (warning) => warnings.push(warning.name)
    process.on('warning', onWarning)
    front.setMaxListeners(20)
    expect(front.getMaxListeners()).toBe(20)
    const order = []
    for (let i = 0; i < 12; i++) front.on('event', () => order.push(`on${i}`))
    front.prependListener('event', () => order.push('first'))
    front.prependOnceListener('event', () => order.push('once-first'))
    expect(front.eventNames()).toEqual(['event'])
    back.sendEvent('e', 1)
    await waitFor(() => order.length === 14)
    expect(order.slice(0, 3)).toEqual(['once-first', 'first', 'on0'])
    await new Promise((resolve) => setImmediate(resolve))
    process.off('warning', onWarning)
    expect(warnings).not.toContain('MaxListenersExceededWarning')
    front.removeAllListeners('event')
    expect(front.eventNames()).toEqual([])
  })

  test("emits 'close' once, after close(); events.once works on it", async () => {
    const { front } = h.pair()
    const closed = once(front, 'close')
    let count = 0
    front.on('close', () => {
      expect(front.closed).toBe(true)
      count++
    })
    front.close()
    front.close()
    await closed
    expect(count).toBe(1)
  })

  test('a once listener that fired stops holding the process (listening follows removals)', async () => {
    const { front, back } = h.pair()
    const first = once(front, 'event')
    back.sendEvent('a', 1)
    await first
    expect(front.listenerCount('event')).toBe(0)
    // Without listeners the next event goes to recv() again.
    back.sendEvent('b', 2)
    const got = []
    await waitFor(() => got.push(...front.recv()) > 0)
    expect(got.map((m) => m.payload)).toEqual([2])
  })

  test("without an 'error' listener a malformed message is a process warning, not silence", () => {
    // In a plain Node process: jest's sandbox has a process object of its own.
    const dir = h.channelDir()
    const script = `
      const { FileChannel } = require(${JSON.stringify(require.resolve('..'))})
      const front = FileChannel.frontend(${JSON.stringify(dir)})
      front.on('event', () => {})
      process.on('warning', (w) => {
        process.stdout.write(JSON.stringify([w.name, w.code, w.message]))
        front.close()
      })
      require('fs').writeFileSync(${JSON.stringify(dir)} + '/backend_to_frontend.json', 'garbage')
    `
    const run = require('node:child_process').spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      timeout: 20000,
    })
    const [name, code, message] = JSON.parse(run.stdout)
    expect([name, code]).toEqual(['IpckitWarning', 'EBADMSG'])
    expect(message).toContain('backend_to_frontend.json')
    expect(run.stderr).toContain("has no 'error' listener")
  })
})

describe('messages() like events.on', () => {
  test('concurrent next() calls each get their own message, in order', async () => {
    const { front, back } = h.pair()
    const iterator = front.messages()
    const nexts = [iterator.next(), iterator.next(), iterator.next()]
    for (let i = 0; i < 3; i++) back.sendEvent('e', i)
    const results = await Promise.all(nexts)
    expect(results.map((r) => r.value.payload)).toEqual([0, 1, 2])
    await iterator.return()
  })

  test('abort rejects the waiting next() with AbortError, the others end', async () => {
    const { front } = h.pair()
    const controller = new AbortController()
    const iterator = front.messages({ signal: controller.signal })
    const first = iterator.next()
    const second = iterator.next()
    controller.abort()
    await expect(first).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' })
    await expect(second).resolves.toEqual({ value: undefined, done: true })
    await expect(iterator.next()).resolves.toEqual({ value: undefined, done: true })
  })

  test('close() ends every waiting next()', async () => {
    const { front } = h.pair()
    const iterator = front.messages()
    const nexts = [iterator.next(), iterator.next()]
    front.close()
    await expect(Promise.all(nexts)).resolves.toEqual([
      { value: undefined, done: true },
      { value: undefined, done: true },
    ])
  })
})

describe('errors', () => {
  test('rejections from native code carry the caller stack', async () => {
    const { front } = h.pair()
    async function callerOfWait() {
      return front.waitResponse('never', 1)
    }
    const timeout = await callerOfWait().catch((e) => e)
    expect(timeout.code).toBe('ETIMEDOUT')
    expect(timeout.stack).toMatch(/^Error: timed out/)
    expect(timeout.stack).toContain('callerOfWait')
    const request = await front.request('m', null, { timeoutMs: 1 }).catch((e) => e)
    expect(request.stack.split('\n')[1]).toContain('emitter-errors.test.js')
    front.close()
    const closed = await front.request('m').catch((e) => e)
    expect(closed.code).toBe('ECLOSED')
    expect(closed.stack).toContain('emitter-errors.test.js')
  })

  test('EREMOTE carries method, requestId, the remote text, and error_code / error_data when sent', async () => {
    const { front, back } = h.pair()
    back.serve({
      plain: () => {
        throw new Error('plain failure')
      },
      coded: () => {
        const error = new Error('quota exceeded')
        error.code = 'E_QUOTA'
        error.data = { limit: 10, used: [1, 2] }
        throw error
      },
    })
    const plain = await front.request('plain', {}, { timeoutMs: 5000 }).catch((e) => e)
    expect(plain).toMatchObject({
      code: 'EREMOTE',
      message: 'plain failure',
      method: 'plain',
      remoteMessage: 'plain failure',
    })
    expect(plain.requestId).toMatch(/^[0-9a-f-]{36}$/)
    expect(plain).not.toHaveProperty('remoteCode')
    expect(plain).not.toHaveProperty('remoteData')
    const coded = await front.request('coded', {}, { timeoutMs: 5000 }).catch((e) => e)
    expect(coded).toMatchObject({ code: 'EREMOTE', remoteCode: 'E_QUOTA', remoteData: { limit: 10, used: [1, 2] } })
    // On disk: error_code and error_data beside error.
    const onDisk = JSON.parse(require('node:fs').readFileSync(`${front.dir}/backend_to_frontend.json`, 'utf8'))
    expect(onDisk.at(-1)).toMatchObject({
      error: 'quota exceeded',
      error_code: 'E_QUOTA',
      error_data: { limit: 10, used: [1, 2] },
    })
    // waitResponse resolves with them too.
    const id = front.sendRequest('coded')
    await expect(front.waitResponse(id, 5000)).resolves.toMatchObject({
      errorCode: 'E_QUOTA',
      errorData: { limit: 10 },
    })
  })

  test('sendError(id, text, { code, data }) writes the extension fields; bad data is EINVAL', () => {
    const { dir, front } = h.pair()
    front.sendError('r1', 'no', { code: 'E_NO', data: [1] })
    front.sendError('r2', 'plain')
    const onDisk = JSON.parse(require('node:fs').readFileSync(`${dir}/frontend_to_backend.json`, 'utf8'))
    expect(onDisk[0]).toMatchObject({ reply_to: 'r1', error: 'no', error_code: 'E_NO', error_data: [1] })
    expect(Object.keys(onDisk[1])).toEqual(['id', 'timestamp', 'type', 'reply_to', 'payload', 'error'])
    expect(() => front.sendError('r3', 'x', { data: () => 1 })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })
})

describe('one source of truth for options', () => {
  test('defaults and limits come from the core', () => {
    expect(DEFAULTS).toMatchObject({
      timeoutMs: 30000,
      maxMessages: 100,
      lockTimeoutMs: 500,
      maxFileBytes: 64 * 2 ** 20,
    })
    expect(LIMITS.maxPayloadDepth).toBe(125)
    expect(MAX_PAYLOAD_DEPTH).toBe(125)
    expect(LIMITS.options.maxFileBytes).toEqual({ min: 2, max: Number.MAX_SAFE_INTEGER })
    expect(Object.isFrozen(DEFAULTS)).toBe(true)
  })

  test.each([
    [{ pollIntervalMs: 0 }, 'options.pollIntervalMs must be an integer from 1 to 4294967295, got 0'],
    [
      { maxFileBytes: 1 },
      'options.maxFileBytes must be an integer from 2 (the size of an empty message file, []) to 9007199254740991, got 1',
    ],
    [{ maxMessages: 1.5 }, 'options.maxMessages must be an integer from 1 to 4294967295, got 1.5'],
    [{ watch: 'yes' }, 'options.watch must be a boolean, got "yes" (a string)'],
    [{ lockTimeoutMs: null }, 'options.lockTimeoutMs must be an integer from 0 to 4294967295, got null'],
  ])('%j gets one answer, from the core: %s', (options, message) => {
    const dir = h.channelDir()
    expect(() => h.track(FileChannel.frontend(dir, options))).toThrow(
      expect.objectContaining({ code: 'EINVAL', message }),
    )
  })

  test('maxFileBytes: 5e9 is accepted (a large limit, not a type error)', () => {
    const { front } = h.pair({ maxFileBytes: 5e9 })
    expect(front.closed).toBe(false)
  })

  test('a bad timeout is EINVAL naming it, from the same core check, for every method', async () => {
    const { front } = h.pair()
    for (const call of [
      () => front.request('m', null, { timeoutMs: -1 }),
      () => front.waitResponse('x', 'soon'),
      () => front.sendAsync('event', 'e', null, { timeoutMs: NaN }),
    ]) {
      await expect(call()).rejects.toMatchObject({
        code: 'EINVAL',
        message: expect.stringContaining('timeoutMs must be'),
      })
    }
  })
})
