'use strict'

// Both roles on different mounts of one directory (bindfs, default 1 s attribute cache): as two
// machines on one share. Every message arrives exactly once and nothing is reported that did not
// happen: no EBADMSG from a cut-off read, no ELOST, only one EWATCH per side (the watcher sees
// nothing of the other mount's changes, so polling takes over and says so once).

const { waitFor } = require('../../test-support')
const { useSharedDirectory } = require('../helpers/shares.js')

const share = useSharedDirectory()
const open = share.open

/** The problems other than the one EWATCH a side on a share may report. */
function alarms(channel) {
  const watch = channel.problems.filter((p) => p.code === 'EWATCH')
  const others = channel.problems.filter((p) => p.code !== 'EWATCH')
  return { others: others.map((p) => `${p.code}: ${p.message}`), watchReports: watch.length }
}

async function roundTrips(front, back, count) {
  back.handle('echo', (params) => params)
  for (let i = 0; i < count; i++) {
    await expect(front.request('echo', { i }, { timeoutMs: 20000 })).resolves.toEqual({ i })
  }
}

async function eventsToFrontend(front, back, count) {
  const got = []
  front.on('event', (message) => message.method === 'tick' && got.push(message.payload))
  for (let i = 0; i < count; i++) await back.promises.sendEvent('tick', i)
  await waitFor(() => got.length >= count, { timeoutMs: 30000, what: `${count} events` })
  expect(got).toEqual([...Array(count).keys()])
}

describe.each([
  ['polling every 20 ms', { watch: false, pollIntervalMs: 20 }],
  ['default options', {}],
])('frontend on mount A, backend on mount B: %s', (_, options) => {
  test('requests are answered and events delivered, each once, with no false alarm', async () => {
    const dirs = share.channelDir()
    const back = open('backend', dirs.B, options)
    const front = open('frontend', dirs.A, options)
    await roundTrips(front, back, 30)
    await eventsToFrontend(front, back, 30)
    for (const channel of [front, back]) {
      const { others, watchReports } = alarms(channel)
      expect(others).toEqual([])
      expect(watchReports).toBeLessThanOrEqual(options.watch === false ? 0 : 1)
    }
  })

  test('acknowledgements: 300 events (3 x the cap) sent at once all arrive, none reported lost', async () => {
    const dirs = share.channelDir()
    const back = open('backend', dirs.B, options)
    const front = open('frontend', dirs.A, options)
    const got = []
    front.on('event', (message) => message.method === 'burst' && got.push(message.payload))
    await Promise.all(Array.from({ length: 300 }, (_, i) => back.promises.sendEvent('burst', i)))
    await waitFor(() => got.length >= 300, { timeoutMs: 60000, what: '300 events' })
    expect(got).toEqual([...Array(300).keys()])
    expect(alarms(front).others).toEqual([])
    expect(alarms(back).others).toEqual([])
  })
})

test("a frontend with a 'peer' listener falls back to polling and says so once (EWATCH)", async () => {
  const dirs = share.channelDir()
  const back = open('backend', dirs.B)
  const front = open('frontend', dirs.A)
  const peers = []
  front.on('peer', (peer) => peers.push(peer.state))
  back.handle('echo', (params) => params)
  await front.ready({ timeoutMs: 20000 })
  // Requests keep the inbox changing through the other mount: changes the watcher never announces.
  for (let i = 0; alarms(front).watchReports === 0; i++) {
    await expect(front.request('echo', i, { timeoutMs: 20000 })).resolves.toBe(i)
    if (i > 60) throw new Error('the frontend never reported EWATCH')
  }
  await roundTrips(front, back, 5)
  expect(alarms(front)).toEqual({ others: [], watchReports: 1 })
  expect(alarms(back).others).toEqual([])
  expect(peers).not.toContain('gone')
})
