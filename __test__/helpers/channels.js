'use strict'

// Shared helpers for the ipckit jest suites: temporary channel directories, channel tracking
// (every channel opened through here is closed by cleanup()), atomic writes of hand-made inbox
// files, and child processes running __test__/peer/node_peer.js. Waiting, sleeping, child
// processes read by lines and percentiles are test-support/ (shared with the benchmarks).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
const util = require('node:util')
const { FileChannel } = require('../../index.js')
const { sleep, spawnLines } = require('../../test-support')

const FRONTEND_OUTBOX = 'frontend_to_backend.json'
const BACKEND_OUTBOX = 'backend_to_frontend.json'
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const PEER = path.join(__dirname, '..', 'peer', 'node_peer.js')

/**
 * Removes a channel directory that a live reader still uses, as a user would: its reader may publish
 * its acknowledgement file while the removal runs (ENOTEMPTY), so try again. fs.rmSync's own
 * maxRetries only retries the final rmdir, not the children that reappeared.
 */
async function removeLiveDir(dir) {
  for (let attempt = 1; ; attempt++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true })
      return
    } catch (error) {
      // Windows also refuses (EBUSY, EPERM) while a handle on a file or the directory is open.
      const transient = ['ENOTEMPTY', 'EBUSY', 'EPERM'].includes(error.code)
      if (!transient || attempt === 200) throw error
      await sleep(10)
    }
  }
}

/** Creates and tracks channels, temporary directories and child processes of one test file. */
function createHarness() {
  const channels = []
  const dirs = []
  const children = []

  const harness = {
    /** A fresh empty directory under os.tmpdir(). */
    tmpDir(prefix = 'ipckit-test-') {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
      dirs.push(dir)
      return dir
    },
    /** A channel directory path that does not exist yet (inside a fresh temp dir). */
    channelDir() {
      return path.join(harness.tmpDir(), 'chan')
    },
    frontend(dir, options) {
      const channel = FileChannel.frontend(dir, options)
      channels.push(channel)
      return channel
    },
    backend(dir, options) {
      const channel = FileChannel.backend(dir, options)
      channels.push(channel)
      return channel
    },
    /** A frontend and a backend on the same new directory. */
    pair(options = {}) {
      const dir = harness.channelDir()
      const front = harness.frontend(dir, options.frontend ?? options)
      const back = harness.backend(dir, options.backend ?? options)
      return { dir, front, back }
    },
    /** Runs node_peer.js with `args`; the child is killed by cleanup() if still running. */
    peer(args, options = {}) {
      return harness.trackProcess(startPeer(args, options))
    },
    track(channel) {
      channels.push(channel)
      return channel
    },
    /** A LineProcess (test-support spawnLines()) that cleanup() kills if still running. */
    trackProcess(child) {
      children.push(child)
      return child
    },
    async cleanup() {
      for (const channel of channels.splice(0)) {
        try {
          channel.close()
        } catch {
          // closing must not fail a test that already asserted its own things
        }
      }
      for (const child of children.splice(0)) {
        child.kill('SIGKILL')
        await child.exited
      }
      for (const dir of dirs.splice(0)) {
        try {
          fs.chmodSync(dir, 0o700)
        } catch {
          // already gone
        }
        await removeLiveDir(dir)
      }
    },
  }
  return harness
}

/** A harness (createHarness()) whose cleanup() runs after each test of the calling test file. */
function useHarness() {
  const harness = createHarness()
  afterEach(() => harness.cleanup())
  return harness
}

/**
 * Writes `content` to `file` by temp file and rename, as a protocol writer would. On Windows the
 * rename fails (EPERM, EACCES or EBUSY) while a reader holds the file open for a moment, so it is
 * retried there for up to 2 s, as the core's writer does.
 */
function writeAtomic(file, content) {
  const tmp = `${file}.${process.pid}.${crypto.randomUUID()}.part`
  fs.writeFileSync(tmp, content)
  const deadline = Date.now() + 2000
  for (;;) {
    try {
      fs.renameSync(tmp, file)
      return
    } catch (error) {
      const held = process.platform === 'win32' && ['EPERM', 'EACCES', 'EBUSY'].includes(error.code)
      if (!held || Date.now() > deadline) throw error
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2) // this is synchronous: block 2 ms
    }
  }
}

/** A message as it is on disk (snake_case), valid unless overridden. */
function diskMessage(fields = {}) {
  return {
    id: crypto.randomUUID(),
    timestamp: Date.now(),
    type: 'event',
    method: 'hand-made',
    payload: null,
    ...fields,
  }
}

/** Writes an array of on-disk messages, pretty-printed, into `dir/name`. */
function writeMessages(dir, name, messages) {
  writeAtomic(path.join(dir, name), JSON.stringify(messages, null, 2))
}

function readText(dir, name) {
  return fs.readFileSync(path.join(dir, name), 'utf8')
}

function readMessages(dir, name) {
  return JSON.parse(readText(dir, name))
}

/** Calls `fn`, expecting it to throw an Error with `code` whose message contains each of `parts`. */
function expectThrows(fn, code, ...parts) {
  let thrown
  try {
    fn()
  } catch (error) {
    thrown = error
  }
  assertError(thrown, code, parts)
  return thrown
}

/** Awaits `promise`, expecting a rejection with `code` whose message contains each of `parts`. */
async function expectRejects(promise, code, ...parts) {
  let thrown
  try {
    await promise
  } catch (error) {
    thrown = error
  }
  assertError(thrown, code, parts)
  return thrown
}

function assertError(error, code, parts) {
  if (error === undefined) throw new Error(`expected an error with code ${code}, but nothing was thrown`)
  // Errors made by the native addon come from Node's main realm, not from jest's sandbox realm,
  // so `instanceof Error` is checked in a child process (channel.test.js); here: any realm's Error.
  if (!util.types.isNativeError(error)) {
    throw new Error(`expected an Error with code ${code}, got ${String(error)}`)
  }
  if (error.code !== code) {
    throw new Error(`expected code ${code}, got ${error.code}: ${error.message}`)
  }
  for (const part of parts) {
    if (!error.message.includes(part)) {
      throw new Error(`expected the ${code} message to contain ${JSON.stringify(part)}: ${error.message}`)
    }
  }
}

/** Settles to { value } or { error } without throwing. */
function settle(promise) {
  return promise.then(
    (value) => ({ value }),
    (error) => ({ error }),
  )
}

/**
 * Spawns node_peer.js: a LineProcess (test-support) of JSON lines, with `nextLine(predicate,
 * timeoutMs)` (rejects when the peer exits first) and `ready()` (its {"ready": true} line).
 */
function startPeer(args, { env } = {}) {
  const child = spawnLines(process.execPath, [PEER, ...args], { env, json: true, label: `peer ${args.join(' ')}` })
  child.nextLine = (predicate, timeoutMs = 10000) =>
    child.waitForLine(predicate, { timeoutMs, what: 'the expected line' })
  child.ready = () => child.nextLine((line) => line.ready === true)
  return child
}

module.exports = {
  FileChannel,
  FRONTEND_OUTBOX,
  BACKEND_OUTBOX,
  UUID_V4,
  PEER,
  removeLiveDir,
  createHarness,
  useHarness,
  writeAtomic,
  diskMessage,
  writeMessages,
  readText,
  readMessages,
  expectThrows,
  expectRejects,
  settle,
  startPeer,
}

/** Sorts object keys by UTF-8 byte order, recursively (serde_json's default map order). */
function sortKeysBytewise(value) {
  if (Array.isArray(value)) return value.map(sortKeysBytewise)
  if (value === null || typeof value !== 'object') return value
  const keys = Object.keys(value).sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
  // Integer-like keys would be reordered by a plain object; a Map keeps our order for rendering.
  return new Map(keys.map((key) => [key, sortKeysBytewise(value[key])]))
}

/** The exact text PROTOCOL.md prescribes for `value` at `indent` (2-space steps, `": "`). */
function renderValue(value, indent = '') {
  const inner = `${indent}  `
  if (value instanceof Map) {
    if (value.size === 0) return '{}'
    const parts = [...value].map(([key, item]) => `${inner}${JSON.stringify(key)}: ${renderValue(item, inner)}`)
    return `{\n${parts.join(',\n')}\n${indent}}`
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]'
    return `[\n${value.map((item) => `${inner}${renderValue(item, inner)}`).join(',\n')}\n${indent}]`
  }
  return JSON.stringify(value)
}

/**
 * The exact file content for JS-side messages ({ id, timestamp, type, replyTo?, method?, payload,
 * error? }): fields in protocol order, reply_to on disk, payload keys sorted bytewise.
 */
function renderFile(messages) {
  return renderValue(
    messages.map((message) => {
      const fields = new Map([
        ['id', message.id],
        ['timestamp', message.timestamp],
        ['type', message.type],
      ])
      if (message.replyTo !== undefined) fields.set('reply_to', message.replyTo)
      if (message.method !== undefined) fields.set('method', message.method)
      fields.set('payload', sortKeysBytewise(message.payload))
      if (message.error !== undefined) fields.set('error', message.error)
      return fields
    }),
  )
}

module.exports.renderFile = renderFile
module.exports.sortKeysBytewise = sortKeysBytewise
