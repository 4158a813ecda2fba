// A long "render" on a Python backend (backend.py, built on ipckit_peer) with a progress bar in
// the terminal; Ctrl-C cancels it: the request rejects with ABORT_ERR at once and the backend's
// handler is told to stop (task.cancel).
//
// Usage: node frontend.mjs [channel-dir] [--frames N] [--abort-after N]
//   --abort-after N (or IPCKIT_ABORT_AFTER=N): cancel after N progress updates, as if Ctrl-C
//   had been pressed (for scripts and tests).

import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'

// ipckit from node_modules (npm install ipckit), else this repository (built with npm run build).
const { FileChannel } = await import('ipckit').catch(() => import('../../index.mjs'))

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { frames: { type: 'string', default: '50' }, 'abort-after': { type: 'string' } },
})
const dir = positionals[0] ?? path.join(os.tmpdir(), 'ipckit-long-render')
const frames = Number(values.frames)
const abortAfter = Number(values['abort-after'] ?? process.env.IPCKIT_ABORT_AFTER ?? Infinity)
const tty = process.stdout.isTTY

const channel = FileChannel.frontend(dir)
channel.on('error', (error) => console.error(`frontend: channel problem: ${error.code} ${error.message}`))
channel.on('peer', (peer) => {
  if (peer.state === 'gone') console.error(`\nfrontend: the backend (pid ${peer.pid ?? '?'}) is gone`)
})

/** `[#########...........]  18/50  36%  frame 18/50` on one line, redrawn in place. */
function drawBar({ progress, total, message }) {
  const width = 30
  const done = total ? Math.min(1, progress / total) : 0
  const filled = Math.round(done * width)
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`
  const count = total ? `${progress}/${total}  ${String(Math.round(done * 100)).padStart(3)}%` : String(progress)
  const line = `${bar}  ${count}  ${message ?? ''}`
  // Not a terminal (a pipe, a log): one line per update instead of redrawing.
  process.stdout.write(tty ? `\r\x1b[K${line}` : `${line}\n`)
}

const controller = new AbortController()
let interrupts = 0
process.on('SIGINT', () => {
  interrupts += 1
  if (interrupts > 1) process.exit(130) // a second Ctrl-C: do not wait for anything
  controller.abort('user pressed Ctrl-C')
})

let code = 0
let rendering = false
try {
  console.log(`frontend: waiting for the backend on ${dir} ...`)
  const peer = await channel.ready({ timeoutMs: 30000, signal: controller.signal })
  if (peer.methods && !peer.methods.includes('render')) throw new Error(`the backend has no 'render' method`)
  console.log(`frontend: backend ready (pid ${peer.pid}); rendering ${frames} frames, Ctrl-C cancels`)
  let updates = 0
  rendering = true
  const result = await channel.request(
    'render',
    { frames, scene: 'shot_010' },
    {
      signal: controller.signal,
      timeoutMs: 3_600_000, // the whole render may take an hour...
      idleTimeoutMs: 15_000, // ...but 15 s without a frame means it is stuck
      onProgress: (update) => {
        drawBar(update)
        updates += 1
        if (updates >= abortAfter) controller.abort(`aborted after ${updates} updates (--abort-after)`)
      },
    },
  )
  if (tty) process.stdout.write('\n')
  console.log(`frontend: done: ${JSON.stringify(result)}`)
} catch (error) {
  if (tty) process.stdout.write('\n')
  if (error.code === 'ABORT_ERR' && !rendering) {
    code = 130
    console.log('frontend: cancelled while waiting for the backend')
  } else if (error.code === 'ABORT_ERR') {
    code = 130
    console.log(`frontend: cancelled (${controller.signal.reason}); the backend was told to stop`)
    // The handler still answers once it stopped; that late reply is dropped, and counted.
    const deadline = Date.now() + 5000
    while (channel.stats.droppedResponses === 0 && Date.now() < deadline && channel.peer.state !== 'gone') {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    if (channel.stats.droppedResponses > 0) console.log('frontend: the backend stopped (its late answer was dropped)')
    else console.log('frontend: no word from the backend that it stopped')
  } else if (error.code === 'ETIMEDOUT' && !channel.peer.pid) {
    code = 1
    console.error(`frontend: no backend on ${dir}: start it with  python backend.py ${dir}`)
  } else {
    code = 1
    console.error(`frontend: ${error.code ?? 'error'}: ${error.message}`)
  }
} finally {
  channel.close()
}
process.exitCode = code
