'use strict'

// Two writers of one role on different mounts of one directory: a mount that still holds the old
// size of the outbox serves a cut-off copy of the other writer's newer file. Taking it for the
// whole (or for an empty file) would overwrite the other writer's messages. Every message sent must
// arrive, exactly once, and nothing may be reported that did not happen.

const { waitFor } = require('../../test-support')
const { useSharedDirectory } = require('../helpers/shares.js')

const share = useSharedDirectory()
const open = share.open
const problems = (...channels) => channels.flatMap((c) => c.problems.map((p) => `${p.code}: ${p.message}`))

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
  expect(problems(back, a, b)).toEqual([])
})

test('promise sends from both mounts at once, 2 x 1,000 with acknowledgements: 0 lost, each once', async () => {
  const { back, a, b, got } = writers({})
  const send = (channel, w) =>
    Promise.all(Array.from({ length: 1000 }, (_, i) => channel.promises.sendEvent('e', { w, i })))
  await Promise.all([send(a, 'a'), send(b, 'b')])
  await waitFor(() => got.size >= 2000, { timeoutMs: 60000, what: '2,000 events' })
  expect([...got.values()].every((n) => n === 1)).toBe(true)
  expect(problems(back, a, b)).toEqual([])
})
