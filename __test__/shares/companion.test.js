'use strict'

// The Python companion (python/ipckit_peer) as the backend on mount B, our Node frontend on mount A
// (bindfs, default 1 s attribute cache): as a DCC host and the app on two machines sharing one
// directory. Every request is answered, at the polling cadence (not the share's attribute cache),
// and the companion, whose watcher hears nothing of mount A's writes, falls back to polling and
// says so once (a WatchProblem, code EWATCH) and reports nothing else. Under CI=true a missing
// Python peer fails this suite (helpers/python.js), as a missing bindfs does (helpers/shares.js).

const path = require('node:path')
const { median, waitFor } = require('../../test-support')
const py = require('../helpers/python')
const { useSharedDirectory } = require('../helpers/shares.js')

const PYTHON_DIR = path.resolve(__dirname, '..', '..', 'python')

// Peer.backend with the defaults; every on_error report as a JSON line; "close" on stdin ends it.
const BACKEND =
  `
import os, threading
sys.path.insert(0, ARGS["python_dir"])
from ipckit_peer import Peer

def report(error):
    emit({"report": type(error).__name__, "code": getattr(error, "code", None), "text": str(error)})

peer = Peer.backend(ARGS["dir"], on_error=report)
peer.handle("echo", lambda params, ctx: params)
peer.handle("mode", lambda params, ctx: peer.wake_mode)
thread = threading.Thread(target=peer.serve)
thread.start()
emit({"ready": True, "mode": peer.wake_mode})
` + py.SERVE_UNTIL_CLOSE

const share = useSharedDirectory()
beforeAll(() => {
  py.peerPython() // throws (failing the suite) when no Python peer is usable
}, 300000)
afterEach(() => py.killAll())

describe.each([
  ['default options', {}, 500],
  ['{ watch: false, pollIntervalMs: 20 }', { watch: false, pollIntervalMs: 20 }, 200],
])('companion backend on mount B, Node frontend on mount A with %s', (_, options, p50LimitMs) => {
  test(`requests are answered (p50 under ${p50LimitMs} ms); the companion reports its fallback to polling once`, async () => {
    const dirs = share.channelDir()
    const backend = py.startPython(BACKEND, { dir: dirs.B, python_dir: PYTHON_DIR }, 'ipckit_peer backend on mount B')
    await backend.ready(20000)
    const front = share.open('frontend', dirs.A, options)
    await front.ready({ timeoutMs: 20000 })
    const reports = () => backend.lines.filter((line) => line.report !== undefined)
    const times = []
    for (let n = 0; n < 10; n++) {
      const started = Date.now()
      expect(await front.request('echo', { n }, { timeoutMs: 20000 })).toEqual({ n })
      times.push(Date.now() - started)
    }
    await waitFor(() => reports().length > 0, { timeoutMs: 20000, what: "the companion's report" })
    expect(await front.request('mode', null, { timeoutMs: 20000 })).toBe('poll')
    for (let n = 0; n < 10; n++) expect(await front.request('echo', n, { timeoutMs: 20000 })).toBe(n)
    backend.write('close')
    await backend.waitFor((line) => line.closed === true, 20000, '{"closed": true}')
    expect(reports()).toEqual([
      { report: 'WatchProblem', code: 'EWATCH', text: expect.stringMatching(/missed 3 changes in a row.*polling/) },
    ])
    expect(median(times)).toBeLessThan(p50LimitMs)
    expect(front.problems.filter((p) => p.code !== 'EWATCH').map((p) => `${p.code}: ${p.message}`)).toEqual([])
  })
})
