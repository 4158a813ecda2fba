'use strict'

// Our Node channel with the Python companion package `ipckit_peer` (python/ in this repository),
// using only what the Node side offers today: request(), sendRequest()/waitResponse(),
// sendEvent(), on('event') and serve(). The Python side runs from the source tree (python/ is put
// on sys.path), on top of the reference ipckit==0.1.12 found by helpers/python.js: under CI=true a
// missing Python fails this suite; elsewhere the helper creates the venv.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { expectRejects } = require('./helpers/channels')
const { waitFor } = require('../test-support')
const py = require('./helpers/python')

const PYTHON_DIR = path.resolve(__dirname, '..', 'python')
const POLL_INTERVAL_S = 0.005

const h = py.usePythonHarness()

// A Peer.backend with a few handlers, serving on a thread until a "close" line on stdin.
const BACKEND =
  `
import os, threading
sys.path.insert(0, ARGS["python_dir"])
from ipckit_peer import Peer

peer = Peer.backend(ARGS["dir"])
ticks = []

@peer.handle("add")
def add(params, ctx):
    return params["a"] + params["b"]

@peer.handle("fail")
def fail(params, ctx):
    raise RuntimeError("no such camera: " + params["camera"])

@peer.handle("render")
def render(params, ctx):
    for frame in range(1, params["frames"] + 1):
        ctx.progress(frame, total=params["frames"], message="frame %d" % frame)
    return {"frames": params["frames"]}

@peer.handle("bake")
def bake(params, ctx):
    ctx.progress(0)
    while not ctx.cancelled:
        time.sleep(0.001)
    emit({"cancelled": ctx.id, "reason": ctx.cancel_reason, "at": time.time() * 1000})
    return {"stopped": True}

@peer.handle("ticks")
def count_ticks(params, ctx):
    return {"count": len(ticks), "in_order": ticks == list(range(len(ticks)))}

@peer.on_event("frontend_log")
def log(payload, message):
    ticks.append(payload["n"])

thread = threading.Thread(target=peer.serve, kwargs={"poll_interval": ARGS["poll_interval"]})
thread.start()
emit({"ready": True, "pid": os.getpid(), "ack": peer.ack_path})
` + py.SERVE_UNTIL_CLOSE

function startBackend(dir) {
  return py.startPython(BACKEND, { dir, python_dir: PYTHON_DIR, poll_interval: POLL_INTERVAL_S }, 'ipckit_peer backend')
}

/** A Node frontend plus every event it receives. */
function frontendWithEvents() {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  const events = []
  front.on('event', (message) => events.push(message))
  return { dir, front, events }
}

function eventsNamed(events, name) {
  return events.filter((m) => m.method === name)
}

test('backend_ready announces the methods, pid and host; the ack file shows the reader is alive', async () => {
  const { dir, events } = frontendWithEvents()
  const backend = startBackend(dir)
  const started = await backend.ready()
  await waitFor(() => eventsNamed(events, 'backend_ready').length === 1, { what: 'backend_ready', timeoutMs: 10000 })
  const ready = eventsNamed(events, 'backend_ready')[0]
  expect(ready.payload).toEqual({
    available_methods: ['add', 'bake', 'fail', 'render', 'ticks'],
    pid: started.lines[0].pid,
    host: os.hostname(),
  })
  const ackName = path.basename(started.lines[0].ack)
  expect(ackName).toMatch(/^frontend_to_backend\.[0-9a-f]{32}\.ack$/)
  const ack = JSON.parse(fs.readFileSync(path.join(dir, ackName), 'utf8'))
  expect(ack).toEqual({
    last_id: null,
    updated: expect.any(Number),
    pid: started.lines[0].pid,
    host: os.hostname(),
    // When its process started (Linux: /proc/<pid>/stat field 22): a reused PID is told apart.
    started: Number(fs.readFileSync(`/proc/${started.lines[0].pid}/stat`, 'utf8').split(') ')[1].split(' ')[19]),
  })
  expect(Math.abs(Date.now() - ack.updated)).toBeLessThan(10000)

  backend.write('close')
  await backend.waitFor((l) => l.closed === true, 10000, '{"closed": true}')
  await waitFor(() => eventsNamed(events, 'backend_shutdown').length === 1, { what: 'backend_shutdown' })
  expect(eventsNamed(events, 'backend_shutdown')[0].payload).toEqual({ pid: started.lines[0].pid })
  expect(fs.existsSync(path.join(dir, ackName))).toBe(false)
  await backend.success()
})

test('request() gets results and EREMOTE with the text of a raising handler', async () => {
  const { dir, front } = frontendWithEvents()
  const backend = await startBackend(dir).ready()
  await expect(front.request('add', { a: 2, b: 40 }, { timeoutMs: 10000 })).resolves.toBe(42)
  await expectRejects(
    front.request('fail', { camera: 'cam7' }, { timeoutMs: 10000 }),
    'EREMOTE',
    'no such camera: cam7',
  )
  await expectRejects(front.request('nope', {}, { timeoutMs: 10000 }), 'EREMOTE', 'unknown method: nope')
  backend.write('close')
  await backend.success()
})

test('task.progress events for a request arrive in order, before its response', async () => {
  const { dir, front, events } = frontendWithEvents()
  const backend = await startBackend(dir).ready()
  const id = front.sendRequest('render', { frames: 12 })
  const response = await front.waitResponse(id, 10000)
  expect(response.payload).toEqual({ frames: 12 })
  const progress = eventsNamed(events, 'task.progress').filter((m) => m.payload.progressToken === id)
  expect(progress.map((m) => m.payload)).toEqual(
    Array.from({ length: 12 }, (_, i) => ({
      progressToken: id,
      progress: i + 1,
      total: 12,
      message: `frame ${i + 1}`,
    })),
  )
  backend.write('close')
  await backend.success()
})

test('task.cancel reaches the running Python handler within its poll interval + 100 ms', async () => {
  const { dir, front, events } = frontendWithEvents()
  const backend = await startBackend(dir).ready()
  const id = front.sendRequest('bake', null)
  await waitFor(() => events.some((m) => m.method === 'task.progress' && m.payload.progressToken === id), {
    what: 'the first progress',
    timeoutMs: 10000,
  })
  const response = front.waitResponse(id, 10000)
  front.sendEvent('task.cancel', { requestId: id, reason: 'user pressed Ctrl-C' })
  const sentAt = Date.now()
  const noticed = await backend.waitFor((l) => l.cancelled === id, 10000, 'the handler to see the cancel')
  expect(noticed.reason).toBe('user pressed Ctrl-C')
  expect(noticed.at - sentAt).toBeLessThanOrEqual(POLL_INTERVAL_S * 1000 + 100)
  // The handler returned anyway: its response is still sent.
  expect((await response).payload).toEqual({ stopped: true })
  backend.write('close')
  await backend.success()
})

test('a burst of 200 Node events reaches the Python handler exactly once each, in order', async () => {
  const { dir, front } = frontendWithEvents()
  const backend = await startBackend(dir).ready()
  // The Python reader acknowledges, so our writer keeps what it has not read: no pacing needed.
  for (let n = 0; n < 200; n++) front.sendEvent('frontend_log', { n })
  // Poll again while the events are still being read.
  const ticks = await waitFor(
    async () => {
      const answer = await front.request('ticks', null, { timeoutMs: 10000 })
      return answer.count >= 200 && answer
    },
    { timeoutMs: 20000, intervalMs: 20, what: 'the handler to count 200 events' },
  )
  expect(ticks).toEqual({ count: 200, in_order: true })
  backend.write('close')
  await backend.success()
})

test('a Python Peer.frontend calls a Node backend', async () => {
  const dir = h.channelDir()
  const back = h.backend(dir)
  const events = []
  back.on('event', (message) => events.push(message))
  back.serve({
    mul: ({ a, b }) => a * b,
    explode: () => {
      throw new Error('kaboom')
    },
  })
  const script = await py.runPython(
    `
import os
sys.path.insert(0, ARGS["python_dir"])
from ipckit_peer import Peer, RemoteError
peer = Peer.frontend(ARGS["dir"])
emit({"result": peer.request("mul", {"a": 6, "b": 7}, timeout=10), "pid": os.getpid()})
try:
    peer.request("explode", {}, timeout=10)
except RemoteError as error:
    emit({"method": error.method, "remote": error.remote_message})
peer.close()
`,
    { dir, python_dir: PYTHON_DIR },
    20000,
    'ipckit_peer frontend',
  )
  const [first, second] = script.lines
  expect(first.result).toBe(42)
  expect(second.method).toBe('explode')
  expect(second.remote).toContain('kaboom')
  await waitFor(() => eventsNamed(events, 'frontend_shutdown').length === 1, { what: 'frontend_shutdown' })
  expect(eventsNamed(events, 'frontend_ready')[0].payload).toEqual({
    available_methods: [],
    pid: first.pid,
    host: os.hostname(),
  })
  expect(eventsNamed(events, 'frontend_shutdown')[0].payload).toEqual({ pid: first.pid })
})
