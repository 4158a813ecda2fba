'use strict'
// Loads the native addon through the napi-rs loader (binding.js). On Windows that loader wants the
// MSVC build (ipckit.win32-<arch>-msvc.node, or the ipckit-win32-<arch>-msvc package) when node is
// the official build; the published binaries are MSVC. A build made with MinGW (`npm run
// build:windows`, cross-compiled on Linux and run under Wine) is named ipckit.win32-<arch>-gnu.node:
// when no MSVC binary loads, use that one, so require('ipckit') needs no environment variable.

const fs = require('node:fs')
const path = require('node:path')

function loadBinding() {
  try {
    return require('../binding.js')
  } catch (error) {
    const gnu = path.join(__dirname, '..', `ipckit.win32-${process.arch}-gnu.node`)
    if (process.platform !== 'win32' || !fs.existsSync(gnu)) throw error
    return require(gnu)
  }
}

module.exports = loadBinding()
