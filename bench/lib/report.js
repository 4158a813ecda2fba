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
  const semi = run.summary['mem.recv.semi1']?.fields?.growthMB?.median
  if (semi !== undefined) {
    notes.push(
      `- With V8's young generation capped (\`--max-semi-space-size=1\`) the same 1,000,000-message run grows RSS by ` +
        `${fmt(semi)} MB: the growth in the default run is V8 enlarging its young generation under the allocation ` +
        `rate (a step, then flat), not memory the native core keeps.`,
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
  return `# Benchmarks

Generated by \`npm run bench\` (\`node bench/run.js\`) on ${run.meta.finished}. Raw numbers:
[\`${jsonPath}\`](${jsonPath}) (every run of every case). Do not edit this file by hand; re-run the suite.

## Machine

| | |
| --- | --- |
| CPU | ${m.cpu} (${m.cores} logical cores) |
| Memory | ${fmt(m.memGB)} GB |
| OS / kernel | ${m.os} / ${m.kernel} |
| Temp directory | \`${m.tmpdir}\` (${m.tmpfsType}) |
| Load average at start | ${m.loadavg.map((x) => x.toFixed(2)).join(', ')} |
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
   rename it. No lock, no JSON, no message list.

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
  recv path: 1,000,000 events written 50 per file replacement by a minimal protocol writer and
  drained with ipckit \`recv()\`; once more with V8's young generation capped at 1 MB, to separate
  V8 heap sizing from native memory. send path: ipckit \`sendEvent\` on the frontend and \`recv()\` on
  the backend end of the same directory, on tmpfs, for at most 45 s.
- **Acknowledgements**: the ipckit round trip and a 1 KB send loop whose reader (an ipckit backend
  in the same process) drains with \`recv()\` every 20 sends, with \`acknowledge\` on (the default)
  and off on both ends.
- **Load time**: \`require()\` of the package in a fresh \`node\` process (median of 7).

## Reproduce

\`\`\`sh
npm ci && npm run build
bash scripts/setup-python-peer.sh        # the reference peer in .peer-venv (done automatically if missing)
npm run bench                            # the whole suite, a few minutes; rewrites this file
node bench/run.js --only latency         # one metric (latency, throughput, throughput-tmpfs, recv, lag, acks, memory, require)
node bench/run.js --repeat 3             # repeats per metric (defaults: 5; Python round trip, lag, acks, tmpfs 3; memory 1; load time 7)
node bench/run.js --smoke                # the whole pipeline with tiny counts (< 15 s), as CI runs it
node bench/run.js --render               # rewrite this file from bench/results/latest.json
\`\`\`

\`--only\` and \`--smoke\` runs print the table and save their JSON, but leave this file and
\`bench/results/latest.json\` alone: targets are ratios within one complete run.
Other processes on the machine disturb file-system timings; compare ratios from one run.
`
}

module.exports = { consoleTable, consoleTargets, markdown, rows }
