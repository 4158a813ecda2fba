'use strict'

// The `ipckit` command (bin/ipckit.js), run as a child process with the Node running jest,
// against temporary channels with a FileChannel of this process on the other side.

const fs = require('node:fs')
const { useHarness, readMessages, FRONTEND_OUTBOX } = require('./helpers/channels.js')
const { waitFor, sleep, spawnLines, runProcess } = require('../test-support')
const path = require('node:path')
const { FileChannel } = require('..')

const BIN = path.join(__dirname, '..', 'bin', 'ipckit.js')
const VERSION = require('../package.json').version

/** Runs `ipckit ...args`; resolves with { code, stdout, stderr } whatever the exit code. */
async function ipckit(args, { env = {}, input } = {}) {
  const { code, stdout, stderr } = await runProcess(process.execPath, [BIN, ...args], {
    env: { NO_COLOR: '', FORCE_COLOR: '', ...env },
    input,
  })
  return { code, stdout, stderr }
}

/** Starts `ipckit monitor --json ...`: a LineProcess (test-support) of its JSON lines. */
function startMonitor(args, env = {}) {
  return spawnLines(process.execPath, [BIN, 'monitor', ...args], {
    env: { NO_COLOR: '', FORCE_COLOR: '', ...env },
    stdin: 'ignore',
    json: true,
    label: 'ipckit monitor',
  })
}

const h = useHarness()
let dir
beforeEach(() => {
  dir = h.tmpDir('ipckit-cli-')
})

function open(role, options) {
  return h.track(FileChannel[role](dir, options))
}

describe('ipckit (top level)', () => {
  test('--help lists every command; --version prints the package version', async () => {
    const help = await ipckit(['--help'])
    expect(help.code).toBe(0)
    for (const command of ['monitor', 'send', 'event', 'info', 'bench']) expect(help.stdout).toContain(`  ${command} `)
    const version = await ipckit(['--version'])
    expect(version).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' })
  })

  test('no command prints the help on stdout and exits 0, like --help', async () => {
    const none = await ipckit([])
    const help = await ipckit(['--help'])
    expect(none).toEqual({ code: 0, stdout: help.stdout, stderr: '' })
    expect(none.stdout).toContain('Usage: ipckit <command>')
    expect(none.stdout).toContain('--allow-insecure')
  })

  test('an unknown command exits 2 with one line naming the closest command', async () => {
    const typo = await ipckit(['moniter'])
    expect(typo).toEqual({
      code: 2,
      stdout: '',
      stderr: "ipckit: unknown command 'moniter' (did you mean 'monitor'?); see 'ipckit --help'\n",
    })
    const far = await ipckit(['frobnicate'])
    expect(far.code).toBe(2)
    expect(far.stderr).toBe("ipckit: unknown command 'frobnicate'; see 'ipckit --help'\n")
    const option = await ipckit(['--verison'])
    expect(option.code).toBe(2)
    expect(option.stderr).toContain("(did you mean '--version'?)")
    const helpOf = await ipckit(['help', 'info'])
    expect(helpOf.code).toBe(0)
    expect(helpOf.stdout).toContain('Usage: ipckit info')
  })

  test.each(['monitor', 'send', 'event', 'info', 'bench'])('%s --help', async (command) => {
    const result = await ipckit([command, '--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`Usage: ipckit ${command}`)
    expect(result.stderr).toBe('')
  })

  test('an unknown option is a one-line usage error naming the command and the closest option', async () => {
    const result = await ipckit(['send', dir, 'x', '--bogus'])
    expect(result.code).toBe(2)
    expect(result.stderr).toBe("ipckit send: unknown option '--bogus'; see 'ipckit send --help'\n")
    const typo = await ipckit(['send', dir, 'x', '--timout-ms', '5'])
    expect(typo.code).toBe(2)
    expect(typo.stderr).toBe(
      "ipckit send: unknown option '--timout-ms' (did you mean '--timeout-ms'?); see 'ipckit send --help'\n",
    )
    const insecure = await ipckit(['monitor', dir, '--allow-insecur'])
    expect(insecure.stderr).toContain("(did you mean '--allow-insecure'?)")
  })

  test.each([
    [['info'], 'ipckit info: expected one <dir>, got 0 arguments'],
    [['monitor', 'a', 'b'], 'ipckit monitor: expected one <dir>, got 2 arguments'],
    [['send', 'a'], 'ipckit send: expected <dir> <method> [json], got 1 argument'],
    [['event'], 'ipckit event: expected <dir> <name> [json], got 0 arguments'],
    [['send', 'a', 'm', '{a: 1}'], 'ipckit send: the params argument is not valid JSON'],
    [['monitor', 'a', '--count'], "ipckit monitor: Option '--count <value>' argument missing"],
  ])('usage errors are one line on stderr with exit 2: %j', async (args, start) => {
    const result = await ipckit(args)
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr.startsWith(start)).toBe(true)
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
  })

  // chmod is Unix (on Windows the ACL decides; the core's own Windows tests check it).
  if (process.platform !== 'win32') {
    test('--allow-insecure: a directory others can write is refused (exit 1, naming the flag) unless given', async () => {
      fs.chmodSync(dir, 0o777)
      for (const args of [
        ['event', dir, 'e'],
        ['send', dir, 'm', '--timeout-ms', '1'],
        ['monitor', dir, '--duration-ms', '1'],
      ]) {
        const refused = await ipckit(args)
        expect(refused.code).toBe(1)
        expect(refused.stderr).toContain('--allow-insecure (EPERM)')
        expect(refused.stderr.trimEnd().split('\n')).toHaveLength(1)
      }
      expect(await ipckit(['event', dir, 'e', '--allow-insecure'])).toEqual({ code: 0, stdout: '', stderr: '' })
      const monitor = await ipckit(['monitor', dir, '--allow-insecure', '--count', '1', '--json'])
      expect(monitor.code).toBe(0)
      expect(JSON.parse(monitor.stdout)).toMatchObject({ type: 'event', method: 'e', direction: 'frontend->backend' })
      const send = await ipckit(['send', dir, 'm', '--allow-insecure', '--timeout-ms', '1'])
      expect(send.code).toBe(1)
      expect(send.stderr).toContain("no response to 'm'")
    })
  }
})

describe('ipckit send', () => {
  test('prints the response payload as JSON and exits 0', async () => {
    open('backend').serve({ add: ({ a, b }) => a + b, echo: (params) => params })
    const added = await ipckit(['send', dir, 'add', '{"a": 2, "b": 40}'])
    expect(added).toEqual({ code: 0, stdout: '42\n', stderr: '' })
    const payload = { text: 'héllo ✓', list: [1, null, true], nested: { k: 'v' } }
    const echoed = await ipckit(['send', dir, 'echo', JSON.stringify(payload)])
    expect(echoed.code).toBe(0)
    expect(JSON.parse(echoed.stdout)).toEqual(payload)
    expect(echoed.stdout).toContain('\n  "nested": {\n    "k": "v"\n  },\n')
    const compact = await ipckit(['send', dir, 'echo', JSON.stringify(payload), '--compact'])
    expect(compact.stdout).toBe('{"list":[1,null,true],"nested":{"k":"v"},"text":"héllo ✓"}\n')
  })

  test('no params sends null; "-" reads the params from standard input', async () => {
    const seen = []
    open('backend').serve({ echo: (params) => (seen.push(params), params) })
    expect((await ipckit(['send', dir, 'echo'])).stdout).toBe('null\n')
    const piped = await ipckit(['send', dir, 'echo', '-', '--compact'], { input: '[1, "two"]' })
    expect(piped).toEqual({ code: 0, stdout: '[1,"two"]\n', stderr: '' })
    expect(seen).toEqual([null, [1, 'two']])
  })

  test('an error response exits 1 with the error text on stderr', async () => {
    open('backend').serve({
      fail: () => {
        throw new Error('disk on fire')
      },
    })
    const result = await ipckit(['send', dir, 'fail', '{}'])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe("ipckit send: 'fail' failed: disk on fire\n")
  })

  test('--full prints the whole response message', async () => {
    open('backend').serve({ ping: () => 'pong' })
    const result = await ipckit(['send', dir, 'ping', '--full', '--compact'])
    expect(result.code).toBe(0)
    const message = JSON.parse(result.stdout)
    expect(message).toMatchObject({ type: 'response', payload: 'pong' })
    expect(typeof message.replyTo).toBe('string')
  })

  test('no response within --timeout-ms exits 1 and says so', async () => {
    open('backend') // opened, but nobody answers
    const started = Date.now()
    const result = await ipckit(['send', dir, 'slow', '--timeout-ms', '300'])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/no response to 'slow' \(request [0-9a-f-]{36}\) within 300 ms/)
    expect(Date.now() - started).toBeLessThan(10000)
  })

  test('--role backend sends a request to the frontend', async () => {
    open('frontend').serve({ whoami: () => 'frontend' })
    const result = await ipckit(['send', dir, 'whoami', '--role', 'backend'])
    expect(result).toEqual({ code: 0, stdout: '"frontend"\n', stderr: '' })
  })

  test('bad input: invalid JSON, a bad role, a bad timeout, a missing directory', async () => {
    const badJson = await ipckit(['send', dir, 'm', '{a: 1}'])
    expect(badJson.code).toBe(2)
    expect(badJson.stderr).toContain('not valid JSON')
    const badRole = await ipckit(['send', dir, 'm', '--role', 'middle'])
    expect(badRole.code).toBe(2)
    expect(badRole.stderr).toContain("--role must be 'frontend' or 'backend'")
    const badTimeout = await ipckit(['send', dir, 'm', '--timeout-ms', 'soon'])
    expect(badTimeout.code).toBe(2)
    const missing = path.join(dir, 'nope')
    const noDir = await ipckit(['send', missing, 'm'])
    expect(noDir.code).toBe(1)
    expect(noDir.stderr).toContain(`no channel directory at ${missing}`)
    expect(fs.existsSync(missing)).toBe(false) // a typo does not create a channel
    const tooFew = await ipckit(['send', dir])
    expect(tooFew.code).toBe(2)
  })
})

describe('ipckit event', () => {
  test('sends an event with its payload, from either role', async () => {
    const backend = open('backend')
    const frontend = open('frontend')
    const toBackend = new Promise((resolve) => backend.once('event', resolve))
    const toFrontend = new Promise((resolve) => frontend.once('event', resolve))
    expect(await ipckit(['event', dir, 'progress', '{"pct": 50}'])).toEqual({ code: 0, stdout: '', stderr: '' })
    expect(await toBackend).toMatchObject({ type: 'event', method: 'progress', payload: { pct: 50 } })
    expect((await ipckit(['event', dir, 'reload', '--role', 'backend'])).code).toBe(0)
    expect(await toFrontend).toMatchObject({ type: 'event', method: 'reload', payload: null })
  })
})

describe('ipckit info', () => {
  test('reports channel info, counts, permissions and a free lock', async () => {
    open('backend').serve({ ping: () => 'pong' })
    const frontend = open('frontend')
    await frontend.request('ping')
    frontend.sendEvent('hello', 1)
    // serve() answers an unknown method with an error response.
    await expect(frontend.request('nobody')).rejects.toMatchObject({ code: 'EREMOTE' })
    // The answered ping leaves the outbox once the backend's reader has moved past it (issue 18).
    await waitFor(() => readMessages(dir, FRONTEND_OUTBOX).length === 2, { what: 'the answered ping to leave' })

    const result = await ipckit(['info', dir, '--json'])
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(report.channelInfo.content).toMatchObject({ protocol: 'file-ipc', version: '1.0' })
    const f2b = report.files.frontend_to_backend
    // The answered ping left the outbox at the next write (issue 18); the last request stays, the
    // backend reader's anchor.
    expect(f2b).toMatchObject({ exists: true, messages: 2, byType: { request: 1, response: 0, event: 1 } })
    const b2f = report.files.backend_to_frontend
    // The event is the serve() backend's backend_ready announcement (issue 13).
    expect(b2f).toMatchObject({
      exists: true,
      messages: 3,
      byType: { request: 0, response: 2, event: 1 },
      errorResponses: 1,
    })
    if (process.platform !== 'win32') {
      expect(f2b).toMatchObject({ mode: '0600', readable: true, writable: true })
      expect(f2b.uid).toBe(process.getuid())
    }
    expect(f2b.lock).toMatchObject({ held: false })
    // The backend's channel reads frontend_to_backend.json and publishes acknowledgements.
    expect(f2b.readers).toEqual([expect.objectContaining({ pid: process.pid, live: true, running: true })])

    const text = await ipckit(['info', dir])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain('file-ipc 1.0')
    expect(text.stdout).toMatch(/messages\s+2 \(1 request, 0 responses, 1 event\)/)
    expect(text.stdout).toMatch(/lock\s+free/)
    expect(text.stdout).toMatch(new RegExp(`readers +1 acknowledging[^\n]*\n +[0-9a-f]{8} +live: PID ${process.pid}`))
    expect(text.stdout).not.toContain('\x1b[')
  })

  test('shows a held lock with its PID and age, and a stale one as stale', async () => {
    open('backend')
    const lock = path.join(dir, 'backend_to_frontend.lock')
    fs.writeFileSync(lock, `${process.pid}\n`)
    let report = JSON.parse((await ipckit(['info', dir, '--json'])).stdout)
    expect(report.files.backend_to_frontend.lock).toMatchObject({
      held: true,
      pid: process.pid,
      running: true,
      stale: false,
    })
    expect(report.files.frontend_to_backend.lock.held).toBe(false)

    const old = new Date(Date.now() - 60_000)
    fs.utimesSync(lock, old, old)
    report = JSON.parse((await ipckit(['info', dir, '--json'])).stdout)
    expect(report.files.backend_to_frontend.lock).toMatchObject({ held: true, stale: true })
    expect(report.files.backend_to_frontend.lock.ageMs).toBeGreaterThan(50_000)
    const text = await ipckit(['info', dir])
    expect(text.stdout).toMatch(new RegExp(`held by PID ${process.pid} \\(running\\), 1 min old: stale`))
    fs.unlinkSync(lock)
  })

  test('a malformed message file is reported, not fatal', async () => {
    // Written by hand: a FileChannel here would report the bad inbox itself.
    fs.writeFileSync(path.join(dir, '.channel_info'), '{"created": 1, "protocol": "file-ipc", "version": "1.0"}')
    fs.writeFileSync(path.join(dir, 'backend_to_frontend.json'), '[]')
    fs.writeFileSync(path.join(dir, 'frontend_to_backend.json'), '[{"id": ')
    const result = await ipckit(['info', dir, '--json'])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout).files.frontend_to_backend.parseError).toBeTruthy()
  })

  test('a directory without a channel exits 1; a missing one too', async () => {
    const empty = await ipckit(['info', dir])
    expect(empty.code).toBe(1)
    expect(empty.stderr).toContain('holds no channel')
    const missing = await ipckit(['info', path.join(dir, 'nope')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('no channel directory')
  })
})

describe('ipckit monitor', () => {
  // A serve() backend announces itself (backend_ready, issue 13): wait until it is on disk, so
  // that it is the first message in a known order.
  const announced = async () => {
    const outbox = path.join(dir, 'backend_to_frontend.json')
    await waitFor(() => fs.readFileSync(outbox, 'utf8').includes('backend_ready'), {
      timeoutMs: 10000,
      intervalMs: 5,
      what: 'backend_ready',
    })
  }

  test('--json shows both directions once each, live, without taking messages from the peers', async () => {
    const backend = open('backend').serve({ add: ({ a, b }) => a + b })
    const frontend = open('frontend')
    await announced()
    const early = frontend.sendRequest('add', { a: 1, b: 1 })
    await frontend.waitResponse(early, 5000)
    // A live reader's acknowledgement may be mid-replacement (a `.tmp` for a moment), and a
    // writer thread may hold a lock for a moment: not the monitor's.
    const files = () =>
      fs
        .readdirSync(dir)
        .filter((name) => !name.endsWith('.tmp') && !name.endsWith('.lock'))
        .sort()
    const before = files()
    const infoMtime = fs.statSync(path.join(dir, '.channel_info')).mtimeMs

    const monitor = startMonitor([dir, '--json', '--count', '6'])
    await monitor.waitForLine(() => true, { from: 2, what: 'its first 3 lines' }) // what was already there
    const frontendEvents = []
    frontend.on('event', (message) => frontendEvents.push(message))
    expect(await frontend.request('add', { a: 20, b: 22 })).toBe(42)
    backend.sendEvent('tick', { n: 1 })
    const { code, lines: seen, stderr } = await monitor.exited
    expect(stderr).toBe('')
    expect(code).toBe(0)

    expect(seen.map((m) => [m.direction, m.type, m.method ?? m.replyTo])).toEqual([
      ['backend->frontend', 'event', 'backend_ready'],
      ['frontend->backend', 'request', 'add'],
      ['backend->frontend', 'response', early],
      ['frontend->backend', 'request', 'add'],
      ['backend->frontend', 'response', seen[3].id],
      ['backend->frontend', 'event', 'tick'],
    ])
    expect(new Set(seen.map((m) => m.id)).size).toBe(6)
    expect(seen[4]).toMatchObject({ payload: 42, file: 'backend_to_frontend.json' })
    // The real frontend still got the event: the monitor took nothing away.
    await waitFor(() => frontendEvents.length > 0, { what: 'the frontend to get the event' })
    expect(frontendEvents.map((m) => m.method)).toEqual(['backend_ready', 'tick'])
    // It wrote nothing: no new files, and the files it read were not touched by it.
    expect(files()).toEqual(before)
    expect(fs.statSync(path.join(dir, '.channel_info')).mtimeMs).toBe(infoMtime)
  })

  test('plain view: one line a message; colours only when forced, never with NO_COLOR', async () => {
    const backend = open('backend').serve({
      ping: () => 'pong',
      fail: () => {
        throw new Error('nope')
      },
    })
    const frontend = open('frontend')
    await announced()
    await frontend.request('ping', { x: 1 })
    await expect(frontend.request('fail')).rejects.toMatchObject({ code: 'EREMOTE' })
    backend.sendEvent('tick', [1, 2])
    await waitFor(() => !readMessages(dir, FRONTEND_OUTBOX).some((m) => m.method === 'ping'), {
      what: 'the answered ping to leave',
    })

    // The answered ping request has left the frontend's outbox (issue 18: settled requests are
    // withdrawn at the next write); the fail request is still there, the backend's anchor.
    const plain = await ipckit(['monitor', dir, '--count', '5'])
    expect(plain.code).toBe(0)
    const lines = plain.stdout.trim().split('\n').slice(1) // after the backend's backend_ready
    expect(lines).toHaveLength(4)
    // Lines come in timestamp order; messages of the two files that share a millisecond may
    // come in either order, so look each one up.
    const line = (pattern) => {
      const found = lines.filter((l) => pattern.test(l))
      expect(found).toHaveLength(1)
      return found[0]
    }
    expect(lines.filter((l) => / request {3}ping /.test(l))).toEqual([])
    // The request is gone, so the monitor names the reply by its id alone.
    line(/^\d\d:\d\d:\d\d\.\d{3} {2}F←B {2}response {2}↩ \([0-9a-f]{8}\)\s+"pong"$/)
    line(/^\d\d:\d\d:\d\d\.\d{3} {2}F→B {2}request {3}fail \([0-9a-f]{8}\)\s+null$/)
    line(/F←B {2}response {2}↩ fail \([0-9a-f]{8}\)\s+error: nope$/)
    expect(lines[3]).toMatch(/F←B {2}event {5}tick\s+\[1,2\]$/)
    expect(plain.stdout).not.toContain('\x1b[')

    const forced = await ipckit(['monitor', dir, '--count', '1'], { env: { FORCE_COLOR: '1' } })
    expect(forced.stdout).toContain('\x1b[')
    const noColor = await ipckit(['monitor', dir, '--count', '1'], { env: { FORCE_COLOR: '1', NO_COLOR: '1' } })
    expect(noColor.stdout).not.toContain('\x1b[')
  })

  test('--new skips what is already there; --duration-ms ends it; a burst is printed once each', async () => {
    const backend = open('backend')
    const frontend = open('frontend')
    frontend.sendEvent('old')
    const monitor = startMonitor([dir, '--json', '--new', '--duration-ms', '3000'])
    // It is watching once it prints a probe (a loaded machine can take a while to start node).
    for (let probe = 0; monitor.lines.length === 0; probe++) {
      if (probe === 100) throw new Error(`the monitor printed no probe in 10 s: ${(await monitor.exited).stderr}`)
      frontend.sendEvent('probe', probe)
      await sleep(100)
    }
    for (let i = 0; i < 30; i++) frontend.sendEvent('burst', i) // many share a millisecond
    backend.sendEvent('back')
    const { code, lines: seen } = await monitor.exited
    expect(code).toBe(0)
    expect(seen.filter((m) => m.method === 'burst').map((m) => m.payload)).toEqual([...Array(30).keys()])
    expect(seen.some((m) => m.method === 'old')).toBe(false)
    expect(seen.filter((m) => m.method === 'back')).toHaveLength(1)
  })

  test('a missing directory exits 1', async () => {
    const result = await ipckit(['monitor', path.join(dir, 'nope'), '--duration-ms', '100'])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('no channel directory')
  })
})

describe('ipckit bench', () => {
  test('--json reports percentiles of N round trips', async () => {
    const result = await ipckit(['bench', '--count', '20', '--warmup', '2', '--json'])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(report.count).toBe(20)
    for (const key of ['p50Ms', 'p90Ms', 'p99Ms', 'minMs', 'maxMs', 'meanMs', 'requestsPerSecond']) {
      expect(report[key]).toBeGreaterThan(0)
    }
    expect(report.p50Ms).toBeLessThanOrEqual(report.p99Ms)
    expect(report.minMs).toBeLessThanOrEqual(report.p50Ms)
  })

  test('text output, and --dir keeps the given directory', async () => {
    const result = await ipckit(['bench', '--count', '5', '--warmup', '0', '--dir', dir])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/5 sequential round trips/)
    expect(result.stdout).toMatch(/p50 [\d.]+ ms {3}p90 [\d.]+ ms {3}p99 [\d.]+ ms/)
    expect(fs.existsSync(path.join(dir, 'frontend_to_backend.json'))).toBe(true)
  })
})
