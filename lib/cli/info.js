'use strict'

// `ipckit info <dir>`: what is in a channel directory, read-only.

const fs = require('node:fs')
const path = require('node:path')
const { inspectMessageFile } = require('../addon.js')
const { DEFAULTS } = require('../constants.js')
const {
  EXIT,
  MESSAGE_FILES,
  argumentsError,
  requireDirectory,
  parseCommandArgs,
  colorEnabled,
  painter,
  clockTime,
  humanDuration,
  out,
} = require('./common.js')

const summary = 'channel info, message counts, lock state, permissions'

const help = `Usage: ipckit info <dir> [options]

Shows, without changing anything: the .channel_info file, and for each message file its size,
message count (by type), newest message, permissions (mode, owner) and whether you can read and
write it, its acknowledging readers (ipckit-for-Node channels: PID, liveness, unread count), and
the state of its writer's lock (free, or held: by which PID, whether that process
is running, how old the lock is, and whether it is stale, i.e. older than ${DEFAULTS.staleLockMs / 1000} s).

Exit code 0 when <dir> holds a channel, 1 when it does not exist or holds no channel file.

Options:
      --json   print one JSON object instead of text
  -h, --help   show this help
`

const ARGS = { json: { type: 'boolean' } }

let userNames = null

/** The user name of a uid from /etc/passwd, or null (Windows, or no entry). */
function userName(uid) {
  if (userNames === null) {
    userNames = new Map()
    try {
      for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const [name, , id] = line.split(':')
        if (name && id !== undefined && !userNames.has(Number(id))) userNames.set(Number(id), name)
      }
    } catch {
      // no passwd file: names stay unknown
    }
  }
  return userNames.get(uid) ?? null
}

function access(file, mode) {
  try {
    fs.accessSync(file, mode)
    return true
  } catch {
    return false
  }
}

function permissions(file, stat) {
  return {
    mode: `0${(stat.mode & 0o777).toString(8).padStart(3, '0')}`,
    symbolic: symbolicMode(stat),
    uid: stat.uid,
    gid: stat.gid,
    owner: userName(stat.uid),
    readable: access(file, fs.constants.R_OK),
    writable: access(file, fs.constants.W_OK),
  }
}

function symbolicMode(stat) {
  const kind = stat.isDirectory() ? 'd' : stat.isFile() ? '-' : '?'
  let text = kind
  for (const shift of [6, 3, 0]) {
    const bits = (stat.mode >> shift) & 7
    text += `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? 'x' : '-'}`
  }
  return text
}

/**
 * One message file: its stat and permissions here; its messages, its writer's lock and its
 * acknowledging readers from the core (the rules the writer and reader use), read-only.
 */
function messageFile(dir, spec) {
  const file = path.join(dir, spec.file)
  const stem = spec.file.replace(/\.json$/, '')
  const inspected = JSON.parse(inspectMessageFile(file))
  const info = {
    file,
    writer: spec.writer,
    reader: spec.reader,
    exists: false,
    lock: inspected.lock,
    tmpExists: fs.existsSync(path.join(dir, `${stem}.tmp`)),
  }
  let stat
  try {
    stat = fs.statSync(file)
  } catch (error) {
    if (error.code !== 'ENOENT') info.error = error.message
    return info
  }
  info.exists = true
  info.size = stat.size
  info.modified = stat.mtimeMs
  Object.assign(info, permissions(file, stat))
  if (inspected.parseError !== undefined) info.parseError = inspected.parseError
  else if (inspected.summary) Object.assign(info, inspected.summary)
  info.readers = inspected.readers
  return info
}

function channelInfo(dir) {
  const file = path.join(dir, '.channel_info')
  try {
    return { file, exists: true, content: JSON.parse(fs.readFileSync(file, 'utf8')) }
  } catch (error) {
    if (error.code === 'ENOENT') return { file, exists: false }
    return { file, exists: true, error: error.message }
  }
}

function gather(dir) {
  const now = Date.now()
  const stat = requireDirectory(dir)
  const report = {
    dir: path.resolve(dir),
    directory: permissions(dir, stat),
    channelInfo: channelInfo(dir),
    files: {},
  }
  for (const spec of MESSAGE_FILES) report.files[spec.key] = messageFile(dir, spec)
  report.isChannel = report.channelInfo.exists || Object.values(report.files).some((f) => f.exists)
  return { report, now }
}

function yesNo(flag, paint) {
  return flag ? paint.green('yes') : paint.red('no')
}

function access2(info, paint) {
  return `readable ${yesNo(info.readable, paint)}, writable ${yesNo(info.writable, paint)}`
}

function owner(info) {
  return `${info.owner ?? '?'} (uid ${info.uid}, gid ${info.gid})`
}

function render(report, now, paint) {
  const lines = [paint.bold(`Channel ${report.dir}`)]
  const ci = report.channelInfo
  if (!ci.exists) lines.push(`  info       ${paint.yellow('no .channel_info')} (nobody opened this channel yet)`)
  else if (ci.error) lines.push(`  info       ${paint.red(`.channel_info unreadable: ${ci.error}`)}`)
  else {
    const c = ci.content
    const created =
      typeof c.created === 'number'
        ? `, created ${new Date(c.created).toISOString()} (${humanDuration(now - c.created)} ago)`
        : ''
    lines.push(`  protocol   ${c.protocol ?? '?'} ${c.version ?? '?'}${created}`)
  }
  const d = report.directory
  lines.push(`  directory  ${d.symbolic} ${d.mode} owner ${owner(d)}, ${access2(d, paint)}`)
  for (const spec of MESSAGE_FILES) {
    const f = report.files[spec.key]
    lines.push('', paint.bold(`${spec.file}`) + `  (${f.writer} → ${f.reader})`)
    if (!f.exists) {
      lines.push(`  file       ${f.error ? paint.red(f.error) : paint.yellow('missing')}`)
    } else {
      if (f.parseError) lines.push(`  messages   ${paint.red(`cannot be parsed: ${f.parseError}`)}`)
      else {
        const kinds = Object.entries(f.byType)
          .map(([type, n]) => `${n} ${type}${n === 1 ? '' : 's'}`)
          .join(', ')
        const errs = f.errorResponses ? `, ${f.errorResponses} error response${f.errorResponses === 1 ? '' : 's'}` : ''
        const newest = f.newest != null ? `; newest ${clockTime(f.newest)} (${humanDuration(now - f.newest)} ago)` : ''
        lines.push(`  messages   ${f.messages} (${kinds}${errs})${newest}`)
      }
      lines.push(`  size       ${f.size} bytes, modified ${humanDuration(now - f.modified)} ago`)
      lines.push(`  mode       ${f.symbolic} ${f.mode} owner ${owner(f)}, ${access2(f, paint)}`)
    }
    const l = f.lock
    let lock
    if (l.held === false) lock = paint.green('free')
    else if (l.held === null) lock = paint.red(`unknown: ${l.error}`)
    else if (l.error && l.pid == null) lock = paint.red(`held (${l.error})`)
    else {
      const who = l.pid == null ? 'an unknown PID' : `PID ${l.pid} (${l.running ? 'running' : 'not running'})`
      const text = `held by ${who}, ${humanDuration(l.ageMs)} old`
      lock = l.stale
        ? paint.red(`${text}: stale (older than ${DEFAULTS.staleLockMs / 1000} s), the next writer takes it over`)
        : paint.yellow(text)
    }
    lines.push(`  lock       ${lock}`)
    if (f.readers && f.readers.length > 0) {
      lines.push(
        `  readers    ${f.readers.length} acknowledging (ipckit for Node; the Python reference publishes none)`,
      )
      for (const r of f.readers) {
        if (r.error) {
          lines.push(`    ${r.id.slice(0, 8)}  ${paint.red(r.error)}`)
          continue
        }
        const where = `PID ${r.pid ?? '?'}${r.host ? ` on ${r.host}` : ''}${r.running == null ? '' : r.running ? ' (running)' : ' (not running)'}`
        const seen =
          r.ageMs == null
            ? 'never'
            : `${humanDuration(r.ageMs)} ago${r.byProcess ? ' (no heartbeat: live while its process runs)' : ''}`
        const unread =
          r.unread === undefined
            ? ''
            : r.unread === null
              ? ', its last message is gone (it will report ELOST)'
              : `, ${r.unread} unread`
        const state = r.live ? paint.green('live') : paint.yellow('not live (ignored by writers)')
        lines.push(`    ${r.id.slice(0, 8)}  ${state}: ${where}, heard from ${seen}${unread}`)
      }
    }
    if (f.tmpExists)
      lines.push(`  tmp        ${paint.yellow('present')} (a write in progress, or one that was interrupted)`)
  }
  return `${lines.join('\n')}\n`
}

async function run(argv) {
  const { values, positionals } = parseCommandArgs('info', argv, ARGS)
  if (values.help) {
    out(help)
    return EXIT.OK
  }
  if (positionals.length !== 1) throw argumentsError('info', 'one <dir>', positionals.length)
  const { report, now } = gather(positionals[0])
  if (values.json) out(`${JSON.stringify(report, null, 2)}\n`)
  else out(render(report, now, painter(colorEnabled(process.stdout))))
  if (!report.isChannel) {
    process.stderr.write(`ipckit info: ${report.dir} holds no channel (no .channel_info, no message file)\n`)
    return EXIT.FAIL
  }
  return EXIT.OK
}

module.exports = { summary, help, run, gather }
