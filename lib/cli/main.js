'use strict'

// Dispatches `ipckit <command> ...` to lib/cli/<command>.js. Every command module exports
// { summary, help, run(argv) } where run resolves with the exit code.

const { CliError, EXIT } = require('./common.js')

const COMMANDS = {
  monitor: './monitor.js',
  send: './send.js',
  event: './event.js',
  info: './info.js',
  bench: './bench.js',
}

function version() {
  return require('../../package.json').version
}

function topHelp() {
  const lines = Object.keys(COMMANDS).map((name) => `  ${name.padEnd(9)}${require(COMMANDS[name]).summary}`)
  return `ipckit ${version()}: tools for ipckit file channels (the Python ipckit protocol)

Usage: ipckit <command> [options]

Commands:
${lines.join('\n')}

Options:
  -h, --help     show this help (also: ipckit <command> --help)
  -v, --version  print the version

A channel is a directory holding frontend_to_backend.json and backend_to_frontend.json.
Exit codes: 0 success, 1 failure (error response, timeout, missing channel), 2 bad usage.
`
}

async function main(argv) {
  const [first, ...rest] = argv
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    if (first === 'help' && rest[0] in COMMANDS) {
      process.stdout.write(require(COMMANDS[rest[0]]).help)
      return EXIT.OK
    }
    process.stdout.write(topHelp())
    return first === undefined ? EXIT.USAGE : EXIT.OK
  }
  if (first === '-v' || first === '--version') {
    process.stdout.write(`${version()}\n`)
    return EXIT.OK
  }
  if (!Object.hasOwn(COMMANDS, first)) {
    process.stderr.write(`ipckit: unknown command '${first}'. Run 'ipckit --help' for the list.\n`)
    return EXIT.USAGE
  }
  const command = require(COMMANDS[first])
  try {
    return await command.run(rest)
  } catch (error) {
    if (error instanceof CliError) {
      process.stderr.write(`ipckit ${first}: ${error.message}\n`)
      return error.exitCode
    }
    if (error && typeof error.code === 'string') {
      // An ipckit or OS error: its message names the file or argument; no stack needed.
      process.stderr.write(`ipckit ${first}: ${error.message} (${error.code})\n`)
      return EXIT.FAIL
    }
    throw error
  }
}

module.exports = { main, COMMANDS }
