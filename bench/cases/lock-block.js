'use strict'

// How long calls block the JavaScript thread while another process contends for our outbox.
//   mode = hold    a Python process holds `<outbox stem>.lock` (its PID inside, as the reference
//                  writer) for `holdMs`, lets go for 50 ms, takes it again, ...
//          hammer  a Python reference writer sends 300 KB events into the same outbox in a loop
//   call = sync     channel.sendEvent() every `everyMs` (ELOCKED after lockTimeoutMs is counted)
//          promise  channel.promises.sendEvent() every `everyMs`
//          request  channel.request('echo') every `everyMs`, a Node backend child answering
//          handler  our end is the backend: handle('echo') replies into the contended outbox,
//                   to requests the Python process sends every `everyMs` (as the reference frontend)
// Measured in this process with perf_hooks.monitorEventLoopDelay (1 ms resolution: a 1 ms timer,
// so an idle loop records ~1 ms; `blockMax` is the recorded max minus that 1 ms), first for
// `idleMs` with no calls and no contention (the machine's noise), then for `durationMs` under
// contention. `callMax` is the longest time one call took to return (the promise, for promise
// calls). Waits for every promise to settle afterwards and counts how many succeeded.

const path = require('node:path')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const u = require('../lib/util')

const opts = JSON.parse(process.argv[2] || '{}')
const { mode = 'hold', call = 'promise', durationMs = 3000, idleMs = 500, everyMs = 10, holdMs = 500 } = opts
const RESOLUTION_MS = 1

function loopDelay(histogram) {
  return {
    lagMax: histogram.max / 1e6,
    lagP99: histogram.percentile(99) / 1e6,
    lagP50: histogram.percentile(50) / 1e6,
    blockMax: Math.max(0, histogram.max / 1e6 - RESOLUTION_MS),
  }
}

async function main() {
  const { FileChannel } = require(u.ROOT)
  const dir = u.tmpDir(`block-${mode}-${call}`)
  const backendEnd = call === 'handler'
  const stem = backendEnd ? 'backend_to_frontend' : 'frontend_to_backend'
  let contender
  let answerer
  let channel
  try {
    channel = backendEnd ? FileChannel.backend(dir) : FileChannel.frontend(dir)
    const failures = {}
    const errors = u.failOnPolling(channel, `lock-block ${mode}/${call}`)
    let handled = 0
    if (backendEnd) {
      channel.handle('echo', (params) => {
        handled++
        return params
      })
    }
    if (call === 'request') {
      answerer = await u.spawnPeer(process.execPath, [path.join(__dirname, 'rtt-backend.js'), 'ipckit', dir], {
        label: 'ipckit backend',
      })
    }
    const payload = u.makePayload(1024)

    // The machine's noise: the same loop, no calls, nobody contending.
    const idleHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    idleHistogram.enable()
    await u.sleep(idleMs)
    idleHistogram.disable()

    const args = [u.pyScript('contend.py'), '--dir', dir, '--stem', stem, '--mode', mode, '--hold-ms', String(holdMs)]
    if (backendEnd) args.push('--request-every-ms', String(everyMs))
    contender = await u.spawnPeer(u.peerPython(), args, { label: `python ${mode}` })
    await u.sleep(100) // the lock is taken / the first big message is being written

    const callTimes = []
    const pending = []
    let calls = 0
    let ok = 0
    const fail = (error) => {
      const code = error?.code || error?.name || 'unknown'
      failures[code] = (failures[code] || 0) + 1
    }
    const once = () => {
      const t0 = u.nowMs()
      if (call === 'sync') {
        try {
          channel.sendEvent('tick', payload)
          ok++
        } catch (error) {
          fail(error)
        }
      } else if (call === 'promise') {
        pending.push(channel.promises.sendEvent('tick', payload, { timeoutMs: 30000 }).then(() => ok++, fail))
      } else if (call === 'request') {
        pending.push(channel.request('echo', { i: calls }, { timeoutMs: 30000 }).then(() => ok++, fail))
      }
      callTimes.push(u.nowMs() - t0)
      calls++
    }

    const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    const cpu0 = process.cpuUsage()
    const t0 = u.nowMs()
    histogram.enable()
    if (call === 'handler') {
      await u.sleep(durationMs)
    } else {
      while (u.nowMs() - t0 < durationMs) {
        once()
        await u.sleep(everyMs)
      }
    }
    histogram.disable()
    const elapsed = u.nowMs() - t0
    const cpu = process.cpuUsage(cpu0)

    const exit = await u.stopPeer(contender)
    const contention = contender.lines.find((l) => l.startsWith(u.RESULT_PREFIX))
    const said = contender.stderr.trim().split('\n').slice(-5).join('\n')
    contender = null
    if (exit && (exit.code || exit.signal)) {
      throw new Error(`python ${mode} exited with ${exit.signal || exit.code}${said ? `: ${said}` : ''}`)
    }
    await Promise.all(pending)
    if (backendEnd) await u.sleep(300) // the last replies
    const callStats = u.percentiles(callTimes.length ? callTimes : [NaN])
    u.emitResult({
      mode,
      call,
      idle: loopDelay(idleHistogram),
      ...loopDelay(histogram),
      callMax: callTimes.length ? callStats.max : null,
      callP99: callTimes.length ? callStats.p99 : null,
      calls: backendEnd ? handled : calls,
      ok: backendEnd ? handled : ok,
      failures,
      errors,
      cpuPct: ((cpu.user + cpu.system) / 1000 / elapsed) * 100,
      contention: contention ? JSON.parse(contention.slice(u.RESULT_PREFIX.length)) : null,
    })
  } finally {
    if (contender) await u.stopPeer(contender, 500)
    if (answerer) await u.stopPeer(answerer, 1000)
    if (channel && !channel.closed) channel.close()
    u.rmDir(dir)
  }
}

u.runCase(main)
