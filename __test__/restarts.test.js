'use strict'

// Restarts (issue 18, PROTOCOL-EXTENSIONS.md "Restarts"): a backend killed and started again
// while the frontend stays open never runs what the frontend had settled (answered, abandoned
// with EPEERGONE, timed out); a request to a peer known to be gone fails at once unless it asks
// to wait; a reopened frontend does not surface the replies of its earlier session.

const {
  useHarness,
  expectRejects,
  readMessages,
  writeMessages,
  diskMessage,
  FRONTEND_OUTBOX,
  BACKEND_OUTBOX,
} = require('./helpers/channels')
const { waitFor } = require('../test-support')
const fs = require('node:fs')

const h = useHarness()

const startedLines = (child) => child.lines.filter((line) => line.started)
const outboxRequests = (dir) => readMessages(dir, FRONTEND_OUTBOX).filter((m) => m.type === 'request')

test('a backend killed and restarted with the frontend open replays nothing the frontend settled', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  const first = h.peer(['backend', dir])
  await first.ready()
  await front.ready({ timeoutMs: 20000 })
  await expect(front.request('record', 'answered', { timeoutMs: 20000 })).resolves.toBe('answered')
  const expired = front.request('slow', { ms: 60000, value: 'expired' }, { timeoutMs: 300 })
  await expectRejects(expired, 'ETIMEDOUT')
  const abandoned = front.request('slow', { ms: 60000, value: 'abandoned' }, { timeoutMs: 60000 })
  await first.nextLine((line) => line.params?.value === 'abandoned')
  const abandonedId = first.lines.find((line) => line.params?.value === 'abandoned').id

  first.kill('SIGKILL')
  await expectRejects(abandoned, 'EPEERGONE')
  // The abandoned call was cancelled, and nothing settled stays in the outbox for a new backend.
  await waitFor(
    () => {
      const messages = readMessages(dir, FRONTEND_OUTBOX)
      const cancel = messages.find((m) => m.method === 'task.cancel' && m.payload.requestId === abandonedId)
      return cancel?.payload.reason === 'peer gone' && !messages.some((m) => m.type === 'request')
    },
    { what: 'the settled requests to leave the outbox and the cancel to be written' },
  )

  // A call to the gone peer fails at once and writes nothing.
  const before = performance.now()
  const refused = await expectRejects(front.request('record', 'refused', { timeoutMs: 20000 }), 'EPEERGONE', 'not sent')
  expect(performance.now() - before).toBeLessThan(1000)
  expect(refused.method).toBe('record')
  expect(outboxRequests(dir)).toEqual([])

  // One that asks to wait is sent once a new backend is ready, and is the only thing it runs.
  const waited = front.request('record', 'after-restart', { timeoutMs: 20000, waitForPeer: true })
  const second = h.peer(['backend', dir])
  await expect(waited).resolves.toBe('after-restart')
  expect(startedLines(second).map((line) => line.params)).toEqual(['after-restart'])
  expect(front.peer.state).toBe('ready')
})

test('waitForPeer: rejects ETIMEDOUT when no peer comes back in time; EINVAL for a non-boolean', async () => {
  const dir = h.channelDir()
  const front = h.frontend(dir)
  const child = h.peer(['backend', dir])
  await child.ready()
  await front.ready({ timeoutMs: 20000 })
  child.kill('SIGKILL')
  await waitFor(() => front.peer.state === 'gone', { timeoutMs: 10000, what: 'the peer to be gone' })
  await expectRejects(front.request('record', 1, { timeoutMs: 200, waitForPeer: true }), 'ETIMEDOUT', 'came back')
  expect(outboxRequests(dir)).toEqual([])
  await expectRejects(front.request('record', 1, { waitForPeer: 'yes' }), 'EINVAL', 'waitForPeer')
})

test('a restarted Node backend does not run again what it answered before it crashed', async () => {
  const dir = h.channelDir()
  // The files as a crash leaves them: a request answered, and one never answered.
  const answered = diskMessage({ type: 'request', method: 'record', payload: 'answered' })
  const open = diskMessage({ type: 'request', method: 'record', payload: 'open' })
  fs.mkdirSync(dir, { mode: 0o700 })
  writeMessages(dir, FRONTEND_OUTBOX, [answered, open])
  writeMessages(dir, BACKEND_OUTBOX, [
    diskMessage({ type: 'response', method: undefined, reply_to: answered.id, payload: 'answered' }),
  ])
  const back = h.backend(dir)
  const ran = []
  back.handle('record', (params) => {
    ran.push(params)
    return params
  })
  await waitFor(() => ran.length > 0, { what: 'the open request to run' })
  expect(ran).toEqual(['open'])
  expect(back.stats.droppedRequests).toBe(1)
})

test('a reopened frontend drops the replies meant for its earlier session, and counts them', async () => {
  const dir = h.channelDir()
  const back = h.backend(dir)
  const earlier = h.frontend(dir)
  const answeredId = earlier.sendRequest('a', null)
  const openId = earlier.sendRequest('b', null)
  back.sendResponse(answeredId, 'before reopening')
  earlier.close()

  const front = h.frontend(dir)
  const seen = []
  front.on('message', (message) => seen.push(message))
  back.sendEvent('task.progress', { progressToken: openId, progress: 1 })
  back.sendResponse(openId, 'after reopening')
  back.sendEvent('note', 1)
  await waitFor(() => seen.length > 0, { what: 'the note' })
  expect(seen.map((m) => m.method ?? m.replyTo)).toEqual(['note'])
  expect(front.stats).toMatchObject({ droppedResponses: 2, droppedProgress: 1 })
  // Its own calls are answered as usual.
  back.handle('c', () => 'mine')
  await expect(front.request('c', null, { timeoutMs: 10000 })).resolves.toBe('mine')
})

test('a frontend opened after a reference-like backend trimmed its backend_ready is ready once the backend writes', async () => {
  const dir = h.channelDir()
  // Like a backend written with the reference API alone: no acknowledgement, announcements by hand.
  const back = h.backend(dir, { acknowledge: false })
  back.sendEvent('backend_ready', { available_methods: [] })
  for (let n = 0; n < 120; n++) back.sendEvent('tick', n)
  expect(readMessages(dir, BACKEND_OUTBOX).some((m) => m.method === 'backend_ready')).toBe(false)

  const front = h.frontend(dir)
  expect(front.peer.state).toBe('unknown')
  const ready = front.ready({ timeoutMs: 20000 })
  back.sendEvent('tick', 'now')
  await expect(ready).resolves.toMatchObject({ state: 'ready' })
})
