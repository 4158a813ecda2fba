'use strict'

// `ipckit send <dir> <method> [json]`: one request, wait for its response, print the payload.

const {
  EXIT,
  CliError,
  ALLOW_INSECURE,
  argumentsError,
  channelOptions,
  parseCommandArgs,
  intOption,
  roleOption,
  jsonArgument,
  requireDirectory,
  out,
} = require('./common.js')

const summary = 'send a request, wait, print the response payload as JSON'

const help = `Usage: ipckit send <dir> <method> [json] [options]

Sends a request for <method> with the JSON value [json] as its params (none: null; '-': read
the JSON from standard input) through the channel in <dir>, waits for the response and prints
its payload as JSON on standard output.

Exit code 0 on a response, 1 on an error response (its text goes to standard error) or when
no response comes in time, 2 on bad usage. The channel directory must exist.

Sending as a second frontend is safe: the real frontend still gets every message of its own,
because readers do not consume messages from the files.

Options:
      --timeout-ms <ms>           how long to wait for the response (default 10000)
      --role frontend|backend     the end to send from (default frontend: a request to the backend)
      --compact                   print the payload on one line (default: indented)
      --full                      print the whole response message, not just its payload
      --allow-insecure            accept a channel directory other users can write (see SECURITY.md)
  -h, --help                      show this help

Examples:
  ipckit send /tmp/chan ping
  ipckit send /tmp/chan add '{"a": 1, "b": 2}'
  echo '[1, 2, 3]' | ipckit send /tmp/chan sum - --timeout-ms 2000
`

const ARGS = {
  'timeout-ms': { type: 'string' },
  role: { type: 'string' },
  compact: { type: 'boolean' },
  full: { type: 'boolean' },
  ...ALLOW_INSECURE,
}

async function run(argv) {
  const { values, positionals } = parseCommandArgs('send', argv, ARGS)
  if (values.help) {
    out(help)
    return EXIT.OK
  }
  if (positionals.length < 2 || positionals.length > 3) {
    throw argumentsError('send', '<dir> <method> [json]', positionals.length)
  }
  const [dir, method, json] = positionals
  const timeoutMs = intOption(values['timeout-ms'], 'timeout-ms', 10000, 1)
  const role = roleOption(values.role)
  const params = await jsonArgument(json, 'the params argument')
  requireDirectory(dir)

  const { FileChannel } = require('../channel.js')
  const channel = FileChannel[role](dir, channelOptions(values))
  try {
    const id = channel.sendRequest(method, params)
    let response
    try {
      response = await channel.waitResponse(id, timeoutMs)
    } catch (error) {
      if (error.code === 'ETIMEDOUT') {
        throw new CliError(
          `no response to '${method}' (request ${id}) within ${timeoutMs} ms: is the ${role === 'frontend' ? 'backend' : 'frontend'} running on ${dir}?`,
        )
      }
      throw error
    }
    if (values.full) out(`${JSON.stringify(response, null, values.compact ? 0 : 2)}\n`)
    if (response.error !== undefined) {
      process.stderr.write(`ipckit send: '${method}' failed: ${response.error}\n`)
      return EXIT.FAIL
    }
    if (!values.full) out(`${JSON.stringify(response.payload, null, values.compact ? 0 : 2)}\n`)
    return EXIT.OK
  } finally {
    channel.close()
  }
}

module.exports = { summary, help, run }
