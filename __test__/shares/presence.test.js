'use strict'

// Presence across hosts: the backend runs under another host name (a UTS namespace), so the
// frontend cannot check its process and judges it by its acknowledgement heartbeat alone. A request
// that takes longer than ackTimeoutMs must never fail with EPEERGONE while the backend is alive:
// neither with the backend on the server's own disk (its record names its process and does not
// heartbeat) nor with both sides on mounts of a share (it heartbeats, seen through a cache).

const { useSharedDirectory, startSharePeer } = require('../helpers/shares.js')

const share = useSharedDirectory({ needsHostName: true })

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
    share.trackPeer(peer)
    const ready = JSON.parse(await peer.waitForLine(/"ready"/, { timeoutMs: 20000 }))
    expect(ready.host).toBe('ipckit-other-host')
    const front = share.open('frontend', dirs.A, { ...options, ackTimeoutMs: ACK_TIMEOUT_MS })
    const states = []
    front.on('peer', (info) => states.push(info.state))
    const info = await front.ready({ timeoutMs: 20000 })
    expect(info.host).toBe('ipckit-other-host')
    const answer = await front.request('slow', { ms: 3 * ACK_TIMEOUT_MS, value: 'done' }, { timeoutMs: 60000 })
    expect(answer).toBe('done')
    expect(states).not.toContain('gone')
    expect(front.problems.filter((p) => p.code !== 'EWATCH').map((p) => `${p.code}: ${p.message}`)).toEqual([])
    expect(peer.lines.filter((line) => line.includes('"error"') && !line.includes('EWATCH'))).toEqual([])
  })
})
