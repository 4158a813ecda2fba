'use strict'

// `ipckit monitor <dir>`: a live view of both directions of a channel.
//
// The monitor is a bystander: it never opens a FileChannel, takes no lock and writes nothing.
// It reads both message files (read-only) with the core's own reader (lib/addon.js
// NativeFileReader: each message once, in file order, loss and malformed entries reported)
// whenever the directory changes (fs.watch) and on a poll as a safety net. Readers of the
// protocol do not consume messages (each keeps its own position), so the real peers see exactly
// what they would see without it.

const fs = require('node:fs')
const path = require('node:path')
const { NativeFileReader, checkChannelDir } = require('../addon.js')
const {
  EXIT,
  MESSAGE_FILES,
  ALLOW_INSECURE,
  argumentsError,
  parseCommandArgs,
  intOption,
  requireDirectory,
  colorEnabled,
  painter,
  clockTime,
  out,
} = require('./common.js')

const summary = 'live view of both directions of a channel, one message a line'

const help = `Usage: ipckit monitor <dir> [options]

Prints every message of the channel in <dir> as it appears, in both directions, one a line:
time, direction (F→B frontend to backend, F←B backend to frontend), type, method or the id
answered, and the payload. Messages already in the files are printed first (unless --new).

The monitor only reads the two message files: it does not take messages away from the real
frontend and backend, takes no lock, and writes nothing. Stop it with Ctrl-C.

Options:
      --json              one JSON object per line: the message plus "direction" and "file"
  -n, --new               skip the messages already in the files when the monitor starts
      --count <n>         exit after printing n messages
      --duration-ms <ms>  exit after this long
      --interval-ms <ms>  poll period besides the directory watch (default 250)
      --max-width <n>     cut the payload text to n characters in the plain view (default 200;
                          0: never cut). --json never cuts.
      --allow-insecure    watch a directory other users can write (refused otherwise, as a
                          channel refuses to open it; see SECURITY.md)
  -h, --help              show this help

Colours are used on a terminal, unless NO_COLOR is set (FORCE_COLOR=1 forces them).

Examples:
  ipckit monitor /tmp/chan
  ipckit monitor /tmp/chan --json | jq 'select(.type == "event")'
`

const ARGS = {
  json: { type: 'boolean' },
  new: { type: 'boolean', short: 'n' },
  count: { type: 'string' },
  'duration-ms': { type: 'string' },
  'interval-ms': { type: 'string' },
  'max-width': { type: 'string' },
  ...ALLOW_INSECURE,
}

/** Request ids remembered to show what a response answers (a file keeps at most its cap). */
const SEEN_LIMIT = 2000

function compact(value, maxWidth) {
  const text = JSON.stringify(value)
  return truncate(text === undefined ? String(value) : text, maxWidth)
}

function truncate(text, maxWidth) {
  return maxWidth > 0 && text.length > maxWidth ? `${text.slice(0, Math.max(1, maxWidth - 1))}…` : text
}

/**
 * One plain-view line. `methodOf(id)` names the method of a request seen earlier, so that a
 * response shows what it answers.
 */
function formatLine(entry, paint, maxWidth, methodOf = () => undefined) {
  const { message, spec } = entry
  const time = paint.dim(clockTime(message.timestamp))
  const arrow = spec.writer === 'frontend' ? paint.cyan(spec.arrow) : paint.magenta(spec.arrow)
  const typeColor = { request: paint.yellow, response: paint.green, event: paint.blue }[message.type] ?? paint.red
  const type = typeColor(message.type.padEnd(8))
  let subject
  if (message.type === 'response') {
    const answered = methodOf(message.replyTo)
    subject = `↩ ${answered === undefined ? '' : `${answered} `}(${String(message.replyTo ?? '?').slice(0, 8)})`
  } else {
    subject = `${message.method ?? '?'}${message.type === 'request' ? ` (${message.id.slice(0, 8)})` : ''}`
  }
  const body =
    message.error !== undefined
      ? paint.red(`error: ${truncate(message.error, maxWidth)}`)
      : compact(message.payload, maxWidth)
  return `${time}  ${arrow}  ${type}  ${paint.bold(subject.padEnd(24))}  ${body}\n`
}

function run(argv) {
  const { values, positionals } = parseCommandArgs('monitor', argv, ARGS)
  if (values.help) {
    out(help)
    return EXIT.OK
  }
  if (positionals.length !== 1) throw argumentsError('monitor', 'one <dir>', positionals.length)
  const dir = positionals[0]
  const count = intOption(values.count, 'count', Infinity, 1)
  const durationMs = intOption(values['duration-ms'], 'duration-ms', undefined, 1)
  const intervalMs = intOption(values['interval-ms'], 'interval-ms', 250, 10)
  const maxWidth = intOption(values['max-width'], 'max-width', 200, 0)
  requireDirectory(dir)
  if (!values['allow-insecure']) checkChannelDir(dir)

  const paint = painter(!values.json && colorEnabled(process.stdout))
  const states = MESSAGE_FILES.map((spec) => ({
    spec,
    reader: new NativeFileReader(path.join(dir, spec.file)),
  }))
  let printed = 0
  // Request id → method, to show what a response answers (bounded like the files).
  const methods = new Map()
  const remember = (message) => {
    if (message.type !== 'request' || message.method === undefined) return
    methods.set(message.id, message.method)
    if (methods.size > SEEN_LIMIT) methods.delete(methods.keys().next().value)
  }

  // New messages of one file since the last look; problems (a malformed entry, a file that is
  // not JSON, messages lost to the writer's cap) are reported once each by the core's reader.
  const look = (state) => {
    const { messages, errors } = state.reader.read()
    for (const error of errors) {
      // A missing file is a channel not yet created (or cleared by a reference writer): quiet.
      if (error.code !== 'ENOENT') process.stderr.write(`ipckit monitor: ${error.message} (${error.code})\n`)
    }
    return messages.map((message) => ({ message, spec: state.spec }))
  }

  return new Promise((resolve) => {
    let watcher = null
    let timer = null
    let deadline = null
    let scheduled = false
    let finished = false

    const finish = (code) => {
      if (finished) return
      finished = true
      watcher?.close()
      clearInterval(timer)
      clearTimeout(deadline)
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      resolve(code)
    }
    const onSignal = () => finish(EXIT.OK)

    const scan = (quiet) => {
      scheduled = false
      if (finished) return
      const fresh = []
      for (const state of states) fresh.push(...look(state))
      for (const entry of fresh) remember(entry.message)
      if (quiet) return
      fresh.sort((a, b) => a.message.timestamp - b.message.timestamp)
      for (const entry of fresh) {
        if (values.json)
          out(`${JSON.stringify({ ...entry.message, direction: entry.spec.direction, file: entry.spec.file })}\n`)
        else out(formatLine(entry, paint, maxWidth, (id) => methods.get(id)))
        if (++printed >= count) return finish(EXIT.OK)
      }
    }
    const schedule = () => {
      if (scheduled || finished) return
      scheduled = true
      setImmediate(() => scan(false))
    }

    scan(Boolean(values.new))
    if (finished) return
    try {
      watcher = fs.watch(dir, { persistent: true }, schedule)
      watcher.on('error', () => {
        // The directory went away or the platform gave up watching: the poll carries on.
        watcher.close()
        watcher = null
      })
    } catch {
      watcher = null // watching unsupported here (some network file systems): poll only
    }
    timer = setInterval(schedule, intervalMs)
    if (durationMs !== undefined) deadline = setTimeout(() => finish(EXIT.OK), durationMs)
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}

module.exports = { summary, help, run, formatLine }
