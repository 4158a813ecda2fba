'use strict'

// Every method of FileChannel in both roles, the exact bytes on disk (PROTOCOL.md), payload
// validation, options, and the error objects.

const fs = require('node:fs')
const path = require('node:path')
const {
  FileChannel,
  FRONTEND_OUTBOX,
  BACKEND_OUTBOX,
  UUID_V4,
  useHarness,
  readText,
  readMessages,
  writeMessages,
  diskMessage,
  expectThrows,
  expectRejects,
  renderFile,
  settle,
} = require('./helpers/channels.js')
const { MAX_PAYLOAD_DEPTH } = require('../index.js')

const h = useHarness()

const ROLES = [
  ['frontend', FRONTEND_OUTBOX, BACKEND_OUTBOX],
  ['backend', BACKEND_OUTBOX, FRONTEND_OUTBOX],
]

function open(role, dir, options) {
  return role === 'frontend' ? h.frontend(dir, options) : h.backend(dir, options)
}

function other(role) {
  return role === 'frontend' ? 'backend' : 'frontend'
}

/** The directory listing without acknowledgement files (PROTOCOL-EXTENSIONS.md). */
function protocolFiles(dir) {
  return (
    fs
      .readdirSync(dir)
      // Acknowledgements and our writers' OS-lock files (PROTOCOL-EXTENSIONS.md) are not the protocol's.
      .filter((name) => !name.endsWith('.ack') && !name.endsWith('.flock'))
      .sort()
  )
}

function ackFiles(dir) {
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.ack'))
    .sort()
}

function nested(kind, levels, leaf = null) {
  let value = leaf
  for (let i = 0; i < levels; i++) value = kind === 'list' ? [value] : { k: value }
  return value
}

describe('opening a channel', () => {
  test.each(ROLES)('%s() creates the directory recursively, .channel_info and both files as []', (role) => {
    const base = h.tmpDir()
    const dir = path.join(base, 'a', 'b', 'c')
    const before = Date.now()
    const channel = open(role, dir)
    const after = Date.now()

    expect(fs.statSync(dir).isDirectory()).toBe(true)
    expect(protocolFiles(dir)).toEqual(['.channel_info', BACKEND_OUTBOX, FRONTEND_OUTBOX])
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
    expect(readText(dir, BACKEND_OUTBOX)).toBe('[]')

    const info = readText(dir, '.channel_info')
    const match = /^\{\n {2}"created": (\d+),\n {2}"protocol": "file-ipc",\n {2}"version": "1\.0"\n\}$/.exec(info)
    expect(match).not.toBeNull()
    const created = Number(match[1])
    expect(created).toBeGreaterThanOrEqual(before)
    expect(created).toBeLessThanOrEqual(after)
    expect(Object.keys(JSON.parse(info))).toEqual(['created', 'protocol', 'version'])

    expect(channel.dir).toBe(dir)
    expect(channel.role).toBe(role)
    expect(channel.closed).toBe(false)
    expect(channel.pendingWaits).toBe(0)
  })

  // Permission bits are Unix; on Windows a channel is private by its ACL (SECURITY.md), which the
  // core's own Windows tests check.
  if (process.platform !== 'win32') {
    test('created files are private by default (0o600, directory 0o700)', () => {
      const dir = h.channelDir()
      open('frontend', dir)
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700)
      for (const name of ['.channel_info', FRONTEND_OUTBOX, BACKEND_OUTBOX]) {
        expect(fs.statSync(path.join(dir, name)).mode & 0o777).toBe(0o600)
      }
    })
  }

  test.each(ROLES)(
    '%s() as an acknowledging reader adds exactly one <inbox stem>.<32 hex>.ack, removed by close()',
    (role, _, inbox) => {
      const dir = h.channelDir()
      const channel = open(role, dir)
      const stem = inbox.replace(/\.json$/, '')
      const acks = ackFiles(dir)
      expect(acks).toHaveLength(1)
      expect(acks[0]).toMatch(new RegExp(`^${stem}\\.[0-9a-f]{32}\\.ack$`))
      const ack = JSON.parse(readText(dir, acks[0]))
      expect(ack.last_id).toBeNull()
      expect(ack.pid).toBe(process.pid)
      channel.close()
      expect(ackFiles(dir)).toEqual([])
      // acknowledge: false writes nothing but the protocol files.
      open(role, dir, { acknowledge: false })
      expect(fs.readdirSync(dir).sort()).toEqual(['.channel_info', BACKEND_OUTBOX, FRONTEND_OUTBOX])
    },
  )

  test.each(ROLES)('%s() on an existing channel keeps its files and messages', (role) => {
    const dir = h.channelDir()
    const first = open(other(role), dir)
    first.sendEvent('kept', { n: 1 })
    const info = readText(dir, '.channel_info')
    const f2b = readText(dir, FRONTEND_OUTBOX)
    const b2f = readText(dir, BACKEND_OUTBOX)

    const second = open(role, dir)
    expect(readText(dir, '.channel_info')).toBe(info)
    expect(readText(dir, FRONTEND_OUTBOX)).toBe(f2b)
    expect(readText(dir, BACKEND_OUTBOX)).toBe(b2f)
    // A newly opened reader first sees what the file already holds.
    const got = second.recv()
    expect(got.map((m) => [m.type, m.method, m.payload])).toEqual([['event', 'kept', { n: 1 }]])
  })

  test('opening a directory that already exists but is empty creates only the protocol files', () => {
    const dir = h.tmpDir()
    open('backend', dir, { acknowledge: false })
    expect(fs.readdirSync(dir).sort()).toEqual(['.channel_info', BACKEND_OUTBOX, FRONTEND_OUTBOX])
  })

  test('a missing message file is re-created as [] while the other one is kept', () => {
    const dir = h.channelDir()
    const first = open('frontend', dir)
    first.sendEvent('x')
    const f2b = readText(dir, FRONTEND_OUTBOX)
    first.close()
    fs.unlinkSync(path.join(dir, BACKEND_OUTBOX))
    open('backend', dir)
    expect(readText(dir, BACKEND_OUTBOX)).toBe('[]')
    expect(readText(dir, FRONTEND_OUTBOX)).toBe(f2b)
  })

  test('dir must be a non-empty string: EINVAL naming the argument', () => {
    expectThrows(() => FileChannel.frontend(''), 'EINVAL', 'dir')
    expectThrows(() => FileChannel.backend(42), 'EINVAL', 'dir')
    expectThrows(() => FileChannel.frontend(undefined), 'EINVAL', 'dir')
  })
})

describe('sending: exact bytes on disk', () => {
  test.each(ROLES)('%s sendRequest returns a fresh v4 UUID and writes only its outbox', (role, outbox, inbox) => {
    const dir = h.channelDir()
    const channel = open(role, dir)
    const ids = new Set()
    for (let i = 0; i < 30; i++) {
      const id = channel.sendRequest('m', i)
      expect(id).toMatch(UUID_V4)
      ids.add(id)
    }
    expect(ids.size).toBe(30)
    expect(readMessages(dir, outbox).map((m) => m.id)).toEqual([...ids])
    expect(readText(dir, inbox)).toBe('[]')
  })

  test('a request with payload {b:"x", a:1} is exactly the 190 bytes of PROTOCOL.md', () => {
    const dir = h.channelDir()
    const front = open('frontend', dir)
    const before = Date.now()
    const id = front.sendRequest('ping', { b: 'x', a: 1 })
    const after = Date.now()
    const text = readText(dir, FRONTEND_OUTBOX)
    const timestamp = Number(/"timestamp": (\d+),/.exec(text)[1])
    expect(timestamp).toBeGreaterThanOrEqual(before)
    expect(timestamp).toBeLessThanOrEqual(after)
    expect(text).toBe(
      '[\n' +
        '  {\n' +
        `    "id": "${id}",\n` +
        `    "timestamp": ${timestamp},\n` +
        '    "type": "request",\n' +
        '    "method": "ping",\n' +
        '    "payload": {\n' +
        '      "a": 1,\n' +
        '      "b": "x"\n' +
        '    }\n' +
        '  }\n' +
        ']',
    )
    expect(Buffer.byteLength(text)).toBe(190)
  })

  test('sendResponse writes reply_to on disk; the reader sees replyTo (and no reply_to)', () => {
    const { dir, front, back } = h.pair()
    const requestId = front.sendRequest('get')
    back.sendResponse(requestId, { ok: true, list: [1, 'two'] })
    const text = readText(dir, BACKEND_OUTBOX)
    const [onDisk] = JSON.parse(text)
    expect(text).toBe(
      '[\n' +
        '  {\n' +
        `    "id": "${onDisk.id}",\n` +
        `    "timestamp": ${onDisk.timestamp},\n` +
        '    "type": "response",\n' +
        `    "reply_to": "${requestId}",\n` +
        '    "payload": {\n' +
        '      "list": [\n' +
        '        1,\n' +
        '        "two"\n' +
        '      ],\n' +
        '      "ok": true\n' +
        '    }\n' +
        '  }\n' +
        ']',
    )
    expect(onDisk.id).toMatch(UUID_V4)
    const [message] = front.recv()
    expect(message).toEqual({
      id: onDisk.id,
      timestamp: onDisk.timestamp,
      type: 'response',
      replyTo: requestId,
      payload: { ok: true, list: [1, 'two'] },
    })
    expect(message).not.toHaveProperty('reply_to')
    expect(message).not.toHaveProperty('method')
    expect(message).not.toHaveProperty('error')
  })

  test('sendError writes payload null then error (string or Error message)', () => {
    const { dir, front, back } = h.pair()
    const requestId = front.sendRequest('get')
    back.sendError(requestId, 'it broke: "quoted"\nline 2')
    back.sendError(requestId, new TypeError('from an Error'))
    const onDisk = readMessages(dir, BACKEND_OUTBOX)
    const text = readText(dir, BACKEND_OUTBOX)
    expect(text).toBe(
      '[\n' +
        '  {\n' +
        `    "id": "${onDisk[0].id}",\n` +
        `    "timestamp": ${onDisk[0].timestamp},\n` +
        '    "type": "response",\n' +
        `    "reply_to": "${requestId}",\n` +
        '    "payload": null,\n' +
        '    "error": "it broke: \\"quoted\\"\\nline 2"\n' +
        '  },\n' +
        '  {\n' +
        `    "id": "${onDisk[1].id}",\n` +
        `    "timestamp": ${onDisk[1].timestamp},\n` +
        '    "type": "response",\n' +
        `    "reply_to": "${requestId}",\n` +
        '    "payload": null,\n' +
        '    "error": "from an Error"\n' +
        '  }\n' +
        ']',
    )
    const got = front.recv()
    expect(got.map((m) => [m.replyTo, m.payload, m.error])).toEqual([
      [requestId, null, 'it broke: "quoted"\nline 2'],
      [requestId, null, 'from an Error'],
    ])
  })

  test('method names are written raw (non-ASCII, emoji) and escaped only where JSON requires', () => {
    const { dir, front, back } = h.pair()
    front.sendEvent('héllo😀/\u2028', 1)
    front.sendRequest('quote"back\\slash\ttab', 2)
    const text = readText(dir, FRONTEND_OUTBOX)
    expect(text).toContain('    "method": "héllo😀/\u2028",\n')
    expect(text).toContain('    "method": "quote\\"back\\\\slash\\ttab",\n')
    expect(back.recv().map((m) => m.method)).toEqual(['héllo😀/\u2028', 'quote"back\\slash\ttab'])
  })

  test('sendEvent writes method and payload; no payload is null', () => {
    const { dir, front, back } = h.pair()
    back.sendEvent('progress', { done: 3, total: 10 })
    back.sendEvent('tick')
    const onDisk = readMessages(dir, BACKEND_OUTBOX)
    expect(readText(dir, BACKEND_OUTBOX)).toBe(
      '[\n' +
        '  {\n' +
        `    "id": "${onDisk[0].id}",\n` +
        `    "timestamp": ${onDisk[0].timestamp},\n` +
        '    "type": "event",\n' +
        '    "method": "progress",\n' +
        '    "payload": {\n' +
        '      "done": 3,\n' +
        '      "total": 10\n' +
        '    }\n' +
        '  },\n' +
        '  {\n' +
        `    "id": "${onDisk[1].id}",\n` +
        `    "timestamp": ${onDisk[1].timestamp},\n` +
        '    "type": "event",\n' +
        '    "method": "tick",\n' +
        '    "payload": null\n' +
        '  }\n' +
        ']',
    )
    expect(front.recv().map((m) => [m.type, m.method, m.payload])).toEqual([
      ['event', 'progress', { done: 3, total: 10 }],
      ['event', 'tick', null],
    ])
  })

  test('payload keys are sorted by UTF-8 byte order, strings escaped as the reference does', () => {
    const { dir, front, back } = h.pair()
    const payload = {
      '😀': 1,
      '！': 2,
      é: 3,
      b: 4,
      a: { z: [], y: {}, x: [{ d: 1, c: 2 }] },
      B: 5,
      '': 6,
      10: 7,
      2: 8,
      text: 'ctl \u0001\u001f\b\t\n\f\r "q" \\ / \u007f \u2028 é 😀',
    }
    front.sendEvent('sorted', payload)
    const [onDisk] = readMessages(dir, FRONTEND_OUTBOX)
    const text = readText(dir, FRONTEND_OUTBOX)
    expect(text).toBe(renderFile([{ ...onDisk, payload }]))
    const keys = [...text.matchAll(/^ {6}"((?:[^"\\]|\\.)*)":/gm)].map((m) => m[1])
    expect(keys).toEqual(['', '10', '2', 'B', 'a', 'b', 'text', 'é', '！', '😀'])
    expect(text).toContain('"ctl \\u0001\\u001f\\b\\t\\n\\f\\r \\"q\\" \\\\ / \u007f \u2028 é 😀"')
    expect(back.recv()[0].payload).toEqual(payload)
  })

  test('numbers are written as serde_json writes them', () => {
    const { dir, front } = h.pair()
    front.sendEvent('n', [0.1, 1e308, 1e-7, 2.5e-5, 1e21, 5e-324, 123.456, -5, 2 ** 53 - 1])
    const text = readText(dir, FRONTEND_OUTBOX)
    const numbers = /"payload": \[\n([\s\S]*?)\n {4}\]/
      .exec(text)[1]
      .split(',\n')
      .map((s) => s.trim())
    expect(numbers).toEqual([
      '0.1',
      '1e+308',
      '1e-7',
      '0.000025',
      '1e+21',
      '5e-324',
      '123.456',
      '-5',
      '9007199254740991',
    ])
  })

  test('several messages form one pretty-printed array, oldest first', () => {
    const { dir, front, back } = h.pair()
    const id = front.sendRequest('a', [1, 2])
    front.sendEvent('b', 'two')
    front.sendResponse(id, { self: true })
    const received = back.recv()
    expect(received.map((m) => m.type)).toEqual(['request', 'event', 'response'])
    expect(readText(dir, FRONTEND_OUTBOX)).toBe(renderFile(received))
  })
})

describe('receiving', () => {
  test.each(ROLES)('%s recv() returns each new message exactly once, in order', (role) => {
    const dir = h.channelDir()
    const reader = open(role, dir)
    const writer = open(other(role), dir)
    expect(reader.recv()).toEqual([])
    const sent = []
    for (let i = 0; i < 5; i++) {
      writer.sendEvent('e', i)
      sent.push(i)
    }
    const id = writer.sendRequest('r', 'req')
    writer.sendResponse('some-request', 'res')
    const first = reader.recv()
    expect(first.map((m) => m.payload)).toEqual([...sent, 'req', 'res'])
    expect(first[5].id).toBe(id)
    expect(reader.recv()).toEqual([])
    writer.sendEvent('e', 5)
    writer.sendEvent('e', 6)
    expect(reader.recv().map((m) => m.payload)).toEqual([5, 6])
    expect(reader.recv()).toEqual([])
    // Our own outbox is never read back.
    reader.sendEvent('mine', 1)
    expect(reader.recv()).toEqual([])
  })

  test.each(ROLES)('%s recvOne() returns one message at a time, then null', (role) => {
    const dir = h.channelDir()
    const reader = open(role, dir)
    const writer = open(other(role), dir)
    expect(reader.recvOne()).toBeNull()
    writer.sendEvent('e', 'a')
    writer.sendEvent('e', 'b')
    writer.sendEvent('e', 'c')
    expect(reader.recvOne().payload).toBe('a')
    expect(reader.recvOne().payload).toBe('b')
    expect(reader.recv().map((m) => m.payload)).toEqual(['c'])
    expect(reader.recvOne()).toBeNull()
    writer.sendEvent('e', 'd')
    expect(reader.recvOne().payload).toBe('d')
    expect(reader.recvOne()).toBeNull()
  })

  test.each(ROLES)('%s clear() empties both files; later messages still flow, old ones never return', (role) => {
    const dir = h.channelDir()
    const channel = open(role, dir)
    const peer = open(other(role), dir)
    channel.sendEvent('out', 1)
    peer.sendEvent('in', 1)
    peer.sendEvent('in', 2)
    channel.clear()
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
    expect(readText(dir, BACKEND_OUTBOX)).toBe('[]')
    expect(channel.recv()).toEqual([])
    expect(peer.recv()).toEqual([])
    peer.sendEvent('in', 3)
    channel.sendEvent('out', 2)
    expect(channel.recv().map((m) => m.payload)).toEqual([3])
    expect(peer.recv().map((m) => [m.method, m.payload])).toEqual([['out', 2]])
    expect(protocolFiles(dir)).toEqual(['.channel_info', BACKEND_OUTBOX, FRONTEND_OUTBOX])
  })

  test('clear() also drops messages already read into the recv() queue', () => {
    const { front, back } = h.pair()
    back.sendEvent('e', 1)
    back.sendEvent('e', 2)
    expect(front.recvOne().payload).toBe(1) // message 2 is now queued in memory
    front.clear()
    expect(front.recv()).toEqual([])
  })

  test('messages written by hand with null optional fields and unknown fields are read', () => {
    const { dir, front } = h.pair()
    const message = diskMessage({ type: 'response', reply_to: 'abc', method: null, error: null, extra: { x: 1 } })
    writeMessages(dir, BACKEND_OUTBOX, [message])
    const [got] = front.recv()
    expect(got).toEqual({
      id: message.id,
      timestamp: message.timestamp,
      type: 'response',
      replyTo: 'abc',
      payload: null,
    })
  })
})

describe('close()', () => {
  test.each(ROLES)('%s: later calls throw ECLOSED; close() is idempotent', async (role) => {
    const dir = h.channelDir()
    const channel = open(role, dir)
    channel.close()
    expect(channel.closed).toBe(true)
    expect(() => channel.close()).not.toThrow()
    expect(channel.closed).toBe(true)
    expectThrows(() => channel.sendRequest('m', 1), 'ECLOSED', 'closed')
    expectThrows(() => channel.sendResponse('id', 1), 'ECLOSED')
    expectThrows(() => channel.sendError('id', 'x'), 'ECLOSED')
    expectThrows(() => channel.sendEvent('e', 1), 'ECLOSED')
    expectThrows(() => channel.recv(), 'ECLOSED')
    expectThrows(() => channel.recvOne(), 'ECLOSED')
    expectThrows(() => channel.clear(), 'ECLOSED')
    await expectRejects(channel.request('m', 1, { timeoutMs: 1000 }), 'ECLOSED')
    // waitResponse may throw synchronously or return a rejected promise: either is ECLOSED.
    await expectRejects(
      Promise.resolve().then(() => channel.waitResponse('id', 1000)),
      'ECLOSED',
    )
    // Nothing was written after close.
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
    expect(readText(dir, BACKEND_OUTBOX)).toBe('[]')
  })

  test('pending waitResponse and request promises reject with ECLOSED', async () => {
    const { front } = h.pair()
    const id = front.sendRequest('never')
    const pending = [
      front.waitResponse(id, 20000),
      front.waitResponse('other', 20000),
      front.request('never2', null, { timeoutMs: 20000 }),
    ].map(settle)
    expect(front.pendingWaits).toBe(3)
    front.close()
    const results = await Promise.all(pending)
    expect(results.map((r) => r.error && r.error.code)).toEqual(['ECLOSED', 'ECLOSED', 'ECLOSED'])
    expect(front.pendingWaits).toBe(0)
    front.close()
  })

  test('closing one end leaves the other end working', () => {
    const { front, back } = h.pair()
    back.close()
    front.sendEvent('still', 1)
    expect(front.closed).toBe(false)
    const reopened = h.backend(front.dir)
    expect(reopened.recv().map((m) => m.payload)).toEqual([1])
  })
})

describe('payload validation', () => {
  const bad = [
    ['a function', () => ({ list: [1, function named() {}] }), 'params.list[1]', /function/],
    ['a symbol', () => ({ a: { s: Symbol('x') } }), 'params.a.s', /Symbol\(x\)/],
    ['a BigInt', () => ({ big: 10n }), 'params.big', /BigInt/],
    ['NaN', () => ({ n: NaN }), 'params.n', /NaN/],
    ['Infinity', () => [1, 2, Infinity], 'params[2]', /Infinity/],
    ['-Infinity', () => ({ 'odd key': -Infinity }), 'params["odd key"]', /Infinity/],
    ['a top-level BigInt', () => 5n, 'params', /BigInt/],
    ['a top-level function', () => () => 1, 'params', /function/],
  ]

  test.each(bad)('sendRequest refuses %s with EINVAL and its path; nothing is written', (_, make, where, what) => {
    const { dir, front } = h.pair()
    const error = expectThrows(() => front.sendRequest('m', make()), 'EINVAL', where)
    expect(error.message).toMatch(what)
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
    expect(front.pendingWaits).toBe(0)
  })

  test('every payload argument is checked and named by its argument', async () => {
    const { dir, front, back } = h.pair()
    expectThrows(() => back.sendEvent('e', { f: () => 1 }), 'EINVAL', 'payload.f')
    expectThrows(() => back.sendResponse('id', [NaN]), 'EINVAL', 'result[0]')
    await expectRejects(front.request('m', { x: 1n }, { timeoutMs: 1000 }), 'EINVAL', 'params.x')
    expect(front.pendingWaits).toBe(0)
    expect(readText(dir, BACKEND_OUTBOX)).toBe('[]')
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
  })

  test('cycles are refused with the path where the cycle closes', () => {
    const { front } = h.pair()
    const object = { x: { y: {} } }
    object.x.y.back = object
    expectThrows(() => front.sendEvent('e', object), 'EINVAL', 'payload.x.y.back', 'circular')
    const list = [1]
    list.push([list])
    expectThrows(() => front.sendEvent('e', list), 'EINVAL', 'payload[1][0]', 'circular')
  })

  test('a value shared twice without a cycle is not a cycle', () => {
    const { front, back } = h.pair()
    const shared = { v: 1 }
    front.sendEvent('e', { a: shared, b: shared, list: [shared, shared] })
    expect(back.recv()[0].payload).toEqual({ a: { v: 1 }, b: { v: 1 }, list: [{ v: 1 }, { v: 1 }] })
  })

  test.each(['list', 'dict'])('%s nesting of exactly 125 levels is sent and read back; 126 is EINVAL', (kind) => {
    expect(MAX_PAYLOAD_DEPTH).toBe(125)
    const { dir, front, back } = h.pair()
    const ok = nested(kind, 125, 'leaf')
    front.sendEvent('deep', ok)
    expect(back.recv()[0].payload).toEqual(ok)
    const before = readText(dir, FRONTEND_OUTBOX)
    expectThrows(() => front.sendEvent('deeper', nested(kind, 126)), 'EINVAL', '125')
    expectThrows(() => front.sendRequest('deeper', nested(kind, 126, [])), 'EINVAL', '125')
    // 30,000 levels must be refused too, never a crash.
    expectThrows(() => front.sendEvent('deepest', nested(kind, 30000)), 'EINVAL', '125')
    expect(readText(dir, FRONTEND_OUTBOX)).toBe(before)
  })

  test('undefined at the top level is null on disk; inside, JSON.stringify rules apply', () => {
    const { dir, front, back } = h.pair()
    const id = front.sendRequest('m', undefined)
    back.sendResponse(id, undefined)
    back.sendEvent('e', { keep: 1, drop: undefined, list: [undefined, 2] })
    expect(readMessages(dir, FRONTEND_OUTBOX)[0].payload).toBeNull()
    expect(readText(dir, FRONTEND_OUTBOX)).toContain('    "payload": null\n')
    const [response, event] = readMessages(dir, BACKEND_OUTBOX)
    expect(response.payload).toBeNull()
    expect(readText(dir, BACKEND_OUTBOX)).toContain('"payload": null')
    expect(event.payload).toEqual({ keep: 1, list: [null, 2] })
    expect(front.recv().map((m) => m.payload)).toEqual([null, { keep: 1, list: [null, 2] }])
  })

  test('toJSON is honoured (Date) and checked', () => {
    const { front, back } = h.pair()
    front.sendEvent('e', { when: new Date(0) })
    expect(back.recv()[0].payload).toEqual({ when: '1970-01-01T00:00:00.000Z' })
    expectThrows(() => front.sendEvent('e', { bad: { toJSON: () => NaN } }), 'EINVAL', 'payload.bad')
  })

  test('a lone surrogate (not representable in UTF-8) is refused, not written', () => {
    const { dir, front } = h.pair()
    expectThrows(() => front.sendEvent('e', { s: 'x\ud800y' }), 'EINVAL', 'payload')
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
  })

  test('a lone surrogate in a method, event name, request id or error text is refused too, not written as U+FFFD', async () => {
    const { dir, front } = h.pair()
    expectThrows(() => front.sendRequest('m\ud800'), 'EINVAL', 'method')
    expectThrows(() => front.sendEvent('\udc00e'), 'EINVAL', 'name')
    expectThrows(() => front.sendResponse('id\ud800', 1), 'EINVAL', 'requestId')
    expectThrows(() => front.sendError('id', 'broken \ud800 text'), 'EINVAL', 'error message')
    expectThrows(() => front.sendError('id', new Error('thrown \udfff')), 'EINVAL', 'error message')
    await expect(front.request('m\ud800')).rejects.toMatchObject({ code: 'EINVAL' })
    await expect(front.promises.sendEvent('e\ud800')).rejects.toMatchObject({ code: 'EINVAL' })
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
  })

  test.each([
    ['sendRequest', (c) => c.sendRequest(5), 'method'],
    ['sendRequest', (c) => c.sendRequest(null, {}), 'method'],
    ['sendEvent', (c) => c.sendEvent(undefined), 'name'],
    ['sendEvent', (c) => c.sendEvent({ name: 'x' }), 'name'],
    ['sendResponse', (c) => c.sendResponse(1, 'x'), 'requestId'],
    ['sendError', (c) => c.sendError(null, 'x'), 'requestId'],
    ['handle', (c) => c.handle(1, () => 1), 'method'],
    ['handle', (c) => c.handle('m', 'not a function'), 'handler'],
  ])('%s with a non-string name/id or bad handler throws EINVAL naming the argument', (_, call, argument) => {
    const { dir, front } = h.pair()
    const error = expectThrows(() => call(front), 'EINVAL', argument)
    expect(error).toBeInstanceOf(Error)
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
  })

  test('waitResponse() with a non-string id rejects EINVAL naming requestId (promise methods never throw)', async () => {
    const { front } = h.pair()
    let thrown
    let pending
    try {
      pending = front.waitResponse(7, 100)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeUndefined()
    await expectRejects(pending, 'EINVAL', 'requestId')
  })

  test('request() with a non-string method rejects (or throws) EINVAL and writes nothing', async () => {
    const { dir, front } = h.pair()
    await expectRejects(
      Promise.resolve().then(() => front.request(42, 1)),
      'EINVAL',
      'method',
    )
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
  })

  test.each([
    ['negative', -1],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['string', '100'],
  ])('waitResponse with a %s timeout is EINVAL naming timeoutMs', async (_, timeout) => {
    const { front } = h.pair()
    await expectRejects(
      Promise.resolve().then(() => front.waitResponse('id', timeout)),
      'EINVAL',
      'timeoutMs',
    )
    expect(front.pendingWaits).toBe(0)
  })
})

describe('options', () => {
  test('maxMessages 100 (the default): 150 sends leave the newest 100, in order (no acknowledging reader)', () => {
    const dir = h.channelDir()
    const front = h.frontend(dir)
    h.backend(dir, { acknowledge: false })
    for (let i = 0; i < 150; i++) front.sendEvent('n', i)
    const onDisk = readMessages(dir, FRONTEND_OUTBOX)
    expect(onDisk.map((m) => m.payload)).toEqual(Array.from({ length: 100 }, (_, i) => i + 50))
  })

  test('an explicit maxMessages caps the outbox', () => {
    const dir = h.channelDir()
    const front = h.frontend(dir, { maxMessages: 7, acknowledge: false })
    for (let i = 0; i < 20; i++) front.sendEvent('n', i)
    expect(readMessages(dir, FRONTEND_OUTBOX).map((m) => m.payload)).toEqual([13, 14, 15, 16, 17, 18, 19])
    const front100 = h.frontend(dir, { maxMessages: 100, acknowledge: false })
    front100.sendEvent('n', 20)
    expect(readMessages(dir, FRONTEND_OUTBOX).map((m) => m.payload)).toEqual([13, 14, 15, 16, 17, 18, 19, 20])
  })

  test.each([
    [{ maxMessages: 0 }, 'maxMessages'],
    [{ maxMessages: -1 }, 'maxMessages'],
    [{ maxMessages: 'x' }, 'maxMessages'],
    [{ lockTimeoutMs: -5 }, 'lockTimeoutMs'],
    [{ pollIntervalMs: 0 }, 'pollIntervalMs'],
    [{ maxFileBytes: NaN }, 'maxFileBytes'],
    [{ mode: 0o1777 }, 'mode'],
    [{ watch: 'yes' }, 'watch'],
  ])('invalid option %j is EINVAL naming %s, and nothing is created', (options, name) => {
    const dir = h.channelDir()
    expectThrows(() => h.track(FileChannel.frontend(dir, options)), 'EINVAL', name)
    expect(fs.existsSync(dir)).toBe(false)
  })

  test('options that are not an object are EINVAL', () => {
    const dir = h.channelDir()
    expectThrows(() => h.track(FileChannel.backend(dir, 5)), 'EINVAL', 'options')
    expect(fs.existsSync(dir)).toBe(false)
  })
})

describe('error objects', () => {
  test('are Error instances with a string code and a message naming the file', async () => {
    const { dir, front } = h.pair({ lockTimeoutMs: 20 })
    // A live holder (this process): the lock of a process that is gone would be taken over.
    fs.writeFileSync(path.join(dir, 'frontend_to_backend.lock'), `${process.pid}\n`)
    const locked = expectThrows(() => front.sendEvent('e'), 'ELOCKED', path.join(dir, 'frontend_to_backend.lock'))
    expect(typeof locked.stack).toBe('string')
    fs.unlinkSync(path.join(dir, 'frontend_to_backend.lock'))
    const timeout = (await settle(front.waitResponse('nope', 1))).error
    expect(timeout.code).toBe('ETIMEDOUT')
    expect(timeout.message).toContain('nope')
  })

  test('every kind of error is `instanceof Error` in a plain Node process; Symbol.asyncDispose closes', () => {
    // jest runs tests in a separate realm, so instanceof is checked where users run the code.
    const dir = h.channelDir()
    const script = `
      const { FileChannel } = require(${JSON.stringify(require.resolve('../index.js'))})
      const fs = require('fs'), path = require('path')
      const dir = ${JSON.stringify(dir)}
      const out = {}
      const record = (name, fn) => { try { fn(); out[name] = 'no error' } catch (e) { out[name] = [e instanceof Error, e.code, e.message] } }
      const front = FileChannel.frontend(dir, { lockTimeoutMs: 10 })
      record('EINVAL', () => front.sendEvent('e', { f: () => 1 }))
      record('EINVALoption', () => FileChannel.frontend(dir, { maxMessages: 0 }))
      fs.writeFileSync(path.join(dir, 'frontend_to_backend.lock'), process.pid + String.fromCharCode(10))
      record('ELOCKED', () => front.sendEvent('e'))
      fs.unlinkSync(path.join(dir, 'frontend_to_backend.lock'))
      fs.writeFileSync(path.join(dir, 'backend_to_frontend.json'), 'garbage')
      record('EBADMSG', () => front.recv())
      record('ENOTDIR', () => FileChannel.frontend(path.join(dir, '.channel_info', 'x')))
      Promise.allSettled([front.waitResponse('x', 1), front.request('m', 1, { timeoutMs: 1 })]).then((r) => {
        out.ETIMEDOUT = r.map((x) => [x.reason instanceof Error, x.reason.code])
        front.close()
        record('ECLOSED', () => front.recv())
        const disposable = FileChannel.backend(dir)
        out.asyncDispose = typeof disposable[Symbol.asyncDispose]
        Promise.resolve(disposable[Symbol.asyncDispose] && disposable[Symbol.asyncDispose]()).then(() => {
          out.disposedClosed = disposable.closed
          disposable.close()
          process.stdout.write(JSON.stringify(out))
        })
      })
    `
    const run = require('node:child_process').spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      timeout: 20000,
    })
    expect(run.stderr).toBe('')
    const out = JSON.parse(run.stdout)
    expect(out.EINVAL.slice(0, 2)).toEqual([true, 'EINVAL'])
    expect(out.EINVALoption.slice(0, 2)).toEqual([true, 'EINVAL'])
    expect(out.ELOCKED.slice(0, 2)).toEqual([true, 'ELOCKED'])
    expect(out.ELOCKED[2]).toMatch(/process \d+/)
    expect(out.EBADMSG.slice(0, 2)).toEqual([true, 'EBADMSG'])
    expect(out.EBADMSG[2]).toContain('backend_to_frontend.json')
    expect(out.ENOTDIR.slice(0, 2)).toEqual([true, 'ENOTDIR'])
    expect(out.ETIMEDOUT).toEqual([
      [true, 'ETIMEDOUT'],
      [true, 'ETIMEDOUT'],
    ])
    expect(out.ECLOSED.slice(0, 2)).toEqual([true, 'ECLOSED'])
    expect(out.asyncDispose).toBe('function')
    expect(out.disposedClosed).toBe(true)
  })
})
