'use strict'

// Blender as a real DCC backend, end to end: __test__/blender/backend.py serves with ipckit_peer
// on Blender's main thread under `blender -b` (bpy scene queries, new objects, Workbench renders),
// driven by a Node frontend. Calls, progress, cancellation seen by the handler, `kill -9`,
// restarts on the same channel directory with the frontend left open, a frontend opened late, a
// reopened frontend. Run by jest.blender.config.js (scripts/test-all.sh, stage "blender"); no
// Blender fails the suite (helpers/blender.js installs it with apt when it can).

const fs = require('node:fs')
const path = require('node:path')
const { createHarness, expectRejects, settle, readMessages, BACKEND_OUTBOX } = require('../helpers/channels')
const { waitFor } = require('../../test-support')
const py = require('../helpers/python')
const { blenderSite, startBlender, kill9, readyOrExit } = require('../helpers/blender')

const BACKEND = path.join(__dirname, 'backend.py')
// Generous: Blender starts in ~1.5 s here, but the machine has two loaded cores.
const READY_MS = 60000
const CALL_MS = 30000
// A fresh --factory-startup scene.
const FRESH_SCENE = ['Camera', 'Cube', 'Light']

const h = createHarness()

beforeAll(() => {
  blenderSite()
}, 600000)

afterEach(async () => {
  await py.killAll()
  await h.cleanup()
})

/** Starts backend.py on `dir` (a new one by default) and opens a ready frontend on it. */
async function backend({ dir = h.channelDir(), options, frontend = true } = {}) {
  const blender = startBlender(h, BACKEND, options ? [dir, JSON.stringify(options)] : [dir])
  if (!frontend) return { dir, blender }
  const channel = h.frontend(dir)
  await readyOrExit(channel, blender, READY_MS)
  return { dir, blender, channel }
}

/** What a failed call after a restart left behind: for the failure message. */
function diagnose(dir, channel, blender) {
  const summary = (name) => {
    try {
      return readMessages(dir, name).map((m) =>
        [m.type, m.method ?? '', m.reply_to ?? m.payload?.requestId ?? m.payload?.progressToken ?? '', m.id].join(' '),
      )
    } catch (error) {
      return [String(error)]
    }
  }
  return JSON.stringify(
    {
      ran: ran(blender),
      peer: channel.peer,
      stats: channel.stats,
      dir: fs.readdirSync(dir),
      backendOutbox: summary(BACKEND_OUTBOX),
      frontendOutbox: summary('frontend_to_backend.json'),
      blender: blender.lines.filter((line) => !line.unparsed),
      stderr: blender.stderr.trim().split('\n').slice(-6),
    },
    null,
    2,
  )
}

/** [method, id] of each handler `blender` has said it started so far. */
function ran(blender) {
  return blender.lines.filter((line) => line.started).map((line) => [line.method, line.started])
}

/**
 * The requests whose handlers `blender` started ({ id, method }), once it has printed `count` of
 * them (its stdout may reach us after the response it printed them before).
 */
async function started(blender, count) {
  const lines = () => blender.lines.filter((line) => line.started)
  await blender.waitFor(() => lines().length >= count, CALL_MS, `${count} started handlers`)
  return lines().map((line) => ({ id: line.started, method: line.method }))
}

test('calls run real bpy work on the main thread: scene queries, new objects', async () => {
  const { blender, channel } = await backend()
  // ready() may resolve on the backend's heartbeat, before its backend_ready (with the methods) is read.
  await waitFor(() => channel.peer.methods, { timeoutMs: CALL_MS, what: 'the announced methods' })
  expect(channel.peer.methods).toEqual(['add_cube', 'progress_burst', 'render', 'scene', 'wait_cancel'])
  const scene = await channel.request('scene', null, { timeoutMs: CALL_MS })
  const { pid } = await blender.waitFor((line) => line.ready === true, CALL_MS, 'the ready line')
  expect(scene).toEqual({ objects: FRESH_SCENE, main_thread: true, pid })
  expect(await channel.request('add_cube', { location: [3, 0, 0] }, { timeoutMs: CALL_MS })).toBe(4)
  expect(await channel.request('add_cube', { size: 0.5 }, { timeoutMs: CALL_MS })).toBe(5)
  expect((await channel.request('scene', null, { timeoutMs: CALL_MS })).objects).toEqual([
    'Camera',
    'Cube',
    'Cube.001',
    'Cube.002',
    'Light',
  ])
})

test('a Workbench render reports its progress frame by frame, in order, before the result', async () => {
  const { channel } = await backend()
  const updates = []
  const result = await channel.request(
    'render',
    { frames: 4, size: 64 },
    { timeoutMs: CALL_MS, onProgress: (update) => updates.push(update) },
  )
  expect(result).toEqual({ frames: 4, size: 64 })
  expect(updates).toEqual([1, 2, 3, 4].map((frame) => ({ progress: frame, total: 4, message: `frame ${frame}` })))
})

test('aborting a call cancels it in Blender: the handler sees ctx.cancelled and says so', async () => {
  const { blender, channel } = await backend()
  const seen = []
  channel.on('event', (message) => message.method === 'cancel_seen' && seen.push(message.payload))
  const abort = new AbortController()
  // The handler sends progress 0 once it runs: abort then, so the cancel reaches a running handler.
  const call = channel.request(
    'wait_cancel',
    {},
    { timeoutMs: CALL_MS, signal: abort.signal, onProgress: () => abort.abort('user') },
  )
  await expectRejects(call, 'ABORT_ERR')
  const [{ id }] = await started(blender, 1)
  await blender.waitFor((line) => line.cancel_seen === id, CALL_MS, 'the handler seeing its cancel')
  await waitFor(() => seen.length === 1, { timeoutMs: CALL_MS, what: 'the cancel_seen event' })
  expect(seen).toEqual([{ requestId: id, reason: 'user' }])
  // Blender goes on serving.
  expect((await channel.request('scene', null, { timeoutMs: CALL_MS })).objects).toEqual(FRESH_SCENE)
})

test('kill -9 of Blender: the call in flight and a new call reject with EPEERGONE; a waitForPeer call waits for the restart', async () => {
  const { dir, blender, channel } = await backend()
  let progressed = false
  const inFlight = settle(
    channel.request('wait_cancel', {}, { timeoutMs: 120000, onProgress: () => (progressed = true) }),
  )
  await waitFor(() => progressed, { timeoutMs: CALL_MS, what: 'the long call to start' })
  let since = performance.now()
  await kill9(blender)
  const { error } = await inFlight
  expect(error?.code).toBe('EPEERGONE')
  // Detected from the pid and the heartbeat within a few seconds, not at the end of timeoutMs.
  expect(performance.now() - since).toBeLessThan(15000)
  expect(channel.peer.state).toBe('gone')

  // A request to a peer known to be gone fails at once rather than waiting out its timeoutMs.
  since = performance.now()
  await expectRejects(channel.request('scene', null, { timeoutMs: CALL_MS }), 'EPEERGONE')
  expect(performance.now() - since).toBeLessThan(5000)

  // With waitForPeer the call waits (within its timeoutMs) for the peer to be ready again.
  const waiting = settle(channel.request('add_cube', {}, { waitForPeer: true, timeoutMs: 60000 }))
  const again = startBlender(h, BACKEND, [dir])
  const { value, error: waitError } = await waiting
  if (waitError) throw new Error(`add_cube with waitForPeer: ${waitError.message}\n${diagnose(dir, channel, again)}`)
  await started(again, 1) // its stdout may reach us after the response
  // On failure: what the new Blender ran, and what the frontend knew of it.
  expect({ value, error: waitError?.message, ran: ran(again), peer: channel.peer.state }).toEqual({
    value: FRESH_SCENE.length + 1,
    error: undefined,
    ran: [['add_cube', expect.any(String)]],
    peer: 'ready',
  })
})

test('a restart with the frontend left open replays nothing: answered and abandoned calls stay done', async () => {
  const { dir, blender, channel } = await backend()
  expect(await channel.request('add_cube', {}, { timeoutMs: CALL_MS })).toBe(4)
  expect(await channel.request('add_cube', {}, { timeoutMs: CALL_MS })).toBe(5)
  let frames = 0
  const abandoned = settle(
    channel.request('render', { frames: 100000 }, { timeoutMs: 120000, onProgress: (u) => (frames = u.progress) }),
  )
  await waitFor(() => frames >= 2, { timeoutMs: CALL_MS, what: 'the long render to be under way' })
  await kill9(blender)
  expect((await abandoned).error?.code).toBe('EPEERGONE')
  const before = await started(blender, 3)
  expect(before.map((s) => s.method)).toEqual(['add_cube', 'add_cube', 'render'])
  // Whether the frontend took them out of its outbox or the new backend skips them is not this
  // test's business: the new Blender must not run any of them.
  const again = startBlender(h, BACKEND, [dir])
  await readyOrExit(channel, again, READY_MS)
  // The scene is a fresh one plus only what is asked now (on failure: what the new Blender ran).
  const added = await settle(channel.request('add_cube', {}, { timeoutMs: CALL_MS }))
  if (added.error)
    throw new Error(`add_cube after the restart: ${added.error.message}\n${diagnose(dir, channel, again)}`)
  // (Its stdout may reach us after the response: wait for the line it printed first.)
  await started(again, 1)
  expect({ added: added.value ?? added.error.message, ran: ran(again) }).toEqual({
    added: FRESH_SCENE.length + 1,
    ran: [['add_cube', expect.any(String)]],
  })
  expect((await channel.request('scene', null, { timeoutMs: CALL_MS })).objects).toEqual([
    'Camera',
    'Cube',
    'Cube.001',
    'Light',
  ])
  const after = await started(again, 2)
  expect(after.map((s) => s.method)).toEqual(['add_cube', 'scene'])
  for (const { id } of before) expect(after.map((s) => s.id)).not.toContain(id)
})

test('a restarted Blender is not stopped by the outbox lock its killed predecessor left', async () => {
  const { dir, blender, channel } = await backend()
  const { pid } = await blender.waitFor((line) => line.ready === true, CALL_MS, 'the ready line')
  expect(await channel.request('add_cube', {}, { timeoutMs: CALL_MS })).toBe(4)
  await kill9(blender)
  await waitFor(() => channel.peer.state === 'gone', { timeoutMs: CALL_MS, what: 'the peer to be gone' })
  // What a Blender killed in the middle of a send leaves (it sends progress all the time during a
  // render): the reference writer's lock file, holding its PID (PROTOCOL.md, "Writing").
  fs.writeFileSync(path.join(dir, 'backend_to_frontend.lock'), `${pid}\n`)
  const again = startBlender(h, BACKEND, [dir])
  await readyOrExit(channel, again, READY_MS)
  const added = await settle(channel.request('add_cube', {}, { timeoutMs: CALL_MS }))
  if (added.error)
    throw new Error(`add_cube after the restart: ${added.error.message}\n${diagnose(dir, channel, again)}`)
  expect(added.value).toBe(FRESH_SCENE.length + 1)
})

test('a frontend opened after the backend sent more than 100 messages still gets ready() and can call', async () => {
  const { dir, blender } = await backend({ options: { events: 120 }, frontend: false })
  await blender.ready(READY_MS)
  // Precondition: backend_ready has left the file (the reference writer keeps the last 100).
  await waitFor(() => fs.existsSync(path.join(dir, BACKEND_OUTBOX)), { what: 'the backend outbox' })
  const outbox = readMessages(dir, BACKEND_OUTBOX)
  expect(outbox.length).toBeLessThanOrEqual(100)
  expect(outbox.some((m) => m.method === 'backend_ready')).toBe(false)

  const channel = h.frontend(dir)
  await readyOrExit(channel, blender, READY_MS)
  expect((await channel.request('scene', null, { timeoutMs: CALL_MS })).objects).toEqual(FRESH_SCENE)
  // Later messages the backend sends (past the cap: 120 more progress updates) arrive too.
  const updates = []
  expect(
    await channel.request('progress_burst', { count: 120 }, { timeoutMs: CALL_MS, onProgress: (u) => updates.push(u) }),
  ).toBe(120)
  expect(updates.map((u) => u.progress)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1))
})

test("a reopened frontend does not receive the previous session's responses and progress as new messages", async () => {
  const { dir, blender, channel: first } = await backend()
  expect(await first.request('add_cube', {}, { timeoutMs: CALL_MS })).toBe(4)
  const frames = []
  await first.request('render', { frames: 3 }, { timeoutMs: CALL_MS, onProgress: (u) => frames.push(u.progress) })
  expect(frames).toEqual([1, 2, 3])
  const oldIds = new Set((await started(blender, 2)).map((s) => s.id))
  const oldReplies = readMessages(dir, BACKEND_OUTBOX).filter(
    (m) => oldIds.has(m.reply_to) || oldIds.has(m.payload?.progressToken),
  )
  // Precondition: both responses and the three progress updates are still in the file.
  expect(oldReplies.length).toBe(5)
  first.close()

  const isOld = (message) => oldIds.has(message.replyTo) || oldIds.has(message.payload?.progressToken)
  const second = h.frontend(dir)
  const heard = []
  second.on('message', (message) => heard.push(message))
  await second.ready({ timeoutMs: READY_MS })
  // A round trip: by its answer the second frontend has read past everything the first left.
  expect((await second.request('scene', null, { timeoutMs: CALL_MS })).objects).toEqual(
    [...FRESH_SCENE, 'Cube.001'].sort(),
  )
  expect(heard.filter(isOld)).toEqual([])
  expect(second.stats.droppedResponses).toBe(2)
  second.close()

  const third = h.frontend(dir)
  await third.ready({ timeoutMs: READY_MS })
  expect(await third.request('add_cube', {}, { timeoutMs: CALL_MS })).toBe(5)
  expect(third.recv().filter((m) => isOld(m) || m.type === 'response')).toEqual([])
  expect(third.stats.droppedResponses).toBe(3) // the first's two and the second's one
})
