'use strict'

// Helpers shared by the subcommands: argument parsing, exit codes, colours, JSON arguments,
// and the file layout of a channel (see PROTOCOL.md).

const fs = require('node:fs')
const path = require('node:path')
const { parseArgs } = require('node:util')

/** Exit codes of every subcommand. */
const EXIT = { OK: 0, FAIL: 1, USAGE: 2 }

/** The two message files of a channel, each with the role that writes it. */
const MESSAGE_FILES = [
  {
    key: 'frontend_to_backend',
    file: 'frontend_to_backend.json',
    writer: 'frontend',
    reader: 'backend',
    arrow: 'F→B',
    direction: 'frontend->backend',
  },
  {
    key: 'backend_to_frontend',
    file: 'backend_to_frontend.json',
    writer: 'backend',
    reader: 'frontend',
    arrow: 'F←B',
    direction: 'backend->frontend',
  },
]

/** Staleness limit of a lock file in the reference writer (PROTOCOL.md). */
const STALE_LOCK_MS = 5000

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

/**
 * parseArgs with the conventions of every subcommand: strict options, positionals allowed,
 * and -h/--help. Throws a usage error naming the command on bad input.
 */
function parseCommandArgs(command, argv, options) {
  try {
    return parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals: true,
      strict: true,
    })
  } catch (error) {
    if (typeof error.code === 'string' && error.code.startsWith('ERR_PARSE_ARGS')) {
      throw usageError(`${error.message}\nRun 'ipckit ${command} --help' for usage.`)
    }
    throw error
  }
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
      `${what} is not valid JSON: ${error.message}\n` +
        `Quote it for the shell, e.g. '{"a": 1}' or '"text"' (a bare word is not JSON).`,
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
  STALE_LOCK_MS,
  CliError,
  usageError,
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
