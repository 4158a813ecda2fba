'use strict'

// The protocol floor: bench/protocol-floor/, a small Rust program (its own crate, none of the
// package's code) that does the least work the file protocol requires for a round trip: lock file,
// read + parse the capped outbox, append, serialize, tmp write, rename, unlock; the reader woken
// by inotify (IN_MOVED_TO only), reading and parsing its inbox. `build()` runs `cargo build
// --release` of that crate (quick when it is fresh); the runner calls it once before the cases
// that need the binary (`prepare` in bench/lib/suite.js).

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const CRATE = path.join(__dirname, '..', 'protocol-floor')
const TARGET = path.join(CRATE, 'target')
const BINARY = path.join(TARGET, 'release', process.platform === 'win32' ? 'protocol-floor.exe' : 'protocol-floor')

/** Builds the binary (cargo decides whether it is fresh). Throws with cargo's output on failure. */
function build() {
  try {
    execFileSync(
      'cargo',
      ['build', '--release', '--locked', '--manifest-path', path.join(CRATE, 'Cargo.toml'), '--target-dir', TARGET],
      { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 600_000 },
    )
  } catch (error) {
    const output = `${error.stdout || ''}${error.stderr || ''}`.trim().split('\n').slice(-20).join('\n')
    throw new Error(`cargo build of bench/protocol-floor failed: ${error.message.split('\n')[0]}\n${output}`)
  }
  return BINARY
}

/** The path of the built binary; throws if it was not built. */
function binary() {
  if (!fs.existsSync(BINARY)) {
    throw new Error(`${BINARY} is missing: npm run bench builds it (or: cargo build --release in bench/protocol-floor)`)
  }
  return BINARY
}

module.exports = { build, binary, CRATE }
