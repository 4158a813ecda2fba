'use strict'

// Interop with the reference peer: the PyPI package ipckit==0.1.12, driven through
// __test__/peer/python_peer.py (and a few inline scripts for numbered payloads). Both directions:
// a Python backend with our frontend, and our backend with a Python frontend.
//
// The peer python comes from $IPCKIT_PEER_PYTHON or .peer-venv (see helpers/python.js). Under
// CI=true a missing peer fails this suite; elsewhere the helper runs scripts/setup-python-peer.sh.

const fs = require('node:fs')
const path = require('node:path')
const { FileChannel } = require('..')
const py = require('./helpers/python')
const { sleep, waitFor, median } = require('../test-support')

const BACKEND_OUTBOX = 'backend_to_frontend.json'
const FRONTEND_OUTBOX = 'frontend_to_backend.json'
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

// Strings that must survive both directions exactly: astral emoji and ZWJ sequences, CJK (and
// astral CJK), every kind of control character, JSON's own metacharacters, the two line
// separators JavaScript once refused in string literals, a BOM, combining marks, RTL text.
const UNICODE = {
  emoji: '😀👍🏽👨‍👩‍👧‍👦🇯🇵',
  cjk: '日本語のテキスト 中文 한국어 𠀀𪚥',
  controls: '\u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u001f\u007f\u0080\u009f',
  metachars: '"\\/\'{}[],:',
  separators: 'a\u2028b\u2029c',
  bom: '\ufeffx',
  combining: 'e\u0301 vs \u00e9',
  rtl: 'שלום مرحبا',
  empty: '',
  // Sorted differently by serde_json (UTF-8 bytes), JavaScript (integer-like keys first) and
  // UTF-16 order ("😀" before "！").
  keys: {
    b: 1,
    a: 2,
    B: 3,
    '': 4,
    é: 5,
    '！': 6,
    '😀': 7,
    10: 8,
    2: 9,
    'a\u2028': 10,
  },
}

// A nested structure with every JSON type at several depths.
const NESTED = {
  z: [{ y: [{ x: [], w: {}, v: 'bottom', u: [[[[null]]]] }], a: 1 }],
  b: [1, 2.5, 's', true, false, null, { deep: { deeper: { deepest: ['end'] } } }],
  matrix: [
    [1, 2],
    [3, 4],
  ],
}

function nestedLists(depth) {
  let value = 'core'
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

// Objects and errors made by the addon come from the main realm, jest's tests run in a vm realm:
// toStrictEqual and toBeInstanceOf would compare prototypes across realms. These check the same
// things without that.

/** Deep equality, and exactly the same own keys (no extra, none undefined-valued). */
function expectExactly(actual, expected) {
  expect(actual).toEqual(expected)
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort())
}

/** A genuine Error (from any realm) with this code. */
function expectError(error, code) {
  expect(Object.prototype.toString.call(error)).toBe('[object Error]')
  expect(error).toEqual(expect.objectContaining({ code }))
}

/**
 * `value` with every BigInt replaced by a marker string. The addon currently hands out BigInt for
 * integers beyond 2**53, and a failing assertion holding a BigInt cannot be reported across jest
 * workers ("Do not know how to serialize a BigInt" fails the whole file): assert on this instead.
 */
function markBigInts(value) {
  if (typeof value === 'bigint') return `BigInt ${value}n`
  if (Array.isArray(value)) return value.map(markBigInts)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, markBigInts(item)]))
  }
  return value
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

/** The JS view of a message that the reference wrote, per the documented mapping. */
function expectedJsMessage(onDisk) {
  const message = {
    id: onDisk.id,
    timestamp: onDisk.timestamp,
    type: onDisk.type,
    payload: onDisk.payload,
  }
  if (onDisk.method != null) message.method = onDisk.method
  if (onDisk.reply_to != null) message.replyTo = onDisk.reply_to
  if (onDisk.error != null) message.error = onDisk.error
  return message
}

// Inline scripts for the reference peer (see PRELUDE in helpers/python.js).

/** Sends ARGS.count events with payload {"src", "i"}; with ARGS.waitGo, only after a stdin line. */
const SEND_NUMBERED = `
channel = getattr(ipckit.FileChannel, ARGS["role"])(ARGS["dir"])
emit({"ready": True})
if ARGS.get("waitGo"):
    sys.stdin.readline()
pause = ARGS.get("sleepMs", 0) / 1000
every = ARGS.get("pauseEvery", 0)
for i in range(ARGS["count"]):
    if every and i and i % every == 0:
        time.sleep(0.02)
    channel.send_event(ARGS["method"], {"src": ARGS["src"], "i": i})
    if pause:
        time.sleep(pause)
emit({"sent": ARGS["count"]})
`

/** One reference recv(), every payload also given with Python's types. */
const TYPED_DUMP = `
channel = getattr(ipckit.FileChannel, ARGS["role"])(ARGS["dir"])
emit({"ready": True})
emit({"messages": [dict(m, typed=typed(m["payload"])) for m in channel.recv()]})
`

async function pyTypedDump(dir, role) {
  const script = await py.runPython(TYPED_DUMP, { dir, role }, 15000, 'typed dump')
  return script.lines.find((l) => l.messages).messages
}

async function sendNumbered(dir, role, method, count, src = 'py', pauseEvery = 0) {
  await py.runPython(SEND_NUMBERED, { dir, role, method, count, src, pauseEvery }, 15000, `send ${count} numbered`)
}

const h = py.usePythonHarness()
const tmpDir = () => h.tmpDir('ipckit-interop-')

function open(role, dir, options) {
  return h.track(FileChannel[role](dir, options))
}

/** Our channel's 'error' events, collected so that a problem fails the test instead of the process. */
function collectErrors(channel) {
  const errors = []
  channel.on('error', (error) => errors.push(error))
  return errors
}

function collect(channel, type) {
  const got = []
  channel.on(type, (message) => got.push(message))
  return got
}

test('the reference peer is ipckit 0.1.12', async () => {
  const script = await py.runPython(
    'from importlib.metadata import version\nemit({"version": version("ipckit"), "module": ipckit.__version__})',
  )
  expect(script.lines).toEqual([{ version: '0.1.12', module: '0.1.12' }])
})

describe('Python backend, our frontend', () => {
  async function pythonBackend(dir, options = {}) {
    return py.startPeer('serve', { dir, role: 'backend', pollMs: 1, ...options }).ready()
  }

  test('requests: echo and add, each response matched to its own request', async () => {
    const dir = tmpDir()
    await pythonBackend(dir)
    const front = open('frontend', dir)
    const errors = collectErrors(front)

    await expect(front.request('add', { a: 2, b: 40 }, { timeoutMs: 5000 })).resolves.toBe(42)
    await expect(front.request('echo', NESTED, { timeoutMs: 5000 })).resolves.toEqual(NESTED)
    await expect(front.request('echo', null, { timeoutMs: 5000 })).resolves.toBeNull()
    await expect(front.request('echo', undefined, { timeoutMs: 5000 })).resolves.toBeNull()
    await expect(front.request('echo', [], { timeoutMs: 5000 })).resolves.toEqual([])

    // Twenty in flight at once, each answered with its own sum.
    const sums = await Promise.all(
      Array.from({ length: 20 }, (_, i) => front.request('add', { a: i, b: 1000 * i }, { timeoutMs: 5000 })),
    )
    expect(sums).toEqual(Array.from({ length: 20 }, (_, i) => 1001 * i))

    // waitResponse gives the whole message.
    const id = front.sendRequest('add', { a: 1.5, b: 2.25 })
    expect(id).toMatch(UUID_V4)
    const response = await front.waitResponse(id, 5000)
    expectExactly(response, {
      id: expect.stringMatching(UUID_V4),
      timestamp: expect.any(Number),
      type: 'response',
      replyTo: id,
      payload: 3.75,
    })
    expect(errors).toEqual([])
  })

  test('error responses: request() rejects with EREMOTE and the Python text; waitResponse resolves with .error', async () => {
    const dir = tmpDir()
    await pythonBackend(dir)
    const front = open('frontend', dir)

    const failure = await front.request('fail', 'boom', { timeoutMs: 5000 }).catch((e) => e)
    expectError(failure, 'EREMOTE')
    expect(failure.message).toBe('failed: boom')

    // Unicode in the error text, and in a method name the backend does not know.
    const text = '💥 ünï\u2028日本 "q"\n'
    await expect(front.request('fail', text, { timeoutMs: 5000 })).rejects.toMatchObject({
      code: 'EREMOTE',
      message: `failed: ${text}`,
    })
    await expect(front.request('nö 😀 method', {}, { timeoutMs: 5000 })).rejects.toMatchObject({
      code: 'EREMOTE',
      message: 'unknown method: nö 😀 method',
    })

    const id = front.sendRequest('fail', 'x')
    const response = await front.waitResponse(id, 5000)
    expectExactly(response, {
      id: expect.stringMatching(UUID_V4),
      timestamp: expect.any(Number),
      type: 'response',
      replyTo: id,
      payload: null,
      error: 'failed: x',
    })
  })

  test('events from Python reach our listener and recv(), exactly, in order', async () => {
    const dir = tmpDir()
    const front = open('frontend', dir)

    // recv(): no listener yet.
    await py.runPeer('send', {
      dir,
      role: 'backend',
      kind: 'event',
      method: 'progress ✓',
      params: UNICODE,
      count: 3,
    })
    const received = front.recv()
    expect(received).toHaveLength(3)
    expect(new Set(received.map((m) => m.id)).size).toBe(3)
    for (const message of received) {
      expectExactly(message, {
        id: expect.stringMatching(UUID_V4),
        timestamp: expect.any(Number),
        type: 'event',
        method: 'progress ✓',
        payload: UNICODE,
      })
    }
    expect(front.recv()).toEqual([])

    // A listener.
    const events = collect(front, 'event')
    await py.runPeer('send', {
      dir,
      role: 'backend',
      kind: 'event',
      method: 'n',
      params: null,
      count: 2,
    })
    await sendNumbered(dir, 'backend', 'numbered', 5)
    await waitFor(() => events.length >= 7, { timeoutMs: 5000, what: '7 events' })
    await sleep(50)
    expect(events.map((m) => [m.method, m.payload])).toEqual([
      ['n', null],
      ['n', null],
      ...[0, 1, 2, 3, 4].map((i) => ['numbered', { src: 'py', i }]),
    ])
    expect(front.recv()).toEqual([])
  })

  test('events from us reach the Python backend, exactly, in order', async () => {
    const dir = tmpDir()
    const front = open('frontend', dir)
    const sent = [UNICODE, NESTED, null, 0, 'last']
    sent.forEach((payload, i) => front.sendEvent(`ev${i} ✓`, payload))
    const peer = await py.runPeer('recv', {
      dir,
      role: 'backend',
      expect: 5,
      timeoutMs: 3000,
    })
    const got = peer.lines.filter((l) => l.received).map((l) => l.received)
    expect(got.map((m) => [m.type, m.method, m.payload])).toEqual(sent.map((p, i) => ['event', `ev${i} ✓`, p]))
    expect(peer.lines.at(-1)).toMatchObject({ done: 5 })
  })

  test('unicode round-trips exactly through a Python echo, in payloads and method names', async () => {
    const dir = tmpDir()
    await pythonBackend(dir)
    const front = open('frontend', dir)
    const echoed = await front.request('echo', UNICODE, { timeoutMs: 5000 })
    expect(echoed).toEqual(UNICODE)
    for (const [key, value] of Object.entries(UNICODE)) {
      if (typeof value === 'string') expect([key, echoed[key]]).toEqual([key, value])
    }
    expect(Object.keys(echoed.keys).sort()).toEqual(Object.keys(UNICODE.keys).sort())
    // Every string value on its own, as the whole payload.
    for (const value of Object.values(UNICODE).filter((v) => typeof v === 'string')) {
      await expect(front.request('echo', value, { timeoutMs: 5000 })).resolves.toBe(value)
    }
  })

  test('numbers from Python: floats and safe integers exact; 2**53+1 becomes the nearest JS number', async () => {
    const dir = tmpDir()
    const front = open('frontend', dir)
    // The text Python parses; its ints are exact Python ints and the reference writes them exactly.
    const text =
      '{"big": 9007199254740993, "bigneg": -9007199254740993, "two53": 9007199254740992,' +
      ' "max_safe": 9007199254740991, "min_safe": -9007199254740991, "u64max": 18446744073709551615,' +
      ' "i64min": -9223372036854775808, "small": [0, -1, 42, 1700000000000],' +
      ' "floats": [0.1, 1e-7, 123.456, -0.0, 1.5, -2.5, 1e308, 5e-324, 2.5e-05, 1e21, 1e15, 1.0, 0.0]}'
    await py.runPeer('send', {
      dir,
      role: 'backend',
      kind: 'event',
      method: 'nums',
      paramsJson: text,
    })
    const [message] = front.recv()
    const raw = message.payload
    const payload = markBigInts(raw)

    // Within the safe range: exact.
    expect(payload.max_safe).toBe(Number.MAX_SAFE_INTEGER)
    expect(payload.min_safe).toBe(Number.MIN_SAFE_INTEGER)
    expect(payload.small).toEqual([0, -1, 42, 1700000000000])
    // Floats: exactly the values the text denotes, -0.0 keeps its sign.
    expect(payload.floats).toEqual([0.1, 1e-7, 123.456, -0, 1.5, -2.5, 1e308, 5e-324, 2.5e-5, 1e21, 1e15, 1, 0])
    expect(Object.is(payload.floats[3], -0)).toBe(true)
    expect(Object.is(payload.floats[12], 0)).toBe(true)

    // Beyond 2**53 (documented: "Integers beyond 2^53 lose precision, as with JSON.parse"):
    // 2**53+1 is not a double; it arrives as the nearest one, 2**53. The precision is lost, and
    // the value stays a plain number that JSON.stringify and sendResponse accept.
    for (const key of ['big', 'bigneg', 'two53', 'u64max', 'i64min']) {
      expect([key, typeof raw[key]]).toEqual([key, 'number'])
    }
    expect(payload.big).toBe(9007199254740992)
    expect(payload.big).toBe(2 ** 53)
    expect(payload.bigneg).toBe(-(2 ** 53))
    expect(payload.two53).toBe(2 ** 53)
    expect(payload.u64max).toBe(2 ** 64)
    expect(payload.i64min).toBe(-(2 ** 63))
    // The whole payload equals JSON.parse of the same text.
    expect(payload).toEqual(JSON.parse(text))
  })

  test('nested objects both ways through a Python echo, up to the 125 levels the reference can read', async () => {
    const dir = tmpDir()
    await pythonBackend(dir)
    const front = open('frontend', dir)
    await expect(front.request('echo', NESTED, { timeoutMs: 5000 })).resolves.toEqual(NESTED)
    const deepest = nestedLists(125)
    await expect(front.request('echo', deepest, { timeoutMs: 5000 })).resolves.toEqual(deepest)
    // One more level would be unreadable by the reference: refused before anything is written.
    const before = fs.readFileSync(path.join(dir, FRONTEND_OUTBOX), 'utf8')
    expect(() => front.sendRequest('echo', nestedLists(126))).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(fs.readFileSync(path.join(dir, FRONTEND_OUTBOX), 'utf8')).toBe(before)
    await expect(front.request('add', { a: 1, b: 1 }, { timeoutMs: 5000 })).resolves.toBe(2)
  })

  test('the reference fixture: every message we read has exactly the fields the reference wrote', async () => {
    const dir = tmpDir()
    const fixture = path.join(tmpDir(), 'fixture.json')
    const writer = await py.runPeer('write-fixture', {
      role: 'backend',
      out: fixture,
    })
    const ids = writer.lines.find((l) => l.ids).ids
    // The frontend opens first: responses already in the inbox when it opens belong to an
    // earlier session and are dropped (issue 18). The fixture arrives as a writer's rename.
    const front = open('frontend', dir)
    const staged = path.join(dir, 'fixture.part')
    fs.copyFileSync(fixture, staged)
    fs.renameSync(staged, path.join(dir, BACKEND_OUTBOX))

    const received = markBigInts(front.recv())
    const onDisk = readJson(fixture)
    expect(received.map((m) => m.id)).toEqual(ids)
    expect(received).toHaveLength(8)
    for (let i = 0; i < onDisk.length; i++) {
      // No extra keys and no undefined-valued optional fields.
      expectExactly(received[i], expectedJsMessage(onDisk[i]))
    }
    // Spot checks that do not depend on JSON.parse being right.
    const byMethod = Object.fromEntries(received.filter((m) => m.method).map((m) => [m.method, m]))
    expect(byMethod['unicode ✓😀'].payload.controls).toBe('\u0001\t\n\r\b\f\u001f\u007f"\\/')
    expect(byMethod['unicode ✓😀'].payload.separators).toBe('\u2028\u2029')
    expect(Object.is(byMethod.numbers.payload.floats[3], -0)).toBe(true)
    expect(byMethod.numbers.payload.ints).toEqual([0, -1, 2 ** 63, -(2 ** 63), 2 ** 64])
    const [response, errorResponse] = received.filter((m) => m.type === 'response')
    expect(response.replyTo).toBe(ids[0])
    expect('error' in response).toBe(false)
    expect(errorResponse).toMatchObject({
      replyTo: ids[0],
      payload: null,
      error: 'failed: boom',
    })
    expect('replyTo' in byMethod.plain).toBe(false)
    expect(front.recv()).toEqual([])
  })

  test('the 100-message cap: 150 Python events before we read give the newest 100, and recv() throws EMAYBELOST once', async () => {
    const dir = tmpDir()
    const front = open('frontend', dir)
    await sendNumbered(dir, 'backend', 'first', 1, 'first')
    expect(front.recv().map((m) => m.payload)).toEqual([{ src: 'first', i: 0 }])

    await sendNumbered(dir, 'backend', 'flood', 150)
    const file = readJson(path.join(dir, BACKEND_OUTBOX))
    expect(file).toHaveLength(100)

    let thrown
    try {
      front.recv()
    } catch (error) {
      thrown = error
    }
    // 150 or exactly 100 new messages look alike in the file: reported as possible loss.
    expectError(thrown, 'EMAYBELOST')
    expect(thrown.message).toContain(BACKEND_OUTBOX)

    const received = front.recv()
    expect(received.map((m) => m.payload.i)).toEqual(Array.from({ length: 100 }, (_, i) => 50 + i))
    expect(received.map((m) => m.id)).toEqual(file.map((m) => m.id))
    expect(front.recv()).toEqual([]) // reported once
  })

  test("the 100-message cap: EMAYBELOST goes to the 'error' listener when there is one", async () => {
    const dir = tmpDir()
    // No watcher and a long poll period: nothing reads the inbox until recv().
    const front = open('frontend', dir, {
      watch: false,
      pollIntervalMs: 60000,
    })
    const errors = collectErrors(front)
    await sendNumbered(dir, 'backend', 'first', 1, 'first')
    expect(front.recv()).toHaveLength(1)
    await sendNumbered(dir, 'backend', 'flood', 150)

    const received = front.recv()
    expect(received.map((m) => m.payload.i)).toEqual(Array.from({ length: 100 }, (_, i) => 50 + i))
    await waitFor(() => errors.length > 0, { timeoutMs: 2000, what: "the 'error' event" })
    await sleep(20)
    expect(errors).toHaveLength(1)
    expect(errors[0].code).toBe('EMAYBELOST')
    expect(errors[0].message).toContain(path.join(dir, BACKEND_OUTBOX))
  })

  test('same-millisecond bursts: 300 Python events, each delivered to our listener exactly once, in order', async () => {
    const dir = tmpDir()
    const front = open('frontend', dir)
    const errors = collectErrors(front)
    const events = collect(front, 'event')
    // The reference reader on the same inbox, for comparison (not asserted).
    const reference = await py.startPeer('recv', { dir, role: 'frontend', timeoutMs: 1500 }).ready()

    await py.runPeer('send', {
      dir,
      role: 'backend',
      kind: 'event',
      method: 'burst',
      params: { k: 1 },
      count: 300,
      // Bursts of 50 (well inside the 100-message cap): a loaded machine cannot make this a loss test.
      pauseEvery: 50,
    })
    await waitFor(() => events.length >= 300 || errors.length > 0, { timeoutMs: 5000, what: '300 events' })
    await sleep(100)
    expect(errors).toEqual([])
    expect(events).toHaveLength(300)
    expect(new Set(events.map((m) => m.id)).size).toBe(300)
    for (let i = 1; i < events.length; i++) {
      expect(events[i].timestamp).toBeGreaterThanOrEqual(events[i - 1].timestamp)
    }
    const perMs = new Map()
    for (const m of events) perMs.set(m.timestamp, (perMs.get(m.timestamp) || 0) + 1)
    const shared = [...perMs.values()].filter((n) => n > 1).reduce((a, b) => a + b, 0)
    const last100 = readJson(path.join(dir, BACKEND_OUTBOX)).map((m) => m.id)
    expect(events.slice(200).map((m) => m.id)).toEqual(last100)

    const { lines } = await reference.exit(5000)
    const done = lines.at(-1)
    console.log(
      `same-ms burst: ${shared} of 300 events shared a millisecond with another; ` +
        `the reference reader saw ${done.done} distinct and ${done.duplicates} repeated deliveries`,
    )
    expect(shared).toBeGreaterThan(0) // the burst did exercise same-millisecond messages
  })

  test('same-millisecond bursts: numbered events arrive in send order, none twice', async () => {
    const dir = tmpDir()
    const front = open('frontend', dir)
    const errors = collectErrors(front)
    const events = collect(front, 'event')
    await sendNumbered(dir, 'backend', 'seq', 300, 'py', 50)
    await waitFor(() => events.length >= 300 || errors.length > 0, { timeoutMs: 5000, what: '300 events' })
    await sleep(100)
    expect(errors).toEqual([])
    expect(events.map((m) => m.payload.i)).toEqual(Array.from({ length: 300 }, (_, i) => i))
  })

  test('round trip to a Python backend answering from a 1 ms recv() loop (median RTT of 50 logged)', async () => {
    const dir = tmpDir()
    const server = await pythonBackend(dir)
    const front = open('frontend', dir)
    for (let i = 0; i < 3; i++) await front.request('echo', { warmup: i }, { timeoutMs: 5000 })
    const rtts = []
    for (let i = 0; i < 50; i++) {
      const start = process.hrtime.bigint()
      const result = await front.request('echo', { i, s: 'x'.repeat(i) }, { timeoutMs: 5000 })
      rtts.push(Number(process.hrtime.bigint() - start) / 1e6)
      expect(result).toEqual({ i, s: 'x'.repeat(i) })
    }
    console.log(
      `Node -> Python RTT over 50 requests: median ${median(rtts).toFixed(2)} ms, ` +
        `min ${Math.min(...rtts).toFixed(2)} ms, max ${Math.max(...rtts).toFixed(2)} ms`,
    )
    await expect(front.request('shutdown', null, { timeoutMs: 5000 })).resolves.toEqual({ ok: true })
    const { lines } = await server.success(5000)
    expect(lines.at(-1)).toEqual({ done: 54, duplicates: expect.any(Number) })
  })

  test('waitResponse keeps the events that arrive while it waits for recv() (the reference drops them)', async () => {
    let dir = tmpDir()
    let front = open('frontend', dir)

    // No backend yet: the wait is pending while five unrelated events arrive.
    const id = front.sendRequest('later', { n: 1 })
    const waiting = front.waitResponse(id, 10000)
    await py.runPeer('send', {
      dir,
      role: 'backend',
      kind: 'event',
      method: 'noise',
      params: { k: 'n' },
      count: 5,
    })
    await sleep(150) // let the wait's reader see them
    expect(front.pendingWaits).toBe(1)
    await py.runPeer('send', {
      dir,
      role: 'backend',
      kind: 'response',
      replyTo: id,
      params: 'late',
    })
    const response = await waiting
    expect(response).toMatchObject({
      type: 'response',
      replyTo: id,
      payload: 'late',
    })

    const kept = front.recv()
    expect(kept.map((m) => [m.type, m.method, m.payload])).toEqual(Array(5).fill(['event', 'noise', { k: 'n' }]))
    expect(new Set(kept.map((m) => m.id)).size).toBe(5)

    // A Python backend that emits an event right before its response (in a fresh channel: this
    // backend would also answer the old 'later' request).
    front.close()
    dir = tmpDir()
    front = open('frontend', dir)
    await pythonBackend(dir)
    const id2 = front.sendRequest('emit', { name: 'side', payload: { n: 2 } })
    await expect(front.waitResponse(id2, 5000)).resolves.toMatchObject({
      replyTo: id2,
      payload: true,
    })
    const side = front.recv()
    expect(side.map((m) => [m.type, m.method, m.payload])).toEqual([['event', 'side', { n: 2 }]])

    // The same through request().
    await expect(front.request('emit', { name: 'side2', payload: [3] }, { timeoutMs: 5000 })).resolves.toBe(true)
    expect(front.recv().map((m) => [m.method, m.payload])).toEqual([['side2', [3]]])
  })
})

describe('our backend, Python frontend', () => {
  function ourBackend(dir, options) {
    const back = open('backend', dir, options)
    back.serve({
      echo: (params) => params,
      add: ({ a, b }) => a + b,
      fail: (params) => {
        throw new Error(`failed: ${typeof params === 'string' ? params : JSON.stringify(params)}`)
      },
      slowAdd: async ({ a, b }) => {
        await sleep(5)
        return a + b
      },
    })
    return back
  }

  function responses(peer) {
    return peer.lines.filter((l) => l.response).map((l) => l.response)
  }

  test('requests from a Python client: echo and add answered by our handlers (Python-side RTT logged)', async () => {
    const dir = tmpDir()
    const back = ourBackend(dir)
    const errors = collectErrors(back)

    const add = await py.runPeer('client', {
      dir,
      role: 'frontend',
      method: 'add',
      params: { a: 2, b: 40 },
    })
    expect(responses(add)).toEqual([
      {
        id: expect.stringMatching(UUID_V4),
        timestamp: expect.any(Number),
        type: 'response',
        reply_to: expect.stringMatching(UUID_V4),
        payload: 42,
      },
    ])
    const slow = await py.runPeer('client', {
      dir,
      role: 'frontend',
      method: 'slowAdd',
      params: { a: 0.5, b: 0.25 },
    })
    expect(responses(slow).map((r) => r.payload)).toEqual([0.75])

    const echo = await py.runPeer('client', {
      dir,
      role: 'frontend',
      method: 'echo',
      params: NESTED,
      count: 10,
    })
    const got = responses(echo)
    expect(got.map((r) => r.payload)).toEqual(Array(10).fill(NESTED))
    expect(new Set(got.map((r) => r.reply_to)).size).toBe(10)
    const rtts = echo.lines.filter((l) => l.rtt_ms).map((l) => l.rtt_ms)
    console.log(`Python -> Node RTT (reference wait_response, polls every 50 ms): median ${median(rtts).toFixed(2)} ms`)
    expect(errors).toEqual([])
  })

  test('error responses to a Python client: a throwing handler and an unknown method', async () => {
    const dir = tmpDir()
    const back = ourBackend(dir)
    const errors = collectErrors(back)
    const fail = await py.runPeer('client', {
      dir,
      role: 'frontend',
      method: 'fail',
      params: '💥 ünï\u2028"q"',
    })
    expect(responses(fail)).toEqual([
      {
        id: expect.stringMatching(UUID_V4),
        timestamp: expect.any(Number),
        type: 'response',
        reply_to: expect.stringMatching(UUID_V4),
        payload: null,
        error: 'failed: 💥 ünï\u2028"q"',
      },
    ])
    const unknown = await py.runPeer('client', {
      dir,
      role: 'frontend',
      method: 'nope ✓',
      params: null,
    })
    expect(responses(unknown)).toMatchObject([{ payload: null, error: 'unknown method: nope ✓' }])
    expect(errors).toEqual([])

    // sendError by hand from a 'request' listener, with an Error object.
    const manualDir = tmpDir()
    const manual = open('backend', manualDir)
    manual.on('request', (request) => manual.sendError(request.id, new Error(`manual ✗ ${request.method}`)))
    const answered = await py.runPeer('client', {
      dir: manualDir,
      role: 'frontend',
      method: 'anything',
      params: 1,
    })
    expect(responses(answered)).toMatchObject([{ payload: null, error: 'manual ✗ anything' }])
  })

  test('events both ways between our backend and a Python frontend', async () => {
    const dir = tmpDir()
    const back = open('backend', dir)
    const errors = collectErrors(back)
    const events = collect(back, 'event')

    await py.runPeer('send', {
      dir,
      role: 'frontend',
      kind: 'event',
      method: 'hello ✓\u2028',
      params: UNICODE,
      count: 3,
    })
    await waitFor(() => events.length >= 3, { timeoutMs: 5000, what: '3 events' })
    await sleep(50)
    expect(events).toHaveLength(3)
    expect(new Set(events.map((m) => m.id)).size).toBe(3)
    for (const message of events) {
      expectExactly(message, {
        id: expect.stringMatching(UUID_V4),
        timestamp: expect.any(Number),
        type: 'event',
        method: 'hello ✓\u2028',
        payload: UNICODE,
      })
    }

    const sent = [UNICODE, NESTED, null, false, 'last 😀']
    sent.forEach((payload, i) => back.sendEvent(`out${i} 日本`, payload))
    const peer = await py.runPeer('recv', {
      dir,
      role: 'frontend',
      expect: 5,
      timeoutMs: 3000,
    })
    const got = peer.lines.filter((l) => l.received).map((l) => l.received)
    expect(got.map((m) => [m.type, m.method, m.payload])).toEqual(sent.map((p, i) => ['event', `out${i} 日本`, p]))
    expect(errors).toEqual([])
  })

  test('unicode round-trips exactly through our echo to a Python client', async () => {
    const dir = tmpDir()
    ourBackend(dir)
    const echo = await py.runPeer('client', {
      dir,
      role: 'frontend',
      method: 'echo',
      params: UNICODE,
    })
    const [response] = responses(echo)
    expect(response.payload).toEqual(UNICODE)
    // And what Python holds, with its own types: str for every string, exactly.
    const back = open('backend', tmpDir())
    back.sendEvent('u', UNICODE)
    const [message] = await pyTypedDump(back.dir, 'frontend')
    for (const [key, value] of Object.entries(UNICODE)) {
      if (typeof value === 'string') expect([key, message.typed[1][key]]).toEqual([key, ['str', value]])
    }
  })

  test('numbers we send, as the reference reads them (Python types)', async () => {
    const dir = tmpDir()
    const back = open('backend', dir)
    back.sendEvent('numbers', {
      ints: [0, -1, 42, 2 ** 53 - 1, -(2 ** 53 - 1), 1700000000000],
      beyond: [2 ** 53, 2 ** 60, 1e21],
      floats: [0.1, 1e-7, 123.456, 1.5, -2.5, 2.5e-5, 1e308, 5e-324, 0.000001],
      negzero: -0,
      whole: 3.0,
    })
    const [message] = await pyTypedDump(dir, 'frontend')
    const t = message.typed[1]
    const int = (s) => ['int', s]
    const float = (s) => ['float', s]
    expect(t.ints).toEqual([
      'list',
      ['0', '-1', '42', '9007199254740991', '-9007199254740991', '1700000000000'].map(int),
    ])
    // Beyond 2**53 a JS number is written as JSON.stringify writes it: 2**53 exactly, 2**60 as
    // the digits "1152921504606847000" (the same double, not the integer 2**60), 1e21 as 1e+21.
    expect(t.beyond).toEqual(['list', [int('9007199254740992'), int('1152921504606847000'), float('1e+21')]])
    expect(t.floats).toEqual([
      'list',
      ['0.1', '1e-07', '123.456', '1.5', '-2.5', '2.5e-05', '1e+308', '5e-324', '1e-06'].map(float),
    ])
    // JSON.stringify(-0) is "0", and 3.0 is the integer 3: JSON from JavaScript has no -0 or 3.0.
    expect(t.negzero).toEqual(int('0'))
    expect(t.whole).toEqual(int('3'))
  })

  test('2**53+1 from a Python client comes back through our echo as the nearest JS number', async () => {
    const dir = tmpDir()
    const back = ourBackend(dir)
    const errors = collectErrors(back)
    const params = '{"big": 9007199254740993, "safe": 9007199254740991, "small": -7}'
    const echo = py.startPeer('client', {
      dir,
      role: 'frontend',
      method: 'echo',
      paramsJson: params,
      timeoutMs: 2000,
    })
    await echo.exit(10000)
    expect(errors.map((e) => `${e.code}: ${e.message}`)).toEqual([])
    expect(echo.lines.filter((l) => l.error)).toEqual([])
    // Python prints its ints exactly: the line as printed shows the digits it holds. 2**53+1
    // went through a JS number, so it comes back as 2**53 (documented precision loss).
    const printed = echo.texts.filter((t) => t.includes('"response"'))
    expect(printed).toHaveLength(1)
    expect(printed[0]).toContain('"payload": {"big": 9007199254740992, "safe": 9007199254740991, "small": -7}')
  })

  test('the 100-message cap: we send 150, the reference reader sees the newest 100', async () => {
    const dir = tmpDir()
    const back = open('backend', dir)
    for (let i = 0; i < 150; i++) back.sendEvent('n', { i })
    expect(readJson(path.join(dir, BACKEND_OUTBOX))).toHaveLength(100)
    const peer = await py.runPeer('recv', {
      dir,
      role: 'frontend',
      timeoutMs: 400,
    })
    const got = peer.lines.filter((l) => l.received).map((l) => l.received.payload.i)
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => 50 + i))
    expect(peer.lines.at(-1)).toMatchObject({ done: 100 })
  })

  test('two writers on one outbox: our backend and a Python backend, 40 events each at once, lose nothing', async () => {
    const dir = tmpDir()
    const back = open('backend', dir)
    const front = open('frontend', dir)
    const backErrors = collectErrors(back)
    const frontErrors = collectErrors(front)
    const events = collect(front, 'event')

    const python = await py
      .startPython(
        SEND_NUMBERED,
        {
          dir,
          role: 'backend',
          method: 'py',
          count: 40,
          src: 'py',
          waitGo: true,
          sleepMs: 0.3,
        },
        'numbered sender',
      )
      .ready()
    python.write('go')
    for (let i = 0; i < 40; i++) {
      back.sendEvent('node', { src: 'node', i })
      await new Promise((resolve) => setImmediate(resolve))
    }
    await python.success(10000)

    const file = readJson(path.join(dir, BACKEND_OUTBOX))
    expect(file).toHaveLength(80)
    const order = file.map((m) => m.payload.src)
    for (const src of ['py', 'node']) {
      expect(file.filter((m) => m.payload.src === src).map((m) => m.payload.i)).toEqual([...Array(40).keys()])
    }
    const switches = order.filter((src, i) => i > 0 && src !== order[i - 1]).length
    console.log(`two writers: the outbox order switches writer ${switches} times`)
    expect(fs.readdirSync(dir).filter((f) => /\.(lock|tmp)$/.test(f))).toEqual([])

    // Our frontend received all 80, once each.
    await waitFor(() => events.length >= 80, { timeoutMs: 5000, what: '80 events' })
    await sleep(50)
    expect(events.map((m) => m.id)).toEqual(file.map((m) => m.id))
    expect(backErrors).toEqual([])
    expect(frontErrors).toEqual([])

    // And so does the reference reader.
    const seen = await pyTypedDump(dir, 'frontend')
    expect(seen.map((m) => m.id)).toEqual(file.map((m) => m.id))
  })

  test('exact bytes: a hand-written message set is written exactly as the protocol specifies', async () => {
    const dir = tmpDir()
    const back = open('backend', dir)
    const outbox = path.join(dir, BACKEND_OUTBOX)
    expect(fs.readFileSync(outbox, 'utf8')).toBe('[]')

    const before = Date.now()
    const ping = back.sendRequest('ping', { b: 'x', a: 1 })
    // The protocol's own example: exactly 190 bytes.
    expect(fs.statSync(outbox).size).toBe(190)
    back.sendEvent('plain ✓', { 10: true, 2: false, b: null, a: [] })
    back.sendResponse(ping, [1, 'two', null, true, false, {}, [], -2.5, 0.1])
    back.sendError(ping, new Error('bad "input"\n\u2028😀\u0001\u007f'))
    back.sendEvent('none')
    const after = Date.now()

    const text = fs.readFileSync(outbox, 'utf8')
    const parsed = JSON.parse(text)
    const [id, ts] = [parsed.map((m) => m.id), parsed.map((m) => m.timestamp)]
    expect(id[0]).toBe(ping)
    for (const i of [0, 1, 2, 3, 4]) {
      expect(id[i]).toMatch(UUID_V4)
      expect(ts[i]).toBeGreaterThanOrEqual(before)
      expect(ts[i]).toBeLessThanOrEqual(after)
    }
    const expected = `[
  {
    "id": "${id[0]}",
    "timestamp": ${ts[0]},
    "type": "request",
    "method": "ping",
    "payload": {
      "a": 1,
      "b": "x"
    }
  },
  {
    "id": "${id[1]}",
    "timestamp": ${ts[1]},
    "type": "event",
    "method": "plain ✓",
    "payload": {
      "10": true,
      "2": false,
      "a": [],
      "b": null
    }
  },
  {
    "id": "${id[2]}",
    "timestamp": ${ts[2]},
    "type": "response",
    "reply_to": "${ping}",
    "payload": [
      1,
      "two",
      null,
      true,
      false,
      {},
      [],
      -2.5,
      0.1
    ]
  },
  {
    "id": "${id[3]}",
    "timestamp": ${ts[3]},
    "type": "response",
    "reply_to": "${ping}",
    "payload": null,
    "error": "bad \\"input\\"\\n\u2028😀\\u0001\u007f"
  },
  {
    "id": "${id[4]}",
    "timestamp": ${ts[4]},
    "type": "event",
    "method": "none",
    "payload": null
  }
]`
    expect(text).toBe(expected)
    expect(fs.readFileSync(outbox)).toEqual(Buffer.from(expected, 'utf8'))
  })

  test('exact bytes: the reference writer re-serializes our outbox to the very same bytes', async () => {
    const dir = tmpDir()
    const back = open('backend', dir)
    const outbox = path.join(dir, BACKEND_OUTBOX)
    const id = back.sendRequest('unicode ✓😀\u2028', UNICODE)
    back.sendEvent('nested', NESTED)
    back.sendEvent('numbers', {
      ints: [0, -1, 42, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53],
      floats: [0.1, 1e-7, 123.456, 1.5, -2.5, 2.5e-5, 1e21, 1e308, 5e-324, 1e-6],
    })
    back.sendEvent('deep', nestedLists(125))
    back.sendResponse(id, { ok: true, none: null, list: [], obj: {}, s: '' })
    back.sendError(id, 'failed: 💥 "x"\n\t\u0000')
    back.sendEvent('null')
    back.sendEvent('scalars', [true, false, 'str', -0.5])
    const ours = fs.readFileSync(outbox)
    expect(ours.subarray(-2).toString()).toBe('\n]')

    // When the reference sends, it re-reads its outbox and writes every message again.
    await py.runPeer('send', {
      dir,
      role: 'backend',
      kind: 'event',
      method: 'tail',
      params: null,
    })
    const theirs = fs.readFileSync(outbox)
    const prefix = Buffer.concat([ours.subarray(0, -2), Buffer.from(',\n')])
    expect(theirs.subarray(0, prefix.length).toString('utf8')).toBe(prefix.toString('utf8'))
    const tail = JSON.parse(theirs.toString('utf8')).at(-1)
    expect(theirs.subarray(prefix.length).toString('utf8')).toBe(
      `  {\n    "id": "${tail.id}",\n    "timestamp": ${tail.timestamp},\n    "type": "event",\n` +
        `    "method": "tail",\n    "payload": null\n  }\n]`,
    )
  })

  test('exact bytes: our writer appending to the reference fixture keeps its bytes and appends the same format', async () => {
    const dir = tmpDir()
    const fixture = path.join(tmpDir(), 'fixture.json')
    await py.runPeer('write-fixture', { role: 'backend', out: fixture })
    const reference = fs.readFileSync(fixture)
    fs.copyFileSync(fixture, path.join(dir, BACKEND_OUTBOX))
    const back = open('backend', dir)
    back.sendEvent('tail', { é: 1, e: [0.5] })
    const text = fs.readFileSync(path.join(dir, BACKEND_OUTBOX), 'utf8')
    const prefix = reference.subarray(0, -2).toString('utf8') + ',\n'
    expect(text.slice(0, prefix.length)).toBe(prefix)
    const tail = JSON.parse(text).at(-1)
    expect(text.slice(prefix.length)).toBe(
      `  {\n    "id": "${tail.id}",\n    "timestamp": ${tail.timestamp},\n    "type": "event",\n` +
        `    "method": "tail",\n    "payload": {\n      "e": [\n        0.5\n      ],\n      "é": 1\n    }\n  }\n]`,
    )
  })
})
