'use strict'

// Cost of recv() when nothing is new: the inbox holds 100 messages with 1 KB payloads (distinct
// timestamps, so the reference reader does not repeat them), already drained by a first recv().
// impl = ipckit | purejs | python. The file is written, then left alone for `settleMs` (as an
// inbox usually is between messages) before the reader opens it.

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const u = require('../lib/util')
const { BACKEND_OUTBOX, FRONTEND_OUTBOX } = require('../baseline/pure-js-channel')

const opts = JSON.parse(process.argv[2] || '{}')
const { impl = 'ipckit', durationMs = 1000, messages = 100, size = 1024, settleMs = 150 } = opts

function writeInbox(dir) {
  const base = Date.now() - messages
  const payload = u.makePayload(size)
  const list = []
  for (let i = 0; i < messages; i++) {
    list.push({ id: require('node:crypto').randomUUID(), timestamp: base + i, type: 'event', method: 'e', payload })
  }
  fs.writeFileSync(
    path.join(dir, '.channel_info'),
    JSON.stringify({ created: base, protocol: 'file-ipc', version: '1.0' }, null, 2),
  )
  fs.writeFileSync(path.join(dir, FRONTEND_OUTBOX), '[]')
  fs.writeFileSync(path.join(dir, BACKEND_OUTBOX), JSON.stringify(list, null, 2))
}

async function main() {
  const dir = u.tmpDir(`idle-${impl}`)
  try {
    writeInbox(dir)
    await u.sleep(settleMs)
    let result
    if (impl === 'python') {
      const out = execFileSync(
        u.peerPython(),
        [u.pyScript('idle_recv.py'), '--dir', dir, '--duration-ms', String(durationMs)],
        { encoding: 'utf8' },
      )
      result = JSON.parse(out.trim().split('\n').pop())
    } else {
      const channel =
        impl === 'ipckit'
          ? require(u.ROOT).FileChannel.frontend(dir)
          : require('../baseline/pure-js-channel').PureJsChannel.frontend(dir)
      const f0 = u.nowMs()
      const first = channel.recv().length
      const firstRecvUs = (u.nowMs() - f0) * 1000
      let calls = 0
      let nonEmpty = 0
      const t0 = u.nowMs()
      let t1 = t0
      while (t1 - t0 < durationMs) {
        for (let i = 0; i < 100; i++) if (channel.recv().length !== 0) nonEmpty++
        calls += 100
        t1 = u.nowMs()
      }
      channel.close()
      result = { first, firstRecvUs, calls, nonEmpty, usPerCall: ((t1 - t0) * 1000) / calls }
    }
    if (result.first !== messages) throw new Error(`first recv() returned ${result.first} messages, not ${messages}`)
    u.emitResult({ impl, ...result })
  } finally {
    u.rmDir(dir)
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
