#!/usr/bin/env node
'use strict'

// A backend for the network-share suite, run as its own process (so that it can have another host
// name: __test__/helpers/shares.js starts it under `unshare -u`).
//
//   node share_peer.js <dir> [options as JSON]
//
// Serves echo (its params) and slow ({ ms, value }: answers after ms). Prints JSON lines: {"ready":
// true, "pid", "host"} once open, {"error": code, "message"} for each 'error' event. Closes and
// exits when its stdin ends.

const os = require('node:os')
const { FileChannel } = require('../../index.js')
const { sleep } = require('../../test-support')

const [dir, optionsText = '{}'] = process.argv.slice(2)
const emit = (object) => process.stdout.write(`${JSON.stringify(object)}\n`)

const channel = FileChannel.backend(dir, JSON.parse(optionsText))
channel.on('error', (error) => emit({ error: error.code, message: error.message }))
channel.serve({
  echo: (params) => params,
  slow: async ({ ms, value }) => {
    emit({ started: 'slow' })
    await sleep(ms)
    return value
  },
})
emit({ ready: true, pid: process.pid, host: os.hostname() })
process.stdin.resume()
process.stdin.on('end', () => {
  channel.close()
  process.exit(0)
})
