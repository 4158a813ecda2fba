'use strict'

// Presence across hosts: the backend runs under another host name (a UTS namespace), so the
// frontend cannot check its process and judges it by its acknowledgement heartbeat alone. A request
// that takes longer than ackTimeoutMs must never fail with EPEERGONE while the backend is alive:
// neither with the backend on the server's own disk (its record names its process and does not
// heartbeat) nor with both sides on mounts of a share (it heartbeats, seen through a cache).

const { FileChannel } = require('../../index.js')
const { mountPair, canChangeHostName, startSharePeer } = require('../helpers/shares.js')

let share
const channels = []
const peers = []

beforeAll(() => {
  if (!canChangeHostName()) throw new Error('unshare -u is not permitted here: run as root (scripts/setup-shares.sh)')
  share = mountPair()
})
afterEach(async () => {
  for (const channel of channels.splice(0)) if (!channel.closed) channel.close()
  await Promise.all(peers.splice(0).map((peer) => peer.stop()))
})
afterAll(async () => {
  await share?.unmount()
})

const ACK_TIMEOUT_MS = 1500

describe.each([
  ['the backend on the backing directory (its own disk)', 'backing', {}],
  ['the backend on mount B, polling every 20 ms', 'B', { watch: false, pollIntervalMs: 20 }],
])('frontend on mount A under this host name, %s under another', (_, backendSide, options) => {
  test(`a request of 3 x ackTimeoutMs (${3 * ACK_TIMEOUT_MS} ms) is answered; the peer never looks gone`, async () => {
    const dirs = share.channelDir()
    const peer = startSharePeer(
      dirs[backendSide],
      { ...options, ackTimeoutMs: ACK_TIMEOUT_MS },
      { hostName: 'ipckit-other-host' },
    )
    peers.push(peer)
    const ready = JSON.parse(await peer.waitForLine(/"ready"/, { timeoutMs: 20000 }))
    expect(ready.host).toBe('ipckit-other-host')
    const front = FileChannel.frontend(dirs.A, { ...options, ackTimeoutMs: ACK_TIMEOUT_MS })
    channels.push(front)
    const problems = []
    front.on('error', (error) => problems.push(`${error.code}: ${error.message}`))
    const states = []
    front.on('peer', (info) => states.push(info.state))
    const info = await front.ready({ timeoutMs: 20000 })
    expect(info.host).toBe('ipckit-other-host')
    const answer = await front.request('slow', { ms: 3 * ACK_TIMEOUT_MS, value: 'done' }, { timeoutMs: 60000 })
    expect(answer).toBe('done')
    expect(states).not.toContain('gone')
    expect(problems.filter((p) => !p.startsWith('EWATCH'))).toEqual([])
    expect(peer.lines.filter((line) => line.includes('"error"') && !line.includes('EWATCH'))).toEqual([])
  })
})
