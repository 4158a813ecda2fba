'use strict'

// The cost of many open channels with listeners in one process, each in its own directory.
//   impl = ipckit   FileChannel.frontend(dir) + an 'event' listener (and an 'error' listener that
//                   counts EWATCH / EMFILE: here they are the measurement, not a reason to stop)
//          fswatch  the floor: fs.watch() on each directory (libuv shares one inotify instance)
// Reports threads added (/proc/self/task), inotify instances added (anon_inode:inotify in
// /proc/self/fd), channels whose watcher failed (EWATCH) or hit EMFILE, CPU and wake-ups (context
// switches of all threads, /proc/self/task/*/status) over `idleMs` of idle (after a gc, when
// node runs with --expose-gc), and the CPU of the package's own threads apart, minus nothing: the
// same process's idle figures before opening anything are reported beside them. While the
// channels are open, another process tries fs.watch(): EMFILE there means this process used up the
// user's inotify instances (fs.inotify.max_user_instances) for everyone.

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const u = require('../lib/util')

const opts = JSON.parse(process.argv[2] || '{}')
const { impl = 'ipckit', channels = 1000, idleMs = 3000, settleMs = 1000 } = opts

// The package's own threads: the dispatcher, the writer and notify's watcher thread.
const NATIVE_THREADS = ['ipckit-', 'notify-rs']

async function idleCost(ms) {
  // Garbage of the set-up is collected first: V8 would otherwise spend the window on it.
  globalThis.gc?.()
  const cpu0 = process.cpuUsage()
  const native0 = u.threadCpuSeconds(NATIVE_THREADS)
  const cs0 = u.contextSwitches()
  const t0 = u.nowMs()
  await u.sleep(ms)
  const seconds = (u.nowMs() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return {
    cpuPct: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
    nativeCpuPct: ((u.threadCpuSeconds(NATIVE_THREADS) - native0) / seconds) * 100,
    wakeupsPerSecond: (u.contextSwitches() - cs0) / seconds,
  }
}

function otherProcessWatch(dir) {
  const script = `try { require('fs').watch(${JSON.stringify(dir)}).close(); console.log('ok') } catch (e) { console.log(e.code || e.message) }`
  try {
    return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 }).trim()
  } catch (error) {
    return `failed: ${error.message.split('\n')[0]}`
  }
}

async function main() {
  const root = u.tmpDir(`channels-${impl}`)
  const open = []
  try {
    const dirs = Array.from({ length: channels }, (_, i) => path.join(root, `c${i}`))
    for (const dir of dirs) fs.mkdirSync(dir, { mode: 0o700 })
    const { FileChannel } = impl === 'ipckit' ? require(u.ROOT) : {}
    await u.sleep(200)
    const before = { threads: u.threadCount(), inotify: u.inotifyCount(), rssMB: process.memoryUsage().rss / 2 ** 20 }
    const baseline = await idleCost(Math.min(idleMs, 1000))

    const problems = {}
    const failedChannels = new Set()
    const count = (code, i) => {
      problems[code] = (problems[code] || 0) + 1
      if (i !== undefined) failedChannels.add(i)
    }
    const t0 = u.nowMs()
    dirs.forEach((dir, i) => {
      try {
        if (impl === 'ipckit') {
          const channel = FileChannel.frontend(dir)
          channel.on('error', (error) => count(error.code || error.name || 'unknown', i))
          channel.on('event', () => {})
          open.push(channel)
        } else {
          open.push(fs.watch(dir, () => {}))
        }
      } catch (error) {
        count(error.code || error.name || 'unknown', i)
      }
    })
    const openMs = u.nowMs() - t0
    await u.sleep(settleMs) // watchers up; a watcher that fails reports EWATCH by now
    const after = { threads: u.threadCount(), inotify: u.inotifyCount(), rssMB: process.memoryUsage().rss / 2 ** 20 }
    const idle = await idleCost(idleMs)
    const others = otherProcessWatch(root)
    const c0 = u.nowMs()
    for (const c of open) c.close()
    const closeMs = u.nowMs() - c0
    const opened = open.length
    open.length = 0
    await u.sleep(200)
    u.emitResult({
      impl,
      channels,
      opened,
      failedChannels: failedChannels.size,
      openMs,
      closeMs,
      threadsBefore: before.threads,
      threadsAdded: after.threads - before.threads,
      inotifyAdded: after.inotify - before.inotify,
      ewatch: problems.EWATCH ?? 0,
      emfile: problems.EMFILE ?? 0,
      problems,
      rssAddedMB: after.rssMB - before.rssMB,
      idleCpuPct: idle.cpuPct,
      idleNativeCpuPct: idle.nativeCpuPct,
      idleMs,
      wakeupsPerSecond: idle.wakeupsPerSecond,
      baselineCpuPct: baseline.cpuPct,
      baselineWakeupsPerSecond: baseline.wakeupsPerSecond,
      threadsAfterClose: u.threadCount() - before.threads,
      otherProcessWatch: others,
      otherProcessEmfile: others === 'EMFILE' ? 1 : 0,
      maxUserInstances: Number(fs.readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8')),
    })
  } finally {
    for (const c of open) c.close()
    u.rmDir(root)
  }
}

u.runCase(main)
