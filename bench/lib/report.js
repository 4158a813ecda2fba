'use strict'

// Renders a finished run: the console table and BENCHMARKS.md.

const { fmt, targets: computeTargets } = require('./suite')

function rows(run) {
  const out = []
  for (const [metricName, metric] of Object.entries(run.metrics)) {
    for (const c of metric.cases) {
      const summary = run.summary[c.id]
      for (const [key, label, unit] of c.fields) {
        const s = summary?.fields?.[key]
        out.push({
          metric: metricName,
          title: metric.title,
          what: label,
          contender: c.label,
          median: s?.median,
          min: s?.min,
          max: s?.max,
          unit,
          runs: summary?.runs ?? 0,
          errors: summary?.errors?.length ?? 0,
        })
      }
    }
  }
  return out
}

function textTable(header, body) {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => String(r[i]).length)))
  const line = (cells) =>
    cells.map((c, i) => (i >= 2 && i <= 4 ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

function consoleTable(run) {
  const header = ['measurement', 'contender', 'median', 'min', 'max', 'unit', 'runs']
  const body = rows(run).map((r) => [
    r.what,
    r.contender,
    fmt(r.median),
    fmt(r.min),
    fmt(r.max),
    r.unit,
    r.errors ? `${r.runs} (${r.errors} failed)` : String(r.runs),
  ])
  return textTable(header, body)
}

function consoleTargets(targetList) {
  if (targetList.length === 0) return '(no targets: part of the suite only)'
  return targetList
    .map((t) => `${t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.detail}`)
    .join('\n')
}

function mdEscape(s) {
  return String(s).replace(/\|/g, '\\|')
}

function markdownTable(run) {
  const out = []
  let current = null
  for (const r of rows(run)) {
    if (r.title !== current) {
      current = r.title
      out.push(
        '',
        `### ${r.title}`,
        '',
        '| measurement | contender | median | min | max | unit |',
        '| --- | --- | ---: | ---: | ---: | --- |',
      )
    }
    const failed = r.errors ? ` (${r.errors} failed runs)` : ''
    out.push(
      `| ${mdEscape(r.what)} | ${mdEscape(r.contender)}${failed} | **${fmt(r.median)}** | ${fmt(r.min)} | ${fmt(r.max)} | ${r.unit} |`,
    )
  }
  return out.join('\n')
}

function observations(run) {
  const med = (id, key) => run.summary[id]?.fields?.[key]?.median
  const notes = []
  const floorSend = med('tput.floor.1024', 'perSecond')
  const pySend = med('tput.python.1024', 'perSecond')
  if (floorSend && pySend) {
    notes.push(
      `- On this file system a bare write-to-temp + rename of a 1 KB-message outbox (no lock, no JSON) runs at ` +
        `${fmt(floorSend)}/s (${fmt(1e6 / floorSend)} µs each); the Python reference sends ${fmt(pySend)}/s. ` +
        `5x the reference would be ${fmt(5 * pySend)}/s, ${fmt((5 * pySend) / floorSend)}x the floor.`,
    )
  }
  const fsIpckit = med('tputfs.ipckit.1024', 'perSecond')
  const fsPy = med('tputfs.python.1024', 'perSecond')
  const fsFloor = med('tputfs.floor.1024', 'perSecond')
  if (fsIpckit && fsPy) {
    notes.push(
      `- On tmpfs, at 1 KB: ipckit ${fmt(fsIpckit)}/s (${fmt(1e6 / fsIpckit)} µs per send), Python reference ${fmt(fsPy)}/s, ` +
        `floor ${fmt(fsFloor)}/s (${fmt(1e6 / fsFloor)} µs): ratio to the reference ${fmt(fsIpckit / fsPy)}x.`,
    )
  }
  const rttFloor = med('rtt.floor', 'p50')
  const rtt = med('rtt.ipckit', 'p50')
  if (rttFloor && rtt) {
    notes.push(
      `- Round trip: ipckit p50 ${fmt(rtt)} ms, the floor ${fmt(rttFloor)} ms; the difference (${fmt(rtt - rttFloor)} ms) is protocol and delivery work.`,
    )
  }
  for (const [id, what] of [
    ['mem.recv', 'recv run'],
    ['mem.recv.semi1', 'recv run with --max-semi-space-size=1'],
    ['mem.send', 'send run'],
  ]) {
    const last = run.summary[id]?.last
    if (!last?.rssTrailMB) continue
    notes.push(
      `- Memory, ${what} (${fmt(last.messages)} messages): RSS grew ${fmt(last.growthMB)} MB; V8 heapTotal ` +
        `${fmt(last.heapTotalGrowthMB)} MB, heapUsed after gc ${fmt(last.heapGrowthMB)} MB. RSS / heapTotal every 10% ` +
        `of the run (MB, no gc): ${last.rssTrailMB.join(', ')} / ${(last.heapTotalTrailMB || []).join(', ')}.`,
    )
  }
  const p50 = (id) => run.summary[id]?.fields?.p50?.median
  const handOffs = [
    ['the temp directory', 'rtt.ipckit', 'rtt.ipckit-sync', 'rtt.protocol-floor'],
    ['tmpfs', 'rttfs.ipckit', 'rttfs.ipckit-sync', 'rttfs.protocol-floor'],
  ].filter(([, promised, sync]) => p50(promised) !== undefined && p50(sync) !== undefined)
  if (handOffs.length) {
    const parts = handOffs.map(
      ([where, promised, sync, floor]) =>
        `on ${where} ${fmt(p50(sync))} ms against \`request()\`'s ${fmt(p50(promised))} ms` +
        (p50(floor) === undefined ? '' : ` (${fmt(p50(sync) / p50(floor))}x the protocol floor)`),
    )
    notes.push(
      `- What the hand-offs to the writer thread cost: with the synchronous sends (\`sendRequest\` + ` +
        `\`waitResponse\`, and \`sendResponse\` from a \`'request'\` listener), which write on the JavaScript ` +
        `thread, the round trip p50 is ${parts.join('; ')}. The promise calls keep their I/O off the ` +
        `JavaScript thread and pay this difference.`,
    )
  }
  const [swapping, renaming] = [p50('rtt.protocol-floor'), p50('rtt.protocol-floor-rename')]
  if (swapping !== undefined && renaming !== undefined) {
    notes.push(
      `- What putting a file in place by a swap spares (${require('node:os').tmpdir()}): the protocol floor's round ` +
        `trip p50 is ${fmt(swapping)} ms swapping, ${fmt(renaming)} ms renaming over the outbox ` +
        `(${fmt(renaming / swapping)}x). On ext4 and btrfs a rename over a file starts writing the new file's data ` +
        `back at once (ext4's auto_da_alloc), for programs that never fsync; a swap (renameat2's RENAME_EXCHANGE) ` +
        `then removing the old file does not. ipckit swaps there; on tmpfs and elsewhere both rename.`,
    )
  }
  const awake = (impl) => p50(`rttawake.${impl}`)
  const asleep = (impl) => p50(`rttfs.${impl}`)
  const contenders = [
    ['ipckit', 'ipckit'],
    ['protocol-floor', 'the protocol floor'],
    ['floor', 'the bare floor'],
  ]
  if (contenders.every(([impl]) => awake(impl) !== undefined && asleep(impl) !== undefined)) {
    const [rtt, protocolFloor, floor] = contenders.map(([impl]) => awake(impl))
    const gains = contenders.map(
      ([impl, name]) =>
        `${name} ${fmt(asleep(impl))} → ${fmt(awake(impl))} ms (${fmt(asleep(impl) - awake(impl))} ms less)`,
    )
    notes.push(
      `- What waking threads on idle CPUs costs: with every CPU kept out of its idle state (one SCHED_IDLE busy loop ` +
        `per CPU, which runs only when no other thread wants it), the tmpfs round trip p50 goes ${gains.join(', ')}: ` +
        `ipckit ${fmt(rtt / floor)}x the bare floor and ${fmt(rtt / protocolFloor)}x the protocol floor, against ` +
        `${fmt(asleep('ipckit') / asleep('floor'))}x and ${fmt(asleep('ipckit') / asleep('protocol-floor'))}x with idle CPUs. ` +
        `A virtual machine's idle CPU is slow to wake; ipckit's round trip has the most wake-ups (its hand-offs ` +
        `between the JavaScript, writer and watcher threads come on top of each side waking the other).`,
    )
  }
  const semi = run.summary['mem.recv.semi1']?.fields?.growthMB?.median
  const full = run.summary['mem.recv']?.fields?.growthMB?.median
  if (semi !== undefined && full !== undefined) {
    notes.push(
      `- With V8's young generation capped (\`--max-semi-space-size=1\`) the same 1,000,000-message run grows RSS by ` +
        `${fmt(semi)} MB (${fmt(full)} MB uncapped): what is left with the cap is what the native core and the ` +
        `process keep; the rest is V8 sizing its young generation to the allocation rate. The writer runs in a ` +
        `child process, as a peer does: in this process its garbage (the whole file serialized per write) once ` +
        `made V8 grow the young generation by 28 MB and the run 12.6 MB.`,
    )
  }
  const py = run.summary['rtt.python']?.results
  if (py?.length) {
    notes.push(
      `- The reference's own round trip is bimodal: \`wait_response\` checks at once, then every 50 ms, so a response ` +
        `that is already there by the first check takes ~1 ms and any other ~50 ms. On this ext4 the request becomes ` +
        `visible while the client's \`send_request\` is still returning, so the backend (polling every 1 ms) often ` +
        `answers before that first check. Per-run p50 / mean (ms): ` +
        `${py.map((r) => `${fmt(r.p50)} / ${fmt(r.mean)}`).join('; ')}.`,
    )
  }
  const flow = run.summary['lag.ipckit']?.fields?.flowRate?.median
  if (flow !== undefined && flow < 900) {
    notes.push(
      `- In the event-loop test the sending child reached only ${fmt(flow)} msg/s of the 1,000 asked for (its sends are ` +
        `file replacements competing for the same 2 cores), so the load was lighter than specified.`,
    )
  }
  const block = run.summary['block.hammer.promise']?.last
  if (block) {
    notes.push(
      `- Event-loop block with a Python writer sending 300 KB messages into the same outbox (last run): the ` +
        `longest \`promises.sendEvent()\` call took ${fmt(block.callMax)} ms to return its promise (all the ` +
        `JavaScript thread does for a send), the sync \`sendEvent()\` ${fmt(run.summary['block.hammer.sync']?.last?.callMax)} ms.`,
    )
  }
  const many = run.summary['channels.ipckit']?.last
  if (many) {
    notes.push(
      `- ${fmt(many.channels)} channels with listeners: ${fmt(many.threadsAdded)} threads and ${fmt(many.inotifyAdded)} inotify ` +
        `instance(s) added, ${fmt(many.ewatch)} EWATCH, ${fmt(many.emfile)} EMFILE; idle ${fmt(many.idleCpuPct)} % of a core ` +
        `(${fmt(many.idleNativeCpuPct)} % in the package's threads) and ` +
        `${fmt(many.wakeupsPerSecond)} wake-ups/s (${fmt(many.wakeupsPerSecond / many.channels)} per channel); ` +
        `${fmt(many.rssAddedMB)} MB more RSS; opening them took ${fmt(many.openMs)} ms, closing ${fmt(many.closeMs)} ms, ` +
        `and ${fmt(many.threadsAfterClose)} thread(s) remained after closing them all (this user's inotify limit: ` +
        `${fmt(many.maxUserInstances)} instances).`,
    )
  }
  const companion = run.summary.companion?.results
  if (companion?.length) {
    notes.push(
      `- The Python companion: per-run round trip p50 (ms), Node backend / \`ipckit_peer\` (watcher) / \`ipckit_peer\` ` +
        `(polling) / Python ref: ${companion.map((r) => [r.node, r.companion, r.companionPoll, r.reference].map((b) => fmt(b?.p50)).join(' / ')).join('; ')}. ` +
        `Wake mode: ${[...new Set(companion.map((r) => r.wakeMode))].join(', ')}.`,
    )
  }
  const on = run.summary['acks.rtt.on']?.fields?.p50?.median
  const off = run.summary['acks.rtt.off']?.fields?.p50?.median
  if (on && off) {
    const ton = run.summary['acks.tput.on']?.fields?.perSecond?.median
    const toff = run.summary['acks.tput.off']?.fields?.perSecond?.median
    notes.push(
      `- Acknowledgements: round trip p50 ${fmt(on)} ms with, ${fmt(off)} ms without; send + recv at 1 KB ${fmt(ton)} vs ${fmt(toff)} msg/s.`,
    )
  }
  return notes.join('\n')
}

function markdown(run, jsonPath) {
  const m = run.meta.machine
  const v = run.meta.versions
  const targetList = computeTargets(run.summary)
  const targetRows = targetList.map(
    (t) =>
      `| ${mdEscape(t.name)} | ${mdEscape(t.detail)} | ${t.pass === null ? 'n/a' : t.pass ? '**pass**' : '**FAIL**'} |`,
  )
  const loads = [m.loadavg, run.meta.loadavgEnd].filter(Boolean).map((l) => l[0])
  const busy = Math.max(...loads) > 0.5 * m.cores
  const busyNote = busy
    ? `\n**Taken on a busy machine:** the 1-minute load average was ${loads.map((x) => x.toFixed(2)).join(' at the start and ')}${loads.length > 1 ? ' at the end' : ''} on ${m.cores} cores (other work, such as builds and test runs, shared the CPU). Absolute times, and tail latencies most of all, are worse than on a quiet machine; compare the contenders measured side by side.\n`
    : ''
  return `# Benchmarks

Generated by \`npm run bench\` (\`node bench/run.js\`) on ${run.meta.finished}. Raw numbers:
[\`${jsonPath}\`](${jsonPath}) (every run of every case). Do not edit this file by hand; re-run the suite.
${busyNote}
## Machine

| | |
| --- | --- |
| CPU | ${m.cpu} (${m.cores} logical cores) |
| Memory | ${fmt(m.memGB)} GB |
| OS / kernel | ${m.os} / ${m.kernel} |
| Temp directory | \`${m.tmpdir}\` (${m.tmpfsType}) |
| Load average at start | ${m.loadavg.map((x) => x.toFixed(2)).join(', ')} |
| Load average at the end | ${(run.meta.loadavgEnd ?? []).map((x) => x.toFixed(2)).join(', ') || 'n/a'} |
| Node.js | ${v.node} |
| Python | ${v.python} (reference peer \`ipckit==${v.pythonIpckit}\`) |
| Rust | ${v.rust} |
| ipckit | ${v.ipckit} (commit ${v.git}, addon sha256 ${v.addon}) |

## Targets

Medians over the repeated runs of this one run, every contender measured side by side.

| target | measured | result |
| --- | --- | --- |
${targetRows.join('\n')}

## Results

Each cell is the median over ${run.meta.repeatNote}; min and max are over the same runs.
Round trips report the p50, p99 and mean of each run's 1,000 round trips (100 for the Python
reference, which polls every 50 ms).
${markdownTable(run)}

## Observations

${observations(run) || '(none)'}

## Contenders

1. **ipckit**: this package (\`FileChannel\`), release build of the native addon.
2. **Python ref**: \`ipckit==0.1.12\` from PyPI in \`.peer-venv\`, doing the same work in Python
   (\`bench/python/*.py\`). As a backend it answers from a 1 ms \`recv()\` loop; as a frontend it
   waits with its own \`wait_response\` (which polls every 50 ms).
3. **pure-JS**: \`bench/baseline/pure-js-channel.js\`, the protocol written by hand the way a Node
   user would: \`fs\` + \`JSON.stringify(…, null, 2)\` with sorted payload keys, the same \`.lock\`
   O_EXCL file, temp + rename, \`fs.watch\` on the directory, exactly-once by id; an unchanged inbox
   (same bytes) is not parsed again.
4. **floor**: \`bench/baseline/floor.js\`: write a few bytes to a temp file, rename, wake the other
   process with \`fs.watch\`, and back; for sends, write the bytes of a full outbox to a temp file and
   rename it. No lock, no JSON, no message list. Also called the *bare floor*.
5. **protocol floor** (issue 21): \`bench/protocol-floor/\`, a small Rust program (its own crate,
   none of the package's code; \`npm run bench\` builds it with \`cargo build --release\`) playing
   both ends of the round trip with the least work the protocol requires: create the \`.lock\`
   file (O_EXCL, the PID in it), read and parse the outbox, append, keep the newest 100, serialize
   the whole array as the reference does, write the \`.tmp\` file, put it in place of the outbox as
   the package does (on Linux on ext4 or btrfs a swap, renameat2's \`RENAME_EXCHANGE\`, then the old
   file removed: a rename over a file makes these file systems write its data back at once; a swap
   refused there ends the run; elsewhere a rename), delete the lock; the other side blocks on inotify (\`IN_MOVED_TO\` only, one \`read\` per wake-up),
   then reads and parses its whole inbox and takes the messages after the last id it saw. No fsync,
   no acknowledgements, no presence, no thread hand-offs; payloads stay raw JSON text (the
   frontend decodes the response's to check the echo). It never polls: a watcher that cannot start
   (exit 3) or a missed wake-up (exit 4) fails the run instead of reporting a number. The row
   *protocol floor, always renaming* is the same program renaming over the outbox everywhere: what
   the swap spares on ext4 (ipckit swaps since issue 21's fourth stop; an ipckit round trip on ext4
   or btrfs whose addon would rename fails the run).

## What is measured

- **Round trip**: \`request('echo', {…})\` from a frontend process to a backend child process;
  ${'`'}handle()${'`'} on the Node backends. 50 unmeasured warm-up round trips first.
- **Send throughput**: \`sendEvent\` in a loop for 1 s after the outbox was filled to its
  100-message cap, so every send also drops the oldest message. Payload \`{"data": "…"}\` of 100 B,
  1 KB or 10 KB of JSON. Nobody reads the other end.
- **Idle recv()**: the inbox holds 100 messages with 1 KB payloads and distinct timestamps (so the
  reference does not repeat them), untouched for 150 ms; after a first \`recv()\` drained them,
  \`recv()\` is called for 1 s.
- **Event loop**: in one process, \`perf_hooks.monitorEventLoopDelay\` (1 ms resolution) and
  \`fs.promises.readFile\` of an unrelated 1 MB file every 10 ms, for 3 s idle, then for 3 s while
  1,000 \`waitResponse\` (for requests nobody answers) are pending and a child process sends 1,000
  events/s that an \`'event'\` listener consumes. The ratio compares readFile p50 loaded vs idle.
- **Memory**: RSS after forced gc (\`--expose-gc\`), before and after the messages, in one process.
  recv path: 1,000,000 events written 50 per file replacement by a minimal protocol writer in a
  child process (as a peer is) and drained with ipckit \`recv()\`; once more with V8's young generation capped at 1 MB, to separate
  V8 heap sizing from native memory. send path: ipckit \`sendEvent\` on the frontend and \`recv()\` on
  the backend end of the same directory, on tmpfs, for at most 45 s.
- **Acknowledgements**: the ipckit round trip and a 1 KB send loop whose reader (an ipckit backend
  in the same process) drains with \`recv()\` every 20 sends, with \`acknowledge\` on (the default)
  and off on both ends.
- **Load time**: \`require()\` of the package in a fresh \`node\` process (median of 7).
- **Round trip on tmpfs**: the same round trip with the channel directory in \`/dev/shm\`.
- **Synchronous sends** (\`ipckit-sync\`): the same two processes, the frontend calling
  \`sendRequest\` then \`waitResponse\`, the backend answering from a \`'request'\` listener with
  \`sendResponse\`: both write on the JavaScript thread, with no hand-off to the writer thread.
- **Issue 21 ratios**: ipckit's round-trip p50 divided by the protocol floor's (target 1.3x, on
  the temp directory and on tmpfs) and by the bare floor's (target 1.5x on the temp directory,
  ext4 on the machine the issue was measured on, and 2.5x on tmpfs), all from the same run. A
  target not met is reported, not an error; a case that fell back to a slower mode fails.
  Where the rest goes (\`perf sched\`, \`perf record\` and \`--cpu-prof\` on this VM): each side's
  JavaScript thread hands its send to the writer thread and gets the peer's message from the
  watcher thread, so a round trip has 4 wake-ups between threads that the floor, one thread per
  process, does not have, plus a wake-up of our own watcher by our own rename (a directory watch
  cannot tell names apart; watching the inbox file instead costs more, below). What such a
  wasted wake-up costs, measured by adding to each protocol-floor process a thread that only reads
  its own inotify watch of the directory (two wasted wake-ups per side and round trip): 20-65 µs a
  round trip on tmpfs, 13-70 µs on ext4. Tried in the package: one I/O thread per process that
  writes and reads the watch (\`ppoll\` on an eventfd and the inotify descriptor) took our
  threads' wake-ups from about 3.2 to 2.05 per round trip and side (\`perf sched\`), yet the round
  trip did not move (4 alternating A/B pairs on tmpfs: p50 0.421 ms both ways): those wake-ups ran
  on the idle core, off the critical path. Not kept: reads would have waited behind writes.
  Writing on the JavaScript thread would remove two hand-offs, but the promise calls promise never
  to do file I/O there. Removed already: a wake-up of the backend's JavaScript thread after each handler reply
  was written (replies settle no promise; a failed write is reported as an \`'error'\`); a wake-up
  of the writer thread after each response (the outbox pruning is a deadline of the dispatcher's
  rounds); the watch of the inbox file itself while its writer renames (the kernel tore it down
  through a worker thread on every message: 40-85 µs of a round trip; it is kept only for a writer
  seen writing in place); re-scanning and re-parsing what the last version of the inbox held (a
  24 KB inbox with one new message: 60 to 23 µs a read); and most of a handler's context (4.5 to
  0.3 µs: its \`signal\` is made when asked for). Per round trip and side, the writer thread spends
  about 65 µs (the protocol's lock, read, write, rename and unlock, and waking the watchers), the
  watcher 35-70 µs, and the JavaScript thread 60-70 µs (the native call that queues the send and
  wakes the writer, about 17 µs of it; the caller's stack, 9 µs); a floor process spends 135 µs.
- **The Python companion** (issue 18, \`bench/cases/companion.js\`): one Node frontend process
  calls \`request('echo', {…})\` on four backend processes, each in its own directory: an ipckit Node
  backend (\`handle()\`), an \`ipckit_peer\` backend (\`Peer.backend\` + \`serve()\`, from
  \`python/\`, \`bench/python/peer_serve.py\`) woken by its file watcher, the same with the watcher
  off (\`IPCKIT_PEER_WAKE=poll\`: its polling fallback), and the Python reference's 1 ms \`recv()\`
  loop; 50 warm-up round trips each, then 1,000 each in 5 blocks, the order rotated from block to
  block. The ratio divides the companion's p50 (p99) by the Node backend's of the same run. Then,
  the polling backends stopped and 1 s without traffic, the CPU of the idle companion and of the
  idle Node backend over 5 s (the run time of all their threads, from
  \`/proc/<pid>/task/*/schedstat\`). On Linux a companion that reports a wake mode other than
  \`inotify\` ends the run with exit code 3 (no polling number is reported as the watcher's).

Issue 12 (never block the JavaScript thread; serve many channels from one process). Targets marked
"(issue 12)" above are that issue's, with the numbers it measured before the work ("before:").
A case whose channel reports \`EWATCH\` (its watcher failed, it would poll) exits with code 3 and
counts as failed instead of reporting a polling number; only the many-channels case, where
\`EWATCH\` is what is measured, counts it instead.

- **Event-loop block** (\`bench/cases/lock-block.js\`, \`bench/python/contend.py\`): in one process,
  \`perf_hooks.monitorEventLoopDelay\` with a 1 ms timer for 3 s while another process contends for
  the outbox: a Python process creates \`<outbox stem>.lock\` with its PID (as the reference writer
  does) and keeps it 500 ms, lets go for 50 ms, and again; or a Python reference writer sends
  300 KB events into the same outbox in a loop (100 of them at the cap: a 30 MB file). Every 10 ms
  one call: the sync \`sendEvent()\`, \`promises.sendEvent()\`, or \`request()\` (a Node backend child
  answers); or our end is the backend and \`handle('echo')\` replies to requests the Python process
  sends every 10 ms. "Max block" is the histogram's max minus its 1 ms period; the same figure for
  0.5 s before, with no calls and nobody contending, shows the machine's own noise. "Longest call"
  is the time one call took to return (for promise calls, to return the promise).
- **Burst to an acknowledging reader** (\`bench/cases/burst.js\`): 10,000 events with 1 KB payloads
  as fast as the sender can: \`promises.sendEvent()\` for all of them at once, then awaited; our sync
  \`sendEvent()\` in a loop (on \`ENOBUFS\` it waits 1 ms and retries); the reference's \`send_event()\`
  loop. The reader is an ipckit backend in another process with an \`'event'\` listener
  (acknowledging, the default). Time from the first send until the reader reports the last
  message (a \`burst.end\` marker); msg/s = events the reader got / that time. The reference ignores
  acknowledgements, so its outbox keeps only the newest 100 and the reader may miss some.
- **Burst to the reference reader**: the same with 1,000 events and the reader the Python
  reference calling \`recv()\` every 1 ms (deduplicating the messages it repeats); nobody
  acknowledges, so the outbox keeps the newest 100 and a sender that outruns the reader loses
  messages. Reports how many distinct events the reader got.
- **Timeout accuracy** (\`bench/cases/timeouts.js\`): a frontend with an \`'event'\` listener,
  \`pollIntervalMs: 2000\` and one wait pending for 10 minutes; then 200 \`waitResponse\` calls one
  after another for responses that never come, timeouts spread evenly over 5-50 ms in a shuffled
  order, 0-4 ms apart; lateness = time to the \`ETIMEDOUT\` rejection minus the timeout. The floor:
  \`setTimeout\` of the same lengths in the same process.
- **Many channels** (\`bench/cases/many-channels.js\`): 1,000 frontends, each in its own directory,
  each with an \`'event'\` listener, in one process (and, as the floor, \`fs.watch()\` on the same
  1,000 directories). Threads (\`/proc/self/task\`) and inotify instances (\`anon_inode:inotify\` in
  \`/proc/self/fd\`) added, \`EWATCH\`/\`EMFILE\` reported, CPU (\`process.cpuUsage\`, and apart the
  package's own threads' \`utime + stime\`) and wake-ups (the sum of \`voluntary_ctxt_switches\` and
  \`nonvoluntary_ctxt_switches\` of every thread) over 10 s of idle after 2 s to settle and a gc
  (the window spans five safety re-reads and three heartbeat periods), and whether another process
  can still \`fs.watch()\` meanwhile. One run: while it lasts (about 15 s) it may hold many of the
  user's inotify instances.

## Reproduce

\`\`\`sh
npm ci && npm run build
bash scripts/setup-python-peer.sh        # the reference peer in .peer-venv (done automatically if missing)
npm run bench                            # the whole suite, a few minutes; rewrites this file
node bench/run.js --only latency         # one metric: latency, latency-tmpfs, latency-awake, companion, throughput, throughput-tmpfs,
                                         #   recv, lag, acks, block, burst, batching, timeouts, channels, memory, require
node bench/run.js --repeat 3             # runs per case (defaults: 5; 3 for the Python round trip, companion, lag, acks,
                                         #   tmpfs throughput, block, burst, batching, timeouts; 1 for memory, channels;
                                         #   7 load time)
node bench/run.js --smoke                # the whole pipeline with tiny counts (< 45 s), as CI runs it
node bench/run.js --render               # rewrite this file from bench/results/latest.json
\`\`\`

\`--only\` and \`--smoke\` runs print the table and save their JSON, but leave this file and
\`bench/results/latest.json\` alone: targets are ratios within one complete run.
Other processes on the machine disturb file-system timings; compare ratios from one run.
`
}

module.exports = { consoleTable, consoleTargets, markdown, rows }
