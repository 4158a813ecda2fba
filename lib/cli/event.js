'use strict'

// `ipckit event <dir> <name> [json]`: send one event.

const {
  EXIT,
  ALLOW_INSECURE,
  argumentsError,
  channelOptions,
  parseCommandArgs,
  roleOption,
  jsonArgument,
  requireDirectory,
  out,
} = require('./common.js')

const summary = 'send an event'

const help = `Usage: ipckit event <dir> <name> [json] [options]

Sends the event <name> with the JSON value [json] as its payload (none: null; '-': read the
JSON from standard input) through the channel in <dir>, then exits. The channel directory
must exist.

Options:
      --role frontend|backend   the end to send from (default frontend: an event for the backend;
                                backend: an event for the frontend)
      --allow-insecure          accept a channel directory other users can write (see SECURITY.md)
  -h, --help                    show this help

Examples:
  ipckit event /tmp/chan reload
  ipckit event /tmp/chan progress '{"pct": 50}' --role backend
`

const ARGS = { role: { type: 'string' }, ...ALLOW_INSECURE }

async function run(argv) {
  const { values, positionals } = parseCommandArgs('event', argv, ARGS)
  if (values.help) {
    out(help)
    return EXIT.OK
  }
  if (positionals.length < 2 || positionals.length > 3) {
    throw argumentsError('event', '<dir> <name> [json]', positionals.length)
  }
  const [dir, name, json] = positionals
  const role = roleOption(values.role)
  const payload = await jsonArgument(json, 'the payload argument')
  requireDirectory(dir)

  const { FileChannel } = require('../channel.js')
  const channel = FileChannel[role](dir, channelOptions(values))
  try {
    channel.sendEvent(name, payload)
  } finally {
    channel.close()
  }
  return EXIT.OK
}

module.exports = { summary, help, run }
