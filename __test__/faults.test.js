'use strict'

// Hostile and broken conditions: malformed inboxes, bad messages, oversized files, locks held,
// stale or in the way, a vanished or wrong channel directory, loss, planted symlinks.

const fs = require('node:fs')
const path = require('node:path')
const {
  FileChannel,
  FRONTEND_OUTBOX,
  BACKEND_OUTBOX,
  useHarness,
  removeLiveDir,
  writeAtomic,
  writeMessages,
  diskMessage,
  readText,
  readMessages,
  expectThrows,
} = require('./helpers/channels.js')
const { waitFor, sleep } = require('../test-support')

const h = useHarness()

const MALFORMED = [
  ['garbage', Buffer.from('this is not json at all')],
  ['truncated JSON', Buffer.from('[{"id": "abc", "timestamp": 1')],
  ['an object', Buffer.from('{"id": "x", "timestamp": 1, "type": "event", "payload": null}')],
  ['null', Buffer.from('null')],
  ['a UTF-8 BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[]')])],
  [
    'invalid UTF-8',
    Buffer.concat([
      Buffer.from('[{"id": "a", "timestamp": 1, "type": "event", "method": "'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('", "payload": null}]'),
    ]),
  ],
]

function nestedList(levels) {
  let text = 'null'
  for (let i = 0; i < levels; i++) text = `[${text}]`
  return text
}

describe('a malformed inbox never crashes', () => {
  test.each(MALFORMED)('%s: recv() throws EBADMSG naming the file once, then reading resumes', (_, bytes) => {
    const { dir, front, back } = h.pair()
    back.sendEvent('e', 'good-before')
    expect(front.recv().map((m) => m.payload)).toEqual(['good-before'])
    writeAtomic(path.join(dir, BACKEND_OUTBOX), bytes)
    expectThrows(() => front.recv(), 'EBADMSG', path.join(dir, BACKEND_OUTBOX))
    // Reported once per version of the file, not on every read.
    expect(front.recv()).toEqual([])
    expect(front.recv()).toEqual([])
    // The writer is not blocked by a broken outbox either.
    back.sendEvent('e', 'good-after')
    expect(front.recv().map((m) => m.payload)).toEqual(['good-after'])
    expect(front.recv()).toEqual([])
  })

  test("'error' listener gets EBADMSG naming the file once per change; valid content resumes delivery", async () => {
    const { dir, front, back } = h.pair()
    const errors = []
    const events = []
    front.on('error', (error) => errors.push(error))
    front.on('event', (m) => events.push(m.payload))
    back.sendEvent('e', 1)
    await waitFor(() => events.length === 1)
    const inbox = path.join(dir, BACKEND_OUTBOX)
    // Eight different broken versions, each truncated at a different column.
    for (let version = 1; version <= 8; version++) {
      writeAtomic(inbox, `[${'1,'.repeat(version)}`)
      await waitFor(() => errors.length >= version, { what: `the EBADMSG of version ${version}` })
      await sleep(150) // more than one poll period: a version is reported once, not per read
    }
    expect(errors.map((e) => e.code)).toEqual(Array(8).fill('EBADMSG'))
    errors.forEach((error, i) => {
      expect(error.message).toContain(inbox)
      expect(error.message).toContain(`column ${2 * (i + 1) + 1}`)
    })
    writeMessages(dir, BACKEND_OUTBOX, [diskMessage({ payload: 2 }), diskMessage({ payload: 3 })])
    await waitFor(() => events.length === 3, { what: 'the events after the repair' })
    expect(events).toEqual([1, 2, 3])
    await sleep(100)
    expect(errors).toHaveLength(8)
    expect(front.closed).toBe(false)
  })

  test('a malformed inbox does not make the reader spin (CPU while broken ~ CPU while healthy)', async () => {
    const { dir, front, back } = h.pair()
    const errors = []
    front.on('error', (error) => errors.push(error))
    front.on('event', () => {})
    back.sendEvent('e', 1)
    await sleep(150)
    async function cpuMs(ms) {
      const before = process.cpuUsage()
      await sleep(ms)
      const used = process.cpuUsage(before)
      return (used.user + used.system) / 1000
    }
    const healthy = await cpuMs(600)
    writeAtomic(path.join(dir, BACKEND_OUTBOX), 'broken')
    await waitFor(() => errors.length === 1, { what: 'EBADMSG' })
    await sleep(100)
    const broken = await cpuMs(600)
    expect(errors).toHaveLength(1)
    // Generous: an idle reader uses a few ms; a reader re-reading in a loop uses most of a core.
    expect(broken).toBeLessThan(healthy * 10 + 100)
  })

  test('bad messages inside a valid array are skipped and reported with index and id; the good ones flow', async () => {
    const { dir, front } = h.pair()
    const good = [diskMessage({ payload: 'g0' }), diskMessage({ payload: 'g1' }), diskMessage({ payload: 'g2' })]
    const badType = diskMessage({ type: 'Request', payload: 'x' })
    const noPayload = diskMessage()
    delete noPayload.payload
    const negative = diskMessage({ timestamp: -1, payload: 'y' })
    writeMessages(dir, BACKEND_OUTBOX, [good[0], badType, good[1], noPayload, negative, good[2]])
    const errors = []
    const events = []
    front.on('error', (error) => errors.push(error))
    front.on('event', (m) => events.push(m.payload))
    await waitFor(() => events.length === 3 && errors.length === 3, { what: '3 events and 3 errors' })
    await sleep(100)
    expect(events).toEqual(['g0', 'g1', 'g2'])
    expect(errors.map((e) => e.code)).toEqual(['EBADMSG', 'EBADMSG', 'EBADMSG'])
    const expected = [
      [1, badType.id],
      [3, noPayload.id],
      [4, negative.id],
    ]
    expected.forEach(([index, id], i) => {
      expect(errors[i].message).toContain(path.join(dir, BACKEND_OUTBOX))
      expect(errors[i].message).toContain(`message ${index}`)
      expect(errors[i].message).toContain(id)
    })
    expect(errors[1].message).toContain('payload')
    // A later version with the same bad messages plus a new good one: only the new one, no re-report.
    const more = diskMessage({ payload: 'g3' })
    writeMessages(dir, BACKEND_OUTBOX, [good[0], badType, good[1], noPayload, negative, good[2], more])
    await waitFor(() => events.length === 4)
    await sleep(100)
    expect(events).toEqual(['g0', 'g1', 'g2', 'g3'])
    expect(errors).toHaveLength(3)
  })

  test('bad messages with recv(): each reported once by a throw, the good ones returned in order', () => {
    const { dir, front } = h.pair()
    const good = [diskMessage({ payload: 1 }), diskMessage({ payload: 2 })]
    const bad = diskMessage({ type: 'ping', payload: 0 })
    writeMessages(dir, BACKEND_OUTBOX, [good[0], bad, good[1]])
    const thrown = expectThrows(() => front.recv(), 'EBADMSG', `message 1`, bad.id)
    expect(thrown.message).toContain(path.join(dir, BACKEND_OUTBOX))
    expect(front.recv().map((m) => m.payload)).toEqual([1, 2])
    expect(front.recv()).toEqual([])
  })

  test('a message nested deeper than 125 levels is EBADMSG; 30,000 levels do not crash the reader', () => {
    const { dir, front } = h.pair()
    const ok = `{"id": "ok", "timestamp": 1, "type": "event", "payload": ${nestedList(125)}}`
    const deep = `{"id": "deep", "timestamp": 1, "type": "event", "payload": ${nestedList(126)}}`
    writeAtomic(path.join(dir, BACKEND_OUTBOX), `[${ok}, ${deep}]`)
    expectThrows(() => front.recv(), 'EBADMSG', 'deep')
    expect(front.recv().map((m) => m.id)).toEqual(['ok'])
    writeAtomic(
      path.join(dir, BACKEND_OUTBOX),
      `[{"id": "huge", "timestamp": 1, "type": "event", "payload": ${nestedList(30000)}}]`,
    )
    expectThrows(() => front.recv(), 'EBADMSG', path.join(dir, BACKEND_OUTBOX))
    expect(front.recv()).toEqual([])
  })

  test('a message bigger than maxFileBytes is skipped with EFBIG naming it; the messages around it, and later ones, arrive', () => {
    const dir = h.channelDir()
    const front = h.frontend(dir, { maxFileBytes: 1024 })
    const back = h.backend(dir)
    back.sendEvent('before', 1)
    back.sendEvent('big', 'x'.repeat(4000))
    back.sendEvent('after', 2)
    const bigId = readMessages(dir, BACKEND_OUTBOX)[1].id
    const error = expectThrows(() => front.recv(), 'EFBIG', path.join(dir, BACKEND_OUTBOX), `(id ${bigId})`, '1024')
    expect(error.message).toContain('skipped')
    expect(front.recv().map((m) => m.method)).toEqual(['before', 'after'])
    back.sendEvent('later', 3)
    expect(front.recv().map((m) => m.method)).toEqual(['later'])
  })

  test('the inbox replaced by a directory is reported, not a crash', () => {
    const { dir, front } = h.pair()
    const inbox = path.join(dir, BACKEND_OUTBOX)
    fs.unlinkSync(inbox)
    fs.mkdirSync(inbox)
    expectThrows(() => front.recv(), 'EBADMSG', inbox)
    fs.rmdirSync(inbox)
  })

  // Planting a link needs privileges on Windows, and Wine 8 cannot make one at all (its
  // CreateSymbolicLink does nothing): there the core's refusal of reparse points
  // (src/protocol/platform/windows.rs) is not exercised.
  if (process.platform !== 'win32') {
    test('the inbox replaced by a symlink is reported (ELOOP), not followed', () => {
      const { dir, front } = h.pair()
      const inbox = path.join(dir, BACKEND_OUTBOX)
      fs.unlinkSync(inbox)
      const elsewhere = path.join(h.tmpDir(), 'elsewhere.json')
      fs.writeFileSync(elsewhere, JSON.stringify([diskMessage({ payload: 'through a link' })]))
      fs.symlinkSync(elsewhere, inbox)
      const error = expectThrows(() => front.recv(), 'ELOOP', inbox)
      expect(error.message).toContain(inbox)
      expect(front.recv()).toEqual([])
    })
  }
})

describe('locks', () => {
  test('a held lock fails the send with ELOCKED naming the lock file and the holder after lockTimeoutMs', () => {
    // A live holder: this process (a lock of a process that is gone is taken over at once).
    const holder = process.pid
    const dir = h.channelDir()
    const lock = path.join(dir, 'frontend_to_backend.lock')
    const quick = h.frontend(dir, { lockTimeoutMs: 100 })
    const slower = h.frontend(dir, { lockTimeoutMs: 400 })
    fs.writeFileSync(lock, `${holder}\n`)
    let started = performance.now()
    expectThrows(() => quick.sendRequest('m', 1), 'ELOCKED', lock, String(holder))
    const quickMs = performance.now() - started
    started = performance.now()
    expectThrows(() => slower.sendEvent('e', 1), 'ELOCKED', lock, String(holder))
    const slowerMs = performance.now() - started
    expect(quickMs).toBeGreaterThanOrEqual(99)
    expect(slowerMs).toBeGreaterThanOrEqual(399)
    expect(slowerMs).toBeGreaterThan(quickMs)
    // Someone else's lock is left alone, and nothing was written.
    expect(fs.readFileSync(lock, 'utf8')).toBe(`${holder}\n`)
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
  })

  test('a lock released while we wait lets the send through', async () => {
    const holder = process.pid
    const dir = h.channelDir()
    const lock = path.join(dir, 'frontend_to_backend.lock')
    const front = h.frontend(dir, { lockTimeoutMs: 5000 })
    fs.writeFileSync(lock, `${holder}\n`)
    // Release from another process while this thread is blocked in the send.
    const { spawn } = require('node:child_process')
    const releaser = spawn(process.execPath, [
      '-e',
      `setTimeout(() => require('fs').unlinkSync(${JSON.stringify(lock)}), 150)`,
    ])
    const exited = new Promise((resolve) => releaser.on('exit', resolve))
    const id = front.sendRequest('after-release', 1)
    await exited
    expect(readMessages(dir, FRONTEND_OUTBOX).map((m) => m.id)).toEqual([id])
    expect(fs.existsSync(lock)).toBe(false)
  })

  test("close() writes a handler's answer held back by a locked outbox, then its shutdown announcement", async () => {
    const dir = h.channelDir()
    const lock = path.join(dir, 'backend_to_frontend.lock')
    const back = h.backend(dir, { lockTimeoutMs: 10000 })
    let handled = false
    back.handle('answer', () => {
      handled = true
      return 'the answer'
    })
    const front = h.frontend(dir)
    await front.ready({ timeoutMs: 10000 })
    fs.writeFileSync(lock, `${process.pid}\n`)
    const request = front.sendRequest('answer', null)
    // The answer waits for the writer thread, which finds the outbox locked.
    await waitFor(() => handled, { timeoutMs: 10000, what: 'the handler' })
    const releaser = require('node:child_process').spawn(process.execPath, [
      '-e',
      `setTimeout(() => require('fs').unlinkSync(${JSON.stringify(lock)}), 150)`,
    ])
    const released = new Promise((resolve) => releaser.on('exit', resolve))
    const problems = []
    back.on('error', (error) => problems.push(error))
    back.close() // waits for the lock, as a synchronous send does
    await released
    expect(problems).toEqual([])
    const written = readMessages(dir, BACKEND_OUTBOX)
    const answer = written.findIndex((m) => m.reply_to === request)
    const shutdown = written.findIndex((m) => m.method === 'backend_shutdown')
    expect(answer).toBeGreaterThanOrEqual(0)
    expect(written[answer].payload).toBe('the answer')
    expect(shutdown).toBeGreaterThan(answer)
    expect(await front.waitResponse(request, 10000)).toMatchObject({ payload: 'the answer' })
  })

  test('what close() cannot write in lockTimeoutMs is reported as ELOST naming the outbox and the lock', async () => {
    const dir = h.channelDir()
    const lock = path.join(dir, 'backend_to_frontend.lock')
    const back = h.backend(dir, { lockTimeoutMs: 200 })
    fs.writeFileSync(lock, `${process.pid}\n`)
    const sent = back.promises.sendEvent('never', 1, { timeoutMs: 60000 })
    const problems = []
    back.on('error', (error) => problems.push(error))
    back.close()
    await expect(sent).rejects.toMatchObject({ code: 'ECLOSED' })
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatchObject({ code: 'ELOST' })
    expect(problems[0].message).toContain(path.join(dir, BACKEND_OUTBOX))
    expect(problems[0].message).toContain('1 message sent before close() could not be written')
    expect(problems[0].message).toContain(lock)
    expect(readText(dir, BACKEND_OUTBOX)).toBe('[]')
  })

  test('a lock left by a process that is gone (same host) is taken over at once, not after staleLockMs', () => {
    const dir = h.channelDir()
    const lock = path.join(dir, 'frontend_to_backend.lock')
    // Were the dead holder's lock waited on, the send would fail with ELOCKED after 10 s.
    const front = h.frontend(dir, { lockTimeoutMs: 10000, staleLockMs: 600000 })
    const gone = require('node:child_process').spawnSync(
      process.execPath,
      ['-e', 'process.stdout.write(String(process.pid))'],
      {
        encoding: 'utf8',
      },
    )
    fs.writeFileSync(lock, `${gone.stdout}\n`)
    const id = front.sendRequest('m', 'through')
    expect(readMessages(dir, FRONTEND_OUTBOX).map((m) => m.id)).toEqual([id])
    expect(fs.existsSync(lock)).toBe(false)
  })

  test('a lock dated in the future is taken over like a stale one', () => {
    const dir = h.channelDir()
    const lock = path.join(dir, 'frontend_to_backend.lock')
    const front = h.frontend(dir, { lockTimeoutMs: 10000, staleLockMs: 1000 })
    fs.writeFileSync(lock, `${process.pid}\n`)
    const inAnHour = Date.now() / 1000 + 3600
    fs.utimesSync(lock, inAnHour, inAnHour)
    const id = front.sendRequest('m', 'through')
    expect(readMessages(dir, FRONTEND_OUTBOX).map((m) => m.id)).toEqual([id])
  })

  test('a serve() backend with no error listener outlives its outbox locked for 2 s by another process: the reply arrives after', async () => {
    const { dir, front, back } = h.pair()
    back.serve({ add: ({ a, b }) => a + b })
    const lock = path.join(dir, BACKEND_OUTBOX.replace(/\.json$/, '.lock'))
    // A live writer in another process holds the backend's outbox lock (lockTimeoutMs is 500).
    const holder = require('node:child_process').spawn(process.execPath, [
      '-e',
      `const fs = require('fs')
       fs.writeFileSync(${JSON.stringify(lock)}, process.pid + '\\n', { flag: 'wx' })
       process.stdout.write('held\\n')
       setTimeout(() => fs.unlinkSync(${JSON.stringify(lock)}), 2000)`,
    ])
    await new Promise((resolve) => holder.stdout.once('data', resolve))
    const released = new Promise((resolve) => holder.on('exit', resolve))
    await expect(front.request('add', { a: 1, b: 2 }, { timeoutMs: 20000 })).resolves.toBe(3)
    await released
    expect(back.closed).toBe(false)
  })

  test('a stale lock (mtime 10 s ago) is taken over and removed after the send', () => {
    const dir = h.channelDir()
    const lock = path.join(dir, 'frontend_to_backend.lock')
    const front = h.frontend(dir, { lockTimeoutMs: 100 })
    fs.writeFileSync(lock, '12345\n')
    const tenSecondsAgo = Date.now() / 1000 - 10
    fs.utimesSync(lock, tenSecondsAgo, tenSecondsAgo)
    const id = front.sendRequest('m', 'through')
    expect(readMessages(dir, FRONTEND_OUTBOX).map((m) => [m.id, m.payload])).toEqual([[id, 'through']])
    expect(fs.existsSync(lock)).toBe(false)
  })

  test('a lock path that is a directory fails quickly with a clear error, not a hang', () => {
    const dir = h.channelDir()
    const lock = path.join(dir, 'frontend_to_backend.lock')
    const front = h.frontend(dir, { lockTimeoutMs: 10000 })
    fs.mkdirSync(lock)
    const started = performance.now()
    let error
    try {
      front.sendEvent('e', 1)
    } catch (e) {
      error = e
    }
    const elapsed = performance.now() - started
    expect(error).toBeDefined()
    expect(typeof error.code).toBe('string')
    expect(error.message).toContain(lock)
    expect(error.message).toMatch(/director|not a regular file/)
    expect(elapsed).toBeLessThan(10000 / 5)
    expect(fs.statSync(lock).isDirectory()).toBe(true)
    expect(readText(dir, FRONTEND_OUTBOX)).toBe('[]')
  })

  test('a symlink planted at the outbox .tmp path never redirects the write', () => {
    const dir = h.channelDir()
    const front = h.frontend(dir)
    const victim = path.join(h.tmpDir(), 'victim.txt')
    fs.writeFileSync(victim, 'precious')
    const tmp = path.join(dir, 'frontend_to_backend.tmp')
    fs.symlinkSync(victim, tmp)
    const id = front.sendRequest('m', 'payload')
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious')
    expect(fs.lstatSync(path.join(dir, FRONTEND_OUTBOX)).isFile()).toBe(true)
    expect(readMessages(dir, FRONTEND_OUTBOX).map((m) => m.id)).toEqual([id])
  })

  if (process.platform !== 'win32') {
    test('a symlink planted at the lock path is not written through', () => {
      const dir = h.channelDir()
      const front = h.frontend(dir, { lockTimeoutMs: 100 })
      const victim = path.join(h.tmpDir(), 'victim.txt')
      fs.writeFileSync(victim, 'precious')
      fs.symlinkSync(victim, path.join(dir, 'frontend_to_backend.lock'))
      expect(() => front.sendEvent('e', 1)).toThrow()
      expect(fs.readFileSync(victim, 'utf8')).toBe('precious')
    })
  }
})

describe('the channel directory', () => {
  test('deleted under an open channel: sends fail with ENOENT naming the path, no crash', async () => {
    const { dir, front } = h.pair()
    const errors = []
    front.on('error', (error) => errors.push(error))
    front.on('message', () => {})
    await removeLiveDir(dir)
    if (process.platform === 'win32' && fs.existsSync(dir)) {
      // Windows keeps a directory that is being watched until the watch lets go (Wine: it stays;
      // Windows: delete pending): the channel goes on in it.
      front.sendRequest('m', 1)
    } else {
      const error = expectThrows(() => front.sendRequest('m', 1), 'ENOENT', dir)
      expect(error.message).toContain(dir)
      expectThrows(() => front.sendEvent('e'), 'ENOENT', dir)
      // The reading side reports the missing inbox through 'error' with a code, never silently dies.
      // (A dispatcher that starts after the removal may first report that it cannot watch it.)
      const missing = await waitFor(() => errors.find((error) => error.code === 'ENOENT'), {
        timeoutMs: 10000,
        what: "an ENOENT 'error' for the missing inbox",
      })
      expect(missing.message).toContain(dir)
    }
    expect(front.closed).toBe(false)
    for (const reported of errors) expect(typeof reported.code).toBe('string')
  })

  test('a dir path that is a file: ENOTDIR naming the path', () => {
    const file = path.join(h.tmpDir(), 'plain-file')
    fs.writeFileSync(file, 'not a directory')
    expectThrows(() => h.track(FileChannel.frontend(file)), 'ENOTDIR', file)
    expectThrows(() => h.track(FileChannel.backend(file)), 'ENOTDIR', file)
    expect(fs.readFileSync(file, 'utf8')).toBe('not a directory')
  })

  test('a dir path below a file: ENOTDIR naming the path', () => {
    const file = path.join(h.tmpDir(), 'plain-file')
    fs.writeFileSync(file, 'x')
    expectThrows(() => h.track(FileChannel.frontend(path.join(file, 'sub', 'chan'))), 'ENOTDIR', file)
  })

  // chmod is Unix; a Windows directory is opened to others by its ACL, and the core's Windows tests
  // check that refusal (Wine's icacls, the only way from here, changes nothing).
  if (process.platform !== 'win32') {
    test('a directory writable by others is refused with EPERM unless allowInsecure', () => {
      const dir = h.channelDir()
      fs.mkdirSync(dir, { mode: 0o700 })
      fs.chmodSync(dir, 0o777)
      expectThrows(() => h.track(FileChannel.frontend(dir)), 'EPERM', dir)
      expect(fs.readdirSync(dir)).toEqual([])
      const channel = h.frontend(dir, { allowInsecure: true })
      expect(channel.sendRequest('m')).toBeTruthy()
    })
  }
})

describe('loss', () => {
  test('a writer overrunning a slow (non-acknowledging) reader by > 100 messages: recv() throws EMAYBELOST once', () => {
    const dir = h.channelDir()
    const writer = h.backend(dir)
    const reader = h.frontend(dir, { acknowledge: false })
    writer.sendEvent('e', 'seen')
    expect(reader.recv().map((m) => m.payload)).toEqual(['seen'])
    for (let i = 0; i < 150; i++) writer.sendEvent('e', i)
    expect(readMessages(dir, BACKEND_OUTBOX)).toHaveLength(100)
    // The file alone cannot tell 150 new messages from exactly 100: possible loss, not certain.
    expectThrows(() => reader.recv(), 'EMAYBELOST', path.join(dir, BACKEND_OUTBOX))
    expect(reader.recv().map((m) => m.payload)).toEqual(Array.from({ length: 100 }, (_, i) => i + 50))
    expect(reader.recv()).toEqual([])
  })

  test("overrun of a reader that last saw an empty inbox is EMAYBELOST too (through 'error')", async () => {
    const dir = h.channelDir()
    const writer = h.backend(dir)
    const reader = h.frontend(dir, { acknowledge: false })
    expect(reader.recv()).toEqual([])
    for (let i = 0; i < 150; i++) writer.sendEvent('e', i)
    const errors = []
    reader.on('error', (error) => errors.push(error))
    await waitFor(() => errors.length > 0, { what: 'EMAYBELOST' })
    expect(errors.map((e) => e.code)).toEqual(['EMAYBELOST'])
    expect(errors[0].message).toContain(path.join(dir, BACKEND_OUTBOX))
    expect(reader.recv().map((m) => m.payload)).toEqual(Array.from({ length: 100 }, (_, i) => i + 50))
  })

  test('more than maxQueued unread messages: the oldest are dropped and reported ELOST, the newest kept', () => {
    const dir = h.channelDir()
    const writer = h.backend(dir)
    const reader = h.frontend(dir, { maxQueued: 5 })
    for (let i = 0; i < 12; i++) writer.sendEvent('e', i)
    expectThrows(() => reader.recvOne(), 'ELOST', 'maxQueued')
    expect(reader.recv().map((m) => m.payload)).toEqual([7, 8, 9, 10, 11])
    expect(reader.recv()).toEqual([])
  })

  test('keeping up is not loss: 100 unread messages at a time, never ELOST', () => {
    const dir = h.channelDir()
    const writer = h.backend(dir)
    const reader = h.frontend(dir, { acknowledge: false })
    const got = []
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 99; i++) writer.sendEvent('e', round * 99 + i)
      got.push(...reader.recv())
    }
    expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 297 }, (_, i) => i))
  })

  test('an acknowledging reader that falls 150 behind loses nothing and is told of no loss', () => {
    const dir = h.channelDir()
    const writer = h.backend(dir)
    const reader = h.frontend(dir) // acknowledge: true (the default)
    expect(reader.recv()).toEqual([])
    for (let i = 0; i < 150; i++) writer.sendEvent('e', i)
    expect(readMessages(dir, BACKEND_OUTBOX)).toHaveLength(150)
    let got
    expect(() => {
      got = reader.recv()
    }).not.toThrow()
    expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 150 }, (_, i) => i))
  })
})

describe('sends larger than the readers accept (maxFileBytes)', () => {
  test('a message too large for any reader is refused with EFBIG naming both sizes; sends queued with it still go', async () => {
    const { dir, front, back } = h.pair({ maxFileBytes: 4096 })
    const big = 'x'.repeat(8000)
    expectThrows(() => front.sendEvent('big', big), 'EFBIG', 'not sent', '4096-byte', FRONTEND_OUTBOX)
    const before = front.promises.sendEvent('before', 1)
    const refused = front.promises.sendEvent('big', big)
    const after = front.promises.sendEvent('after', 2)
    await expect(refused).rejects.toMatchObject({ code: 'EFBIG' })
    await expect(Promise.all([before, after])).resolves.toHaveLength(2)
    // Nothing is wedged: the reader gets everything else, in order.
    const got = []
    await waitFor(() => got.push(...back.recv()) >= 0 && got.length >= 2, { what: 'the two small events' })
    expect(got.map((m) => m.method)).toEqual(['before', 'after'])
    expect(readMessages(dir, FRONTEND_OUTBOX).some((m) => m.method === 'big')).toBe(false)
  })

  test('a send that would make the file larger than the limit is refused; the file is untouched', () => {
    const { dir, front } = h.pair({ maxFileBytes: 4096, acknowledge: false })
    for (let n = 0; n < 3; n++) front.sendEvent('chunk', 'y'.repeat(1000))
    const before = readText(dir, FRONTEND_OUTBOX)
    expectThrows(() => front.sendEvent('chunk', 'y'.repeat(1000)), 'EFBIG', 'would be', 'bytes with this')
    expect(readText(dir, FRONTEND_OUTBOX)).toBe(before)
  })
})
