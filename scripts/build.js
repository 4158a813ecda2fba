'use strict'
// Builds the addon with `napi build` (the same command as `npm run build`, into the same target
// directory), or, with --if-stale, only when a Rust source is newer than the built addon. Used by
// `npm install` in a checkout (scripts/install.js) and by `npm test`, so that the two share one
// build instead of compiling everything twice into two target directories.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

function abiSuffix() {
  if (process.platform === 'linux') {
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
    return glibc ? '-gnu' : '-musl'
  }
  return process.platform === 'win32' ? '-msvc' : ''
}

/** The addon file `napi build --platform` writes for this machine. */
function addonPath(dir = root) {
  return path.join(dir, `ipckit.${process.platform}-${process.arch}${abiSuffix()}.node`)
}

function newestInput(dir) {
  let newest = 0
  const visit = (file) => {
    const stat = fs.statSync(file)
    if (stat.isDirectory()) for (const name of fs.readdirSync(file)) visit(path.join(file, name))
    else newest = Math.max(newest, stat.mtimeMs)
  }
  for (const input of ['src', 'Cargo.toml', 'Cargo.lock', 'build.rs']) {
    const file = path.join(dir, input)
    if (fs.existsSync(file)) visit(file)
  }
  return newest
}

/** Whether the addon (and its generated loader and types) are older than a Rust source. */
function isStale(dir = root) {
  const outputs = [addonPath(dir), path.join(dir, 'binding.js'), path.join(dir, 'binding.d.ts')]
  if (!outputs.every((file) => fs.existsSync(file))) return true
  const built = Math.min(...outputs.map((file) => fs.statSync(file).mtimeMs))
  return newestInput(dir) > built
}

function build() {
  const napi = require.resolve('@napi-rs/cli/package.json', { paths: [root] })
  const bin = path.join(path.dirname(napi), require(napi).bin.napi)
  const args = ['build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts']
  return spawnSync(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit' }).status ?? 1
}

if (require.main === module) {
  if (process.argv.includes('--if-stale') && !isStale()) {
    console.log(`ipckit: ${path.basename(addonPath())} is up to date with the Rust sources; not rebuilding`)
    process.exit(0)
  }
  process.exit(build())
}

module.exports = { addonPath, isStale, build }
