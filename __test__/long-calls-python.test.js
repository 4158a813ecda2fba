'use strict'

// Long calls against Python backends: the companion `ipckit_peer` (python/), and a backend
// written by hand with the reference `ipckit` API alone plus the documented conventions
// (PROTOCOL-EXTENSIONS.md). Python is found by helpers/python.js: under CI=true a missing
// Python fails this suite, never skips it.

const os = require('node:os')
const path = require('node:path')
const { expectRejects } = require('./helpers/channels')
const { waitFor } = require('../test-support')
const py = require('./helpers/python')

const PYTHON_DIR = path.resolve(__dirname, '..', 'python')
const POLL_INTERVAL_S = 0.005

const h = py.usePythonHarness()

// ipckit_peer: render (progress), bake (runs until cancelled, then answers anyway).
const PEER_BACKEND = `
import os, threading
sys.path.insert(0, ARGS["python_dir"])
from ipckit_peer import Peer

peer = Peer.backend(ARGS["dir"])

@peer.handle("render")
def render(params, ctx):
    for frame in range(1, params["frames"] + 1):
        ctx.progress(frame, total=params["frames"], message="frame %d" % frame)
        time.sleep(params.get("pause", 0))
    return {"frames": params["frames"]}

@peer.handle("bake")
def bake(params, ctx):
    ctx.progress(0)
    while not ctx.cancelled:
        time.sleep(0.001)
    emit({"cancelled": ctx.id, "reason": ctx.cancel_reason, "at": time.time() * 1000})
    return {"stopped": True}

thread = threading.Thread(target=peer.serve, kwargs={"poll_interval": ARGS["poll_interval"]})
thread.start()
emit({"ready": True, "pid": os.getpid()})
for line in sys.stdin:
    if line.strip() == "close":
        break
peer.close()
thread.join()
`

// The reference API alone: send_event for the conventions, recv() in a loop, duplicates of
// recv() skipped by id. "twice" answers twice, as upstream's example backend sometimes does.
const HAND_BACKEND = `
import os, socket
ch = ipckit.FileChannel.backend(ARGS["dir"])
ch.send_event("backend_ready", {"available_methods": ["bake", "render", "twice"], "pid": os.getpid(), "host": socket.gethostname()})
emit({"ready": True, "pid": os.getpid()})
seen = set()
running = None
def messages():
    for m in ch.recv():
        if m["id"] in seen:
            continue
        seen.add(m["id"])
        yield m
while True:
    for m in messages():
        if m["type"] == "event" and m["method"] == "task.cancel" and running and m["payload"].get("requestId") == running:
            emit({"cancelled": running, "reason": m["payload"].get("reason"), "at": time.time() * 1000})
            ch.send_response(running, {"stopped": True})
            running = None
        if m["type"] != "request":
            continue
        if m["method"] == "render":
            n = m["payload"]["frames"]
            for f in range(1, n + 1):
                ch.send_event("task.progress", {"progressToken": m["id"], "progress": f, "total": n, "message": "frame %d" % f})
                time.sleep(m["payload"].get("pause", 0))
            ch.send_response(m["id"], {"frames": n})
        elif m["method"] == "bake":
            running = m["id"]
            ch.send_event("task.progress", {"progressToken": m["id"], "progress": 0})
        elif m["method"] == "twice":
            ch.send_response(m["id"], 1)
            ch.send_response(m["id"], 2)
    time.sleep(ARGS["poll_interval"])
`

const BACKENDS = [
  ['ipckit_peer', PEER_BACKEND],
  ['a hand-written reference-API backend', HAND_BACKEND],
]

function start(code, dir, label) {
  return py.startPython(code, { dir, python_dir: PYTHON_DIR, poll_interval: POLL_INTERVAL_S }, label)
}

describe.each(BACKENDS)('Node frontend with %s', (label, code) => {
  test('ready() before the backend starts, and after; progress in order; idleTimeoutMs extends with it', async () => {
    const dir = h.channelDir()
    const front = h.frontend(dir)
    const before = front.ready({ timeoutMs: 30000 })
    const backend = await start(code, dir, label).ready(30000)
    const pid = backend.lines[0].pid
    await expect(before).resolves.toMatchObject({ state: 'ready', pid })
    await expect(front.ready({ timeoutMs: 0 })).resolves.toMatchObject({ state: 'ready', pid })
    await waitFor(() => front.peer.methods, { what: 'the announced methods', timeoutMs: 10000 })
    expect(front.peer).toMatchObject({ pid, host: os.hostname(), methods: expect.arrayContaining(['bake', 'render']) })
    const updates = []
    // 30 frames 30 ms apart (about 0.9 s) with a 300 ms idle limit: it holds while progress flows.
    const result = await front.request(
      'render',
      { frames: 30, pause: 0.03 },
      { onProgress: (u) => updates.push(u), idleTimeoutMs: 300, timeoutMs: 30000 },
    )
    expect(result).toEqual({ frames: 30 })
    expect(updates).toEqual(
      Array.from({ length: 30 }, (_, i) => ({ progress: i + 1, total: 30, message: `frame ${i + 1}` })),
    )
  })

  test('a cancel reaches the handler within its poll interval + 100 ms; the late reply is dropped and counted', async () => {
    const dir = h.channelDir()
    const front = h.frontend(dir)
    const backend = await start(code, dir, label).ready(30000)
    const controller = new AbortController()
    let started
    const startedPromise = new Promise((resolve) => (started = resolve))
    const call = front.request('bake', null, {
      signal: controller.signal,
      timeoutMs: 30000,
      onProgress: () => started(),
    })
    await startedPromise
    const abortedAt = Date.now()
    controller.abort('user pressed Ctrl-C')
    await expectRejects(call, 'ABORT_ERR')
    const noticed = await backend.waitFor((l) => l.cancelled !== undefined, 10000, 'the handler to see the cancel')
    expect(noticed.reason).toBe('user pressed Ctrl-C')
    expect(noticed.at - abortedAt).toBeLessThanOrEqual(POLL_INTERVAL_S * 1000 + 100)
    await waitFor(() => front.stats.droppedResponses === 1, { what: 'the late reply', timeoutMs: 10000 })
    expect(front.recv().filter((m) => m.type === 'response')).toEqual([])
  })

  test('EPEERGONE within 2 s of kill -9 of the backend', async () => {
    const dir = h.channelDir()
    const front = h.frontend(dir)
    const backend = await start(code, dir, label).ready(30000)
    await front.ready({ timeoutMs: 30000 })
    let started
    const startedPromise = new Promise((resolve) => (started = resolve))
    const call = front.request('bake', null, { timeoutMs: 60000, onProgress: () => started() })
    await startedPromise
    const killedAt = Date.now()
    backend.kill()
    await expectRejects(call, 'EPEERGONE')
    expect(Date.now() - killedAt).toBeLessThan(2000)
    expect(front.peer.state).toBe('gone')
  })
})

test('duplicate responses (as upstream example backend sends) resolve once and never pile up in recv()', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  await start(HAND_BACKEND, dir, 'hand-written backend').ready(30000)
  const results = await Promise.all(
    Array.from({ length: 20 }, () => front.request('twice', null, { timeoutMs: 30000 })),
  )
  expect(results).toEqual(Array(20).fill(1))
  await waitFor(() => front.stats.droppedResponses === 20, { what: 'the 20 second answers', timeoutMs: 10000 })
  expect(front.recv().filter((m) => m.type === 'response')).toEqual([])
})
