'use strict'

// The floor: the cheapest round trip the file transport allows, with no protocol work. One side
// writes a sequence number to `<name>.tmp` and renames it to `<name>`; the other side wakes up
// from fs.watch on the directory, reads the few bytes, and answers the same way. No lock, no
// JSON, no message list: what is left is write + rename + inotify wake-up + a tiny read, twice.

const fs = require('node:fs')
const path = require('node:path')

function put(dir, name, text) {
  const tmp = path.join(dir, `${name}.tmp`)
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, path.join(dir, name))
}

function readSeq(dir, name) {
  try {
    return Number(fs.readFileSync(path.join(dir, name), 'utf8'))
  } catch {
    return NaN
  }
}

/** Calls onSeq(seq) for each new number that appears in `dir/name`. Returns the watcher. */
function watchSeq(dir, name, onSeq) {
  let last = -1
  return fs.watch(dir, (eventType, filename) => {
    if (filename !== name) return
    const seq = readSeq(dir, name)
    if (Number.isFinite(seq) && seq !== last) {
      last = seq
      onSeq(seq)
    }
  })
}

/** The answering side: echoes every `ping` as `pong`. */
function startPonger(dir) {
  return watchSeq(dir, 'ping', (seq) => put(dir, 'pong', String(seq)))
}

/** The asking side: `roundTrip()` resolves when the pong for a fresh ping arrives. */
function createPinger(dir) {
  let seq = 0
  let pending = null
  const watcher = watchSeq(dir, 'pong', (got) => {
    if (pending && got === pending.seq) {
      const { resolve } = pending
      pending = null
      resolve()
    }
  })
  return {
    roundTrip() {
      return new Promise((resolve) => {
        pending = { seq: ++seq, resolve }
        put(dir, 'ping', String(seq))
      })
    },
    close() {
      watcher.close()
    },
  }
}

module.exports = { startPonger, createPinger }

if (require.main === module) {
  // node floor.js <dir>: run the answering side until stdin closes.
  const dir = process.argv[2]
  const watcher = startPonger(dir)
  process.stdout.write('ready\n')
  process.stdin.resume()
  process.stdin.on('end', () => watcher.close())
}
