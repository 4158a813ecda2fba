'use strict'

// The answering side of a round-trip run, in its own process: `handle('echo')` on the backend end
// of the channel in argv[3], with ipckit (argv[2] = "ipckit") or the pure-JS baseline ("purejs");
// "ipckit-sync" answers from a 'request' listener with the synchronous sendResponse() instead.
// argv[4]: ipckit channel options as JSON. Prints "ready", serves until stdin closes.

const path = require('node:path')
const { ROOT, failOnPolling } = require('../lib/util')

const [impl, dir, optionsJson] = process.argv.slice(2)
const ipckit = impl === 'ipckit' || impl === 'ipckit-sync'
const channel = ipckit
  ? require(ROOT).FileChannel.backend(dir, optionsJson ? JSON.parse(optionsJson) : undefined)
  : require(path.join(ROOT, 'bench', 'baseline', 'pure-js-channel.js')).PureJsChannel.backend(dir)
if (impl === 'ipckit-sync') channel.on('request', (request) => channel.sendResponse(request.id, request.payload))
else channel.handle('echo', (params) => params)
// EWATCH (fell back to polling) ends this backend with exit code 3: no polling numbers.
if (ipckit) failOnPolling(channel, 'backend', (error) => process.stderr.write(`backend error: ${error.stack}\n`))
process.stdout.write('ready\n')
process.stdin.resume()
process.stdin.on('end', () => {
  channel.close()
  process.exit(0)
})
