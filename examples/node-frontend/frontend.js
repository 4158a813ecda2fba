'use strict'

// An ipckit frontend in Node: requests to a backend (examples/python-backend/backend.py, or any
// ipckit backend) and a listener for its events.
// Usage: node frontend.js <channel-dir> [--shutdown]   (--shutdown also stops the backend)

const os = require('node:os')
const path = require('node:path')

let ipckit
try {
  ipckit = require('ipckit') // installed from npm
} catch {
  ipckit = require('../..') // this repository, built with `npm run build`
}
const { FileChannel } = ipckit

async function main() {
  const dir = process.argv[2] ?? path.join(os.tmpdir(), 'ipckit-example')
  const shutdown = process.argv.includes('--shutdown')
  const channel = FileChannel.frontend(dir)
  channel.on('event', (message) => console.log(`frontend: event ${message.method} ${JSON.stringify(message.payload)}`))
  channel.on('error', (error) => console.error(`frontend: channel problem: ${error.code} ${error.message}`))

  const call = async (method, params) => {
    const started = process.hrtime.bigint()
    try {
      const result = await channel.request(method, params, { timeoutMs: 5000 })
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      console.log(
        `frontend: ${method}(${JSON.stringify(params ?? null)}) = ${JSON.stringify(result)}  [${ms.toFixed(1)} ms]`,
      )
      return result
    } catch (error) {
      if (error.code === 'ETIMEDOUT') {
        throw new Error(`no answer to ${method} within 5 s: is the backend running on ${dir}?`)
      }
      console.log(`frontend: ${method} failed as expected: ${error.code} ${error.message}`)
      return undefined
    }
  }

  try {
    await call('ping')
    await call('add', { a: 2, b: 40 })
    await call('info')
    await call('count', { to: 3 }) // the backend emits "progress" events while it works
    await call('fail')
    channel.sendEvent('frontend-says', { hello: 'from Node' })
    // Parallel requests: each promise gets its own answer.
    const sums = await Promise.all([1, 2, 3, 4, 5].map((n) => channel.request('add', { a: n, b: n * 10 })))
    console.log(`frontend: 5 parallel adds = ${JSON.stringify(sums)}`)
    if (shutdown) await call('shutdown')
  } finally {
    channel.close()
  }
}

main().catch((error) => {
  console.error(`frontend: ${error.message}`)
  process.exitCode = 1
})
