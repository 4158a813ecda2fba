'use strict'

// The native addon (through lib/native.js, the platform loader), or an error that says how to
// get one.

function load() {
  try {
    return require('./native.js')
  } catch (cause) {
    const target = `${process.platform}-${process.arch}`
    const error = new Error(
      `ipckit has no native binary for ${target} (Node ${process.versions.node}). ` +
        `Install the package that matches this platform (npm installs ipckit-${target}-* ` +
        `automatically unless optional dependencies were omitted or the lock file was made on ` +
        `another platform), or build it from source: install Rust (https://rustup.rs), then ` +
        `run "npm rebuild ipckit --build-from-source" or "npm run build" in the package.`,
      { cause },
    )
    error.code = 'ERR_IPCKIT_NATIVE_MISSING'
    throw error
  }
}

module.exports = load()
