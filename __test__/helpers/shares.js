'use strict'

// One directory seen through two FUSE mounts (bindfs, default 1 s attribute cache), as two machines
// see a network share: changes made through one mount raise no inotify event on the other, and a
// mount serves cached sizes (cut-off reads) and times for up to a second. Used by __test__/shares
// (jest.shares.config.js, after scripts/setup-shares.sh). Never skips: a machine that cannot mount
// fails the suite with the reason.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync, spawnSync } = require('node:child_process')
const { sleep, spawnLines } = require('../../test-support')

const SHARE_PEER = path.join(__dirname, '..', 'shares', 'share_peer.js')

function isMounted(dir) {
  return spawnSync('mountpoint', ['-q', dir]).status === 0
}

async function unmount(dir) {
  for (let attempt = 1; isMounted(dir); attempt++) {
    const done = spawnSync('fusermount', ['-u', dir])
    if (done.status === 0) break
    // Busy for a moment while a closing channel's last read is in flight.
    if (attempt >= 50) {
      spawnSync('umount', ['-l', dir])
      break
    }
    await sleep(100)
  }
}

/**
 * Mounts `backing` twice (A and B) with bindfs' defaults; resolves with { base, backing, A, B,
 * channelDir(name) → { backing, A, B }, unmount() }.
 */
function mountPair(bindfsOptions = []) {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-share-'))
  const backing = path.join(base, 'backing')
  const A = path.join(base, 'A')
  const B = path.join(base, 'B')
  for (const dir of [backing, A, B]) fs.mkdirSync(dir, { mode: 0o700 })
  try {
    for (const mount of [A, B]) execFileSync('bindfs', [...bindfsOptions, backing, mount], { stdio: 'pipe' })
  } catch (error) {
    throw new Error(`cannot mount ${backing} with bindfs (run scripts/setup-shares.sh): ${error.message}`)
  }
  let next = 0
  return {
    base,
    backing,
    A,
    B,
    /** A fresh channel directory name, as seen from the backing directory and each mount. */
    channelDir(name = `chan${next++}`) {
      return { backing: path.join(backing, name), A: path.join(A, name), B: path.join(B, name) }
    },
    async unmount() {
      await unmount(A)
      await unmount(B)
      fs.rmSync(base, { recursive: true, force: true })
    },
  }
}

/** Whether one process can run with another host name (a UTS namespace; root). */
function canChangeHostName() {
  return spawnSync('unshare', ['-u', 'true']).status === 0
}

/**
 * Starts __test__/shares/share_peer.js as a backend of `dir` with `options`, under host name
 * `hostName` when given (unshare -u, then hostname). A LineProcess: waitForLine, stop, kill.
 */
function startSharePeer(dir, options = {}, { hostName } = {}) {
  const args = [SHARE_PEER, dir, JSON.stringify(options)]
  if (!hostName) return spawnLines(process.execPath, args)
  const script = 'hostname "$0" && exec "$@"'
  return spawnLines('unshare', ['-u', 'sh', '-c', script, hostName, process.execPath, ...args])
}

/**
 * The share suites' harness: a mount pair for the file (mounted before its tests, unmounted
 * after), and channels and peers that each test's end closes and stops. `open(role, dir, options)`
 * opens a channel that records its 'error' events in `channel.problems`; `track(peer)` stops a
 * peer after the test; `channelDir()` is a fresh channel directory as the backing directory and
 * mounts A and B see it.
 */
function useSharedDirectory({ needsHostName = false } = {}) {
  const { FileChannel } = require('../../index.js')
  let share
  const channels = []
  const peers = []
  beforeAll(() => {
    if (needsHostName && !canChangeHostName()) {
      throw new Error('unshare -u is not permitted here: run as root (scripts/setup-shares.sh)')
    }
    share = mountPair()
  })
  afterEach(async () => {
    for (const channel of channels.splice(0)) if (!channel.closed) channel.close()
    await Promise.all(peers.splice(0).map((peer) => peer.stop()))
  })
  afterAll(async () => {
    await share?.unmount()
  })
  return {
    channelDir: () => share.channelDir(),
    open(role, dir, options) {
      const channel = FileChannel[role](dir, options)
      channels.push(channel)
      channel.problems = []
      channel.on('error', (error) => channel.problems.push(error))
      return channel
    },
    trackPeer(peer) {
      peers.push(peer)
      return peer
    },
  }
}

module.exports = { mountPair, useSharedDirectory, canChangeHostName, startSharePeer, isMounted }
