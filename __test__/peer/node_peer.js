#!/usr/bin/env node
'use strict'

// A Node ipckit peer for the two-process jest tests, built on this package.
//
//   node node_peer.js <mode> <dir> [...]
//
// Every mode prints one JSON object per line on stdout, {"ready": true, "pid": N} once its channel
// is open. Modes never call process.exit() on success: whether the process ends by itself is part
// of what the tests check.
//
//   backend        serve echo/add/fail/slow/notify/ask/pid/shutdown/record; echo events as
//                  "echo:<name>"; prints {"started": <method>, "id", "params"} as slow and record
//                  start (what a restarted backend runs)
//   oneshot        frontend: one request('echo'), print the result, close()
//   pending-close  frontend: a waitResponse that never resolves, close() after 200 ms
//   listen         frontend with a 'message' listener, never closed
//   unref-wait     frontend with a pending waitResponse, unref()
//   unref-ready    frontend with a pending ready() (60 s), unref()
//   exit-after-sends frontend: promises.sendEvent() <count> events numbered 0.., then
//                  process.exit(0) at once, without awaiting them or closing
//   die-on-request backend with a 'request' listener (no handlers: it never announces itself)
//                  that kills its own process as the first request arrives
//   ref-wait       frontend: sendRequest('answer-me'), print its id, wait for the response
//   burst          backend: after "go" on stdin, sendAsync <count> events numbered 0.. as fast as
//                  acknowledgements allow, print {"sent": count}, close()

const { FileChannel } = require('../../index.js')
const { sleep } = require('../../test-support')

const [mode, dir] = process.argv.slice(2)

function emit(object) {
  process.stdout.write(`${JSON.stringify(object)}\n`)
}

function ready() {
  emit({ ready: true, pid: process.pid })
}

function backend() {
  const channel = FileChannel.backend(dir)
  channel.serve({
    echo: (params) => params,
    add: ({ a, b }) => a + b,
    fail: (params) => {
      throw new Error(params && params.message ? params.message : 'failed')
    },
    slow: async ({ ms, value }, message) => {
      emit({ started: 'slow', id: message.id, params: { ms, value } })
      await sleep(ms)
      return value
    },
    record: (params, message) => {
      emit({ started: 'record', id: message.id, params })
      return params
    },
    notify: ({ name, payload }) => {
      channel.sendEvent(name, payload)
      return true
    },
    // Asks the frontend: a request in the other direction.
    ask: async ({ method, params }) => {
      try {
        return { result: await channel.request(method, params, { timeoutMs: 5000 }) }
      } catch (error) {
        return { error: error.message, code: error.code }
      }
    },
    pid: () => process.pid,
    shutdown: () => {
      setTimeout(() => channel.close(), 20)
      return 'bye'
    },
  })
  channel.on('event', (message) => channel.sendEvent(`echo:${message.method}`, message.payload))
  channel.on('error', (error) => emit({ error: error.message, code: error.code }))
  ready()
}

async function oneshot() {
  const channel = FileChannel.frontend(dir)
  ready()
  const result = await channel.request('echo', { hello: 'world', pid: process.pid }, { timeoutMs: 10000 })
  emit({ result })
  channel.close()
}

async function pendingClose() {
  const channel = FileChannel.frontend(dir)
  const id = channel.sendRequest('never-answered')
  const pending = channel.waitResponse(id, 60000)
  ready()
  setTimeout(() => channel.close(), 200)
  try {
    await pending
    emit({ settled: 'resolved' })
  } catch (error) {
    emit({ settled: 'rejected', code: error.code })
  }
}

function listen() {
  const channel = FileChannel.frontend(dir)
  channel.on('message', (message) => emit({ message }))
  ready()
}

function unrefWait() {
  const channel = FileChannel.frontend(dir)
  const id = channel.sendRequest('never-answered')
  channel.waitResponse(id, 60000).then(
    () => emit({ settled: 'resolved' }),
    (error) => emit({ settled: 'rejected', code: error.code }),
  )
  channel.unref()
  emit({ pendingWaits: channel.pendingWaits })
  ready()
}

function unrefReady() {
  const channel = FileChannel.frontend(dir)
  channel.ready({ timeoutMs: 60000 }).then(
    () => emit({ settled: 'resolved' }),
    (error) => emit({ settled: 'rejected', code: error.code }),
  )
  channel.unref()
  ready()
}

function exitAfterSends() {
  const count = Number(process.argv[4])
  const channel = FileChannel.frontend(dir)
  for (let i = 0; i < count; i++) channel.promises.sendEvent('seq', i).catch(() => {})
  process.exit(0)
}

function dieOnRequest() {
  const channel = FileChannel.backend(dir)
  channel.on('request', () => process.kill(process.pid, 'SIGKILL'))
  ready()
}

function refWait() {
  const channel = FileChannel.frontend(dir)
  const id = channel.sendRequest('answer-me')
  channel.waitResponse(id, 20000).then(
    (message) => emit({ settled: 'resolved', payload: message.payload }),
    (error) => emit({ settled: 'rejected', code: error.code }),
  )
  emit({ id })
  ready()
}

async function burst() {
  const count = Number(process.argv[4])
  const channel = FileChannel.backend(dir)
  ready()
  await new Promise((resolve) => process.stdin.once('data', resolve))
  process.stdin.pause()
  for (let i = 0; i < count; i++) await channel.sendAsync('event', 'seq', i, { timeoutMs: 20000 })
  emit({ sent: count })
  channel.close()
}

const modes = {
  backend,
  oneshot,
  'pending-close': pendingClose,
  listen,
  'unref-wait': unrefWait,
  'unref-ready': unrefReady,
  'die-on-request': dieOnRequest,
  'exit-after-sends': exitAfterSends,
  'ref-wait': refWait,
  burst,
}

if (!modes[mode] || !dir) {
  process.stderr.write(`usage: node_peer.js <${Object.keys(modes).join('|')}> <dir>\n`)
  process.exit(2)
}

Promise.resolve()
  .then(() => modes[mode]())
  .catch((error) => {
    emit({ fatal: error.message, code: error.code })
    process.exitCode = 1
  })
