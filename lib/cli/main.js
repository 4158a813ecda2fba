'use strict'

// Dispatches `ipckit <command> ...` to lib/cli/<command>.js. Every command module exports
// { summary, help, run(argv) } where run resolves with the exit code.

const { CliError, EXIT, didYouMean } = require('./common.js')

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
Commands that open a channel take --allow-insecure to accept a directory other users can write.
Exit codes: 0 success (and this help), 1 failure (error response, timeout, missing channel),
2 bad usage (the error is one line on standard error).
`
}

// The fix the core suggests for a loose directory, in the CLI's words.
function cliWording(message) {
  return message.replace('pass allowInsecure: true', 'pass --allow-insecure')
}

async function main(argv) {
  const [first, ...rest] = argv
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    if (first === 'help' && rest.length > 0) return main([rest[0], '--help'])
    process.stdout.write(topHelp())
    return EXIT.OK
  }
  if (first === '-v' || first === '--version') {
    process.stdout.write(`${version()}\n`)
    return EXIT.OK
  }
  if (!Object.hasOwn(COMMANDS, first)) {
    const what = first.startsWith('-') ? 'option' : 'command'
    const candidates = what === 'option' ? ['help', 'version'] : Object.keys(COMMANDS)
    const hint = didYouMean(first.replace(/^-+/, ''), candidates, what === 'option' ? '--' : '')
    process.stderr.write(`ipckit: unknown ${what} '${first}'${hint}; see 'ipckit --help'\n`)
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
      process.stderr.write(`ipckit ${first}: ${cliWording(error.message)} (${error.code})\n`)
      return EXIT.FAIL
    }
    throw error
  }
}

module.exports = { main, COMMANDS }
