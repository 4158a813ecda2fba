'use strict'

// A burst of `count` events of `size` bytes of JSON, sent as fast as the sender can, and the time
// until the reader (another process) has them all.
//   sender = promise  channel.promises.sendEvent() for every event at once, then awaited together
//                     (the native writer thread sends them, several per write: group commit)
//            sync     channel.sendEvent() in a loop; ENOBUFS (the acknowledging reader's backlog
//                     is full) waits 1 ms and tries again, as a user of the sync API would
//            python   the reference's send_event() loop (bench/python/burst_send.py)
//   reader = node     an ipckit backend with an 'event' listener, acknowledging (burst-reader.js)
//            python   the reference's recv() in a `pollMs` loop, not acknowledging (recv_loop.py)
// The last message is a 'burst.end' marker; the reader reports when it sees it and how many
// 'burst' events it got. `seconds` runs from the first send to that report. Toward a reader that
// does not acknowledge, the outbox keeps only the newest 100 messages: `received` tells how many
// the reader saw before newer ones pushed them out.

const u = require('../lib/util')
const path = require('node:path')

const opts = JSON.parse(process.argv[2] || '{}')
const { sender = 'promise', reader = 'node', count = 10000, size = 1024, pollMs = 1, timeoutMs = 240000 } = opts

async function main() {
  const dir = u.tmpDir(`burst-${sender}-${reader}`)
  let readerPeer
  let senderPeer
  let channel
  try {
    readerPeer =
      reader === 'node'
        ? await u.spawnPeer(process.execPath, [path.join(__dirname, 'burst-reader.js'), dir], { label: 'node reader' })
        : await u.spawnPeer(u.peerPython(), [u.pyScript('recv_loop.py'), '--dir', dir, '--poll-ms', String(pollMs)], {
            label: 'python reader',
          })
    const payload = u.makePayload(size)
    let retries = 0
    let errors = {}
    let t0
    let sendSeconds
    if (sender === 'python') {
      senderPeer = await u.spawnPeer(
        u.peerPython(),
        [u.pyScript('burst_send.py'), '--dir', dir, '--count', String(count), '--size', String(size)],
        { label: 'python sender' },
      )
      await u.sleep(300) // the reader saw the channel open
      t0 = u.nowMs()
      senderPeer.write('go')
    } else {
      channel = require(u.ROOT).FileChannel.frontend(dir)
      errors = u.failOnPolling(channel, `burst sender (${sender})`)
      await u.sleep(300) // the reader's acknowledgement file exists
      t0 = u.nowMs()
      if (sender === 'promise') {
        const sends = []
        for (let i = 0; i < count; i++) sends.push(channel.promises.sendEvent('burst', payload, { timeoutMs }))
        sends.push(channel.promises.sendEvent('burst.end', { count }, { timeoutMs }))
        await Promise.all(sends)
      } else if (sender === 'sync') {
        const send = async (name, body) => {
          for (;;) {
            try {
              channel.sendEvent(name, body)
              return
            } catch (error) {
              if (error.code !== 'ENOBUFS') throw error
              retries++
              await u.sleep(1)
            }
          }
        }
        for (let i = 0; i < count; i++) await send('burst', payload)
        await send('burst.end', { count })
      } else {
        throw new Error(`unknown sender ${sender}`)
      }
      sendSeconds = (u.nowMs() - t0) / 1000
    }
    const line = await readerPeer.waitForLine((l) => l.startsWith('done '), {
      timeoutMs: Math.max(1, t0 + timeoutMs - u.nowMs()),
      what: `"done " from the ${reader} reader`,
    })
    const seconds = (u.nowMs() - t0) / 1000
    const got = JSON.parse(line.slice('done '.length))
    if (senderPeer) {
      const exit = await u.stopPeer(senderPeer)
      const result = senderPeer.lines.find((l) => l.startsWith(u.RESULT_PREFIX))
      senderPeer = null
      if (exit && exit.code) throw new Error(`python sender exited with ${exit.code}`)
      if (result) sendSeconds = JSON.parse(result.slice(u.RESULT_PREFIX.length)).sendSeconds
    }
    if (channel) channel.close()
    const exit = await u.stopPeer(readerPeer)
    readerPeer = null
    if (exit && (exit.code || exit.signal)) throw new Error(`reader exited with ${exit.signal || exit.code}`)
    u.emitResult({
      sender,
      reader,
      count,
      size,
      received: got.received,
      lost: count - got.received,
      receivedPct: (got.received / count) * 100,
      seconds,
      sendSeconds,
      perSecond: got.received / seconds,
      offeredPerSecond: count / sendSeconds,
      retries,
      senderErrors: errors,
      readerErrors: got.errors ?? null,
    })
  } finally {
    if (senderPeer) await u.stopPeer(senderPeer, 500)
    if (readerPeer) await u.stopPeer(readerPeer, 1000)
    if (channel && !channel.closed) channel.close()
    u.rmDir(dir)
  }
}

u.runCase(main)
