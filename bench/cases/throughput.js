'use strict'

// Send throughput with the outbox already at its 100-message cap: every send appends one message
// and drops the oldest. impl = ipckit | purejs | floor; payload `size` bytes of JSON; runs for
// `durationMs` after the outbox is filled. Nobody reads the other side, unless `reader`: then an
// ipckit backend in this process drains the outbox with recv() every 20 sends (an acknowledging
// reader that keeps up; `channelOptions` go to both ends).
// The floor writes the bytes of a full 100-message outbox (prepared once) to the temp file and
// renames it over the outbox: the file-system cost of one send with no lock and no JSON work.

const u = require('../lib/util')

const opts = JSON.parse(process.argv[2] || '{}')
const { impl = 'ipckit', size = 1024, durationMs = 1000, cap = 100, channelOptions, reader = false } = opts

function floorChannel(dir) {
  const fs = require('node:fs')
  const path = require('node:path')
  const { makeMessage } = require('../baseline/pure-js-channel')
  const target = path.join(dir, 'frontend_to_backend.json')
  const tmp = path.join(dir, 'frontend_to_backend.tmp')
  let bytes = null
  return {
    sendEvent(name, payload) {
      if (bytes === null) {
        const full = Array.from({ length: cap }, () => makeMessage('event', { method: name, payload }))
        bytes = Buffer.from(JSON.stringify(full, null, 2))
      }
      fs.writeFileSync(tmp, bytes)
      fs.renameSync(tmp, target)
    },
    close() {},
  }
}

function main() {
  const dir = u.tmpDir(`tput-${impl}`)
  try {
    const channel =
      impl === 'ipckit'
        ? require(u.ROOT).FileChannel.frontend(dir, channelOptions)
        : impl === 'floor'
          ? floorChannel(dir)
          : require('../baseline/pure-js-channel').PureJsChannel.frontend(dir)
    const payload = u.makePayload(size)
    const drain = reader ? require(u.ROOT).FileChannel.backend(dir, channelOptions) : null
    let received = 0
    const send = drain
      ? (() => {
          let n = 0
          return (name) => {
            channel.sendEvent(name, payload)
            if (++n % 20 === 0) received += drain.recv().length
          }
        })()
      : (name) => channel.sendEvent(name, payload)
    for (let i = 0; i < cap; i++) send('fill')
    // A short warm-up at the cap, then the measured run.
    const warmEnd = u.nowMs() + Math.min(200, durationMs / 5)
    while (u.nowMs() < warmEnd) send('warm')
    let sent = 0
    const t0 = u.nowMs()
    let t1 = t0
    while (t1 - t0 < durationMs) {
      for (let i = 0; i < 5; i++) send('bench')
      sent += 5
      t1 = u.nowMs()
    }
    channel.close()
    if (drain) drain.close()
    const seconds = (t1 - t0) / 1000
    u.emitResult({
      impl,
      size,
      reader,
      received,
      sent,
      seconds,
      perSecond: sent / seconds,
      usPerSend: (seconds * 1e6) / sent,
    })
  } finally {
    u.rmDir(dir)
  }
}

main()
