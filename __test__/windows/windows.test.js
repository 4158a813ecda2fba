'use strict'
// Windows only (run under Wine by scripts/test-windows.sh with jest.windows.config.js; the Linux
// config leaves this directory out): the loader's choice of binary, paths Windows users have
// (spaces, non-ASCII, longer than 260 characters), replacing an inbox another process holds open,
// and several writer processes on one outbox.

const fs = require('node:fs')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const { FRONTEND_OUTBOX, BACKEND_OUTBOX, useHarness } = require('../helpers/channels.js')
const { waitFor } = require('../../test-support')

const ROOT = path.join(__dirname, '..', '..')
const h = useHarness()

/** Runs a Node script in its own process; resolves with { code, stdout, stderr }. */
function runNode(args, { env = process.env, stdin } = {}) {
  const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
  if (stdin !== undefined) child.stdin.end(stdin)
  const done = new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })))
  return { child, done }
}

test('runs on Windows', () => {
  expect(process.platform).toBe('win32')
})

test("require('ipckit') with no ipckit or napi-rs environment variable loads the binary next to it", () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(NAPI_RS|IPCKIT)/i.test(name)))
  const script = `
    const { FileChannel } = require(${JSON.stringify(ROOT)})
    const loaded = Object.keys(require.cache).filter((file) => file.endsWith('.node'))
    process.stdout.write(JSON.stringify({ loaded: loaded.map((file) => require('path').basename(file)), open: typeof FileChannel.frontend }))
  `
  const run = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 30000 })
  expect(run.stderr).toBe('')
  // The published (MSVC) binary when it is there, else the MinGW one `npm run build:windows` makes.
  const msvc = `ipckit.win32-${process.arch}-msvc.node`
  const expected = fs.existsSync(path.join(ROOT, msvc)) ? msvc : `ipckit.win32-${process.arch}-gnu.node`
  expect(JSON.parse(run.stdout)).toEqual({ loaded: [expected], open: 'function' })
})

test('a channel under a path with spaces and non-ASCII letters: a backend in another process answers', async () => {
  const dir = path.join(h.tmpDir(), 'José Müller', 'AppData Local', 'ipckit 通道')
  const backend = h.peer(['backend', dir])
  await backend.ready()
  const front = h.frontend(dir)
  expect(await front.request('add', { a: 2, b: 40 }, { timeoutMs: 20000 })).toBe(42)
  expect(await front.request('echo', { name: 'Zoë' }, { timeoutMs: 20000 })).toEqual({ name: 'Zoë' })
  expect(fs.readdirSync(dir)).toEqual(expect.arrayContaining(['.channel_info', FRONTEND_OUTBOX, BACKEND_OUTBOX]))
})

test('a channel directory longer than 260 characters works both ways', async () => {
  let dir = h.tmpDir()
  while (dir.length <= 300) dir = path.join(dir, 'a-rather-long-directory-name-0123456789')
  const back = h.backend(dir)
  back.serve({ twice: (n) => n * 2 })
  const front = h.frontend(dir)
  expect(dir.length).toBeGreaterThan(260)
  expect(await front.request('twice', 21, { timeoutMs: 20000 })).toBe(42)
  const events = []
  // (the backend's own backend_ready announcement is an event too)
  front.on('event', (message) => message.method === 'e' && events.push(message.payload))
  back.sendEvent('e', 'long')
  await waitFor(() => events.length === 1, { timeoutMs: 20000, what: 'the event' })
  expect(events).toEqual(['long'])
})

test('close() lets go of the directory: removed at once after a round trip, every time', async () => {
  // Callers remove the directory right after close(). A directory a watch or a read still holds
  // open is only marked for deletion on Windows: removing it fails or leaves it behind.
  for (let round = 0; round < 25; round++) {
    const root = path.join(h.tmpDir(), `round-${round}`)
    const dir = path.join(root, 'chan')
    const back = h.backend(dir)
    back.serve({ twice: (n) => n * 2 })
    const front = h.frontend(dir)
    expect(await front.request('twice', round, { timeoutMs: 20000 })).toBe(round * 2)
    front.close()
    back.close()
    fs.rmSync(root, { recursive: true })
    expect([round, fs.existsSync(root)]).toEqual([round, false])
  }
})

test('a third process holding the inbox open while the writer replaces it: nothing lost or repeated, all exit', async () => {
  const dir = h.channelDir()
  const count = 300
  const front = h.frontend(dir)
  const seq = []
  front.on('event', (message) => seq.push(message.payload))
  const writer = h.peer(['burst', dir, String(count)])
  await writer.ready()
  // The holder opens the frontend's inbox (the file the writer replaces) again and again, holding
  // it 100 ms each time with 50 ms between, as a virus scanner would, until stdin ends.
  const holder = runNode([
    '-e',
    `
    const fs = require('fs')
    const file = ${JSON.stringify(path.join(dir, BACKEND_OUTBOX))}
    let holds = 0, stop = false
    process.stdin.on('data', () => {}).on('end', () => (stop = true))
    const hold = () => {
      if (stop) return process.stdout.write(JSON.stringify({ holds }))
      const fd = fs.openSync(file, 'r')
      holds++
      setTimeout(() => { fs.closeSync(fd); setTimeout(hold, 50) }, 100)
    }
    hold()
    `,
  ])
  writer.stdin.write('go\n')
  const sent = await writer.nextLine((line) => line.sent !== undefined || line.fatal !== undefined, 120000)
  expect(sent).toEqual({ sent: count })
  holder.child.stdin.end()
  const held = await holder.done
  expect(held.stderr).toBe('')
  expect(JSON.parse(held.stdout).holds).toBeGreaterThan(1)
  await waitFor(() => seq.length >= count, { timeoutMs: 20000, what: `${count} events` })
  expect(seq).toEqual(Array.from({ length: count }, (_, i) => i))
  // Closed first: an open frontend may be replacing its acknowledgement (through a temporary
  // file) at any moment.
  front.close()
  // The writer exits by itself, and leaves neither its lock nor a temporary file.
  expect((await writer.exited).code).toBe(0)
  expect(fs.readdirSync(dir).filter((name) => /\.(lock|tmp)$/.test(name))).toEqual([])
})

test('four writer processes append to one outbox at once; a reader gets every message exactly once', async () => {
  const dir = h.channelDir()
  const perWriter = 150
  const reader = h.frontend(dir)
  const seen = new Map()
  const problems = []
  reader.on('error', (error) => problems.push(error.code))
  reader.on('event', (message) => {
    const key = `${message.payload.w}:${message.payload.i}`
    seen.set(key, (seen.get(key) ?? 0) + 1)
  })
  const script = `
    const { FileChannel } = require(${JSON.stringify(ROOT)})
    // Four writers contend for one lock: a patient lock timeout, this test is about loss.
    const ch = FileChannel.backend(process.argv[1], { lockTimeoutMs: 10000 })
    const [count, tag] = [Number(process.argv[2]), process.argv[3]]
    let i = 0
    const timer = setInterval(() => {
      ch.sendEvent('node', { i, w: tag })
      if (++i === count) { clearInterval(timer); ch.close() }
    }, 2)
  `
  const writers = ['w1', 'w2', 'w3', 'w4'].map((tag) => runNode(['-e', script, dir, String(perWriter), tag]).done)
  for (const result of await Promise.all(writers)) expect(result).toEqual({ code: 0, stdout: '', stderr: '' })
  await waitFor(() => seen.size >= 4 * perWriter, { timeoutMs: 20000, what: 'every message' })
  expect(problems).toEqual([])
  expect(seen.size).toBe(4 * perWriter)
  expect([...seen.values()].every((n) => n === 1)).toBe(true)
})
