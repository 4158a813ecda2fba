'use strict'

// Helpers shared by the subcommands: argument parsing (one-line usage errors with "did you
// mean"), exit codes, colours, JSON arguments, and the file layout of a channel (its names come
// from the core; see PROTOCOL.md).

const fs = require('node:fs')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { FILES } = require('../constants.js')

/** Exit codes of every subcommand. */
const EXIT = { OK: 0, FAIL: 1, USAGE: 2 }

/** The two message files of a channel, each with the role that writes it. */
const MESSAGE_FILES = [
  {
    key: 'frontend_to_backend',
    file: FILES.frontendOutbox,
    writer: 'frontend',
    reader: 'backend',
    arrow: 'F→B',
    direction: 'frontend->backend',
  },
  {
    key: 'backend_to_frontend',
    file: FILES.backendOutbox,
    writer: 'backend',
    reader: 'frontend',
    arrow: 'F←B',
    direction: 'backend->frontend',
  },
]

/** An error the user caused or must act on: printed without a stack, with an exit code. */
class CliError extends Error {
  constructor(message, exitCode = EXIT.FAIL) {
    super(message)
    this.exitCode = exitCode
  }
}

function usageError(message) {
  return new CliError(message, EXIT.USAGE)
}

/** Edit distance between two short strings (for "did you mean"). */
function distance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const saved = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = saved
    }
  }
  return row[b.length]
}

/** The closest of `candidates` to `word`, when it is close enough to be a typo; else null. */
function closest(word, candidates) {
  let best = null
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const d = candidate.startsWith(word) && word.length >= 2 ? 1 : distance(word, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : null
}

/** " (did you mean 'x'?)" or "". */
function didYouMean(word, candidates, prefix = '') {
  const match = closest(word, candidates)
  return match === null ? '' : ` (did you mean '${prefix}${match}'?)`
}

/** The option every command that opens a channel takes: `--allow-insecure`. */
const ALLOW_INSECURE = {
  'allow-insecure': { type: 'boolean' },
}

/** Channel options from the command line. */
function channelOptions(values) {
  return values['allow-insecure'] ? { allowInsecure: true } : undefined
}

/**
 * parseArgs with the conventions of every subcommand: strict options, positionals allowed,
 * and -h/--help. Throws a one-line usage error naming the command on bad input, with the
 * closest known option when an unknown one looks like a typo.
 */
function parseCommandArgs(command, argv, options) {
  const known = { help: { type: 'boolean', short: 'h' }, ...options }
  try {
    return parseArgs({ args: argv, options: known, allowPositionals: true, strict: true })
  } catch (error) {
    if (typeof error.code !== 'string' || !error.code.startsWith('ERR_PARSE_ARGS')) throw error
    const unknown = /^Unknown option '(-{1,2}[^']*)'/.exec(error.message)
    if (unknown) {
      const name = unknown[1].replace(/^-+/, '').split('=')[0]
      throw usageError(
        `unknown option '${unknown[1]}'${didYouMean(name, Object.keys(known), '--')}; see 'ipckit ${command} --help'`,
      )
    }
    const text = error.message.split('\n')[0].replace(/\.$/, '')
    throw usageError(`${text}; see 'ipckit ${command} --help'`)
  }
}

/** A usage error for wrong positional arguments, in one line. */
function argumentsError(command, expected, got) {
  return usageError(`expected ${expected}, got ${got} argument${got === 1 ? '' : 's'}; see 'ipckit ${command} --help'`)
}

/** A whole number option, at least `min`. `undefined` gives `fallback`. */
function intOption(value, name, fallback, min = 0) {
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw usageError(`--${name} must be a whole number of at least ${min}, got '${value}'`)
  }
  return Number(value)
}

function roleOption(value) {
  if (value === undefined) return 'frontend'
  if (value !== 'frontend' && value !== 'backend') {
    throw usageError(`--role must be 'frontend' or 'backend', got '${value}'`)
  }
  return value
}

/**
 * The JSON value of a positional argument; `-` reads it from standard input, no argument is
 * `undefined` (sent as null).
 */
async function jsonArgument(text, what) {
  if (text === undefined) return undefined
  if (text === '-') text = await readStdin()
  try {
    return JSON.parse(text)
  } catch (error) {
    throw usageError(
      `${what} is not valid JSON (${error.message}); quote it for the shell, e.g. '{"a": 1}' or '"text"'`,
    )
  }
}

function readStdin() {
  return new Promise((resolve, reject) => {
    let text = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (chunk) => (text += chunk))
    process.stdin.on('end', () => resolve(text))
    process.stdin.on('error', reject)
  })
}

/** Refuses to create a channel by accident: the directory must exist already. Returns its stat. */
function requireDirectory(dir) {
  let stat
  try {
    stat = fs.statSync(dir)
  } catch (error) {
    if (error.code === 'ENOENT') throw new CliError(`no channel directory at ${path.resolve(dir)}`)
    throw new CliError(`cannot open ${dir}: ${error.message}`)
  }
  if (!stat.isDirectory()) throw new CliError(`${dir} is not a directory`)
  return stat
}

// ANSI colours, only for a terminal, never when NO_COLOR is set (https://no-color.org);
// FORCE_COLOR (not 0) turns them on even without a terminal.
const CODES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
}

function colorEnabled(stream, env = process.env) {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '') return env.FORCE_COLOR !== '0'
  return Boolean(stream.isTTY) && env.TERM !== 'dumb'
}

/** `paint.red('x')` etc.; every function returns its text unchanged when colours are off. */
function painter(enabled) {
  const paint = {}
  for (const [name, [open, close]] of Object.entries(CODES)) {
    paint[name] = enabled ? (text) => `\x1b[${open}m${text}\x1b[${close}m` : (text) => String(text)
  }
  return paint
}

/** Local wall-clock time of an epoch-millisecond timestamp: HH:MM:SS.mmm. */
function clockTime(ms) {
  const date = new Date(ms)
  const pad = (n, width = 2) => String(n).padStart(width, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/** A short human duration: 850 ms, 12.3 s, 4 min, 2 h, 3 d. */
function humanDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`
  if (ms < 86_400_000) return `${Math.round(ms / 3_600_000)} h`
  return `${Math.round(ms / 86_400_000)} d`
}

/** Writes to stdout; a closed pipe (`ipckit monitor | head`) ends the process quietly. */
function out(text) {
  process.stdout.write(text)
}

process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})

module.exports = {
  EXIT,
  MESSAGE_FILES,
  ALLOW_INSECURE,
  CliError,
  usageError,
  argumentsError,
  closest,
  didYouMean,
  channelOptions,
  parseCommandArgs,
  intOption,
  roleOption,
  jsonArgument,
  requireDirectory,
  colorEnabled,
  painter,
  clockTime,
  humanDuration,
  out,
}
