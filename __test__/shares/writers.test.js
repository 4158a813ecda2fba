'use strict'

// Two writers of one role on different mounts of one directory: a mount that still holds the old
// size of the outbox serves a cut-off copy of the other writer's newer file. Taking it for the
// whole (or for an empty file) would overwrite the other writer's messages. Every message sent must
// arrive, exactly once, and nothing may be reported that did not happen.

const { FileChannel } = require('../../index.js')
const { waitFor } = require('../../test-support')
const { mountPair } = require('../helpers/shares.js')

let share
const channels = []

beforeAll(() => {
  share = mountPair()
})
afterEach(() => {
  for (const channel of channels.splice(0)) if (!channel.closed) channel.close()
})
afterAll(async () => {
  await share?.unmount()
})

function open(role, dir, options) {
  const channel = FileChannel[role](dir, options)
  channels.push(channel)
  channel.problems = []
  channel.on('error', (error) => channel.problems.push(`${error.code}: ${error.message}`))
  return channel
}

/** A backend on the backing directory (the server's own disk) and frontends on mounts A and B. */
function writers(options) {
  const dirs = share.channelDir()
  const back = open('backend', dirs.backing, options)
  const a = open('frontend', dirs.A, options)
  const b = open('frontend', dirs.B, options)
  const got = new Map()
  back.on('event', (message) => {
    const key = `${message.payload.w}${message.payload.i}`
    got.set(key, (got.get(key) ?? 0) + 1)
  })
  return { back, a, b, got }
}

test('synchronous sends, taking turns: 0 lost, each once', async () => {
  const { back, a, b, got } = writers({ acknowledge: false })
  const refused = []
  for (let i = 0; i < 100; i++) {
    for (const [w, channel] of [
      ['a', a],
      ['b', b],
    ]) {
      try {
        channel.sendEvent('e', { w, i })
      } catch (error) {
        // Allowed, loudly: a send that could not be made safely; never a silent drop.
        refused.push(`${w}${i} ${error.code}`)
      }
    }
  }
  const expected = 200 - refused.length
  await waitFor(() => got.size >= expected, { timeoutMs: 30000, what: `${expected} events` })
  expect(refused).toEqual([])
  expect([...got.values()].every((n) => n === 1)).toBe(true)
  expect(got.size).toBe(200)
  expect([...back.problems, ...a.problems, ...b.problems]).toEqual([])
})

test('promise sends from both mounts at once, 2 x 1,000 with acknowledgements: 0 lost, each once', async () => {
  const { back, a, b, got } = writers({})
  const send = (channel, w) =>
    Promise.all(Array.from({ length: 1000 }, (_, i) => channel.promises.sendEvent('e', { w, i })))
  await Promise.all([send(a, 'a'), send(b, 'b')])
  await waitFor(() => got.size >= 2000, { timeoutMs: 60000, what: '2,000 events' })
  expect([...got.values()].every((n) => n === 1)).toBe(true)
  expect([...back.problems, ...a.problems, ...b.problems]).toEqual([])
})
