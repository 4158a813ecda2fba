'use strict'
// npm install hook. Does nothing when a prebuilt binary loads. Otherwise (or with
// `npm rebuild ipckit --build-from-source`) builds the addon with cargo when Rust is installed.
// It never fails the install: without a binary, require('ipckit') explains what to do.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const forced = ['true', '1', 'ipckit'].includes(process.env.npm_config_build_from_source ?? '')

function loads() {
  try {
    require(path.join(root, 'binding.js'))
    return true
  } catch {
    return false
  }
}

function abiSuffix() {
  if (process.platform === 'linux') {
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
    return glibc ? '-gnu' : '-musl'
  }
  return process.platform === 'win32' ? '-msvc' : ''
}

function libraryName() {
  if (process.platform === 'win32') return 'ipckit.dll'
  return process.platform === 'darwin' ? 'libipckit.dylib' : 'libipckit.so'
}

if (!forced && loads()) process.exit(0)
if (!fs.existsSync(path.join(root, 'Cargo.toml'))) process.exit(0)

const cargo = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
if (cargo.status !== 0) {
  console.warn(
    `ipckit: no prebuilt binary for ${process.platform}-${process.arch} and no Rust toolchain; ` +
      'install Rust (https://rustup.rs) and run "npm rebuild ipckit --build-from-source".',
  )
  process.exit(0)
}

// In a checkout with the dev dependencies (`npm install` in the repository), build exactly as
// `npm run build` and `npm test` do (napi build, same target directory): npm test then finds the
// addon up to date instead of compiling everything a second time.
let napiCli = false
try {
  require.resolve('@napi-rs/cli/package.json', { paths: [root] })
  napiCli = fs.existsSync(path.join(root, 'scripts', 'build.js'))
} catch {
  // a package installed from npm or a tarball: no dev dependencies, use cargo below
}
if (napiCli) {
  console.log('ipckit: building the native addon with napi build...')
  const status = require('./build.js').build()
  if (status !== 0) console.warn('ipckit: the source build failed; see the output above.')
  process.exit(0)
}

console.log('ipckit: building the native addon from source with cargo...')
const build = spawnSync('cargo', ['build', '--release', '--lib'], { cwd: root, stdio: 'inherit' })
if (build.status !== 0) {
  console.warn('ipckit: the source build failed; see the cargo output above.')
  process.exit(0)
}
const built = path.join(root, 'target', 'release', libraryName())
const target = path.join(root, `ipckit.${process.platform}-${process.arch}${abiSuffix()}.node`)
fs.copyFileSync(built, target)
console.log(`ipckit: built ${path.basename(target)}`)
