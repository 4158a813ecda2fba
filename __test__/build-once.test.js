'use strict'

// One build for `npm install` and `npm test`: scripts/install.js builds with napi build in a
// checkout, and npm test (scripts/build.js --if-stale) rebuilds only when a Rust source is newer
// than the addon and its generated loader and types.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { addonPath, isStale } = require('../scripts/build.js')

let dir
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-build-'))
  fs.mkdirSync(path.join(dir, 'src', 'protocol'), { recursive: true })
})
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))

function write(file, at) {
  fs.writeFileSync(path.join(dir, file), 'x')
  fs.utimesSync(path.join(dir, file), at, at)
}

test('up to date when the addon, binding.js and binding.d.ts are newer than every input', () => {
  write('src/protocol/channel.rs', 1000)
  write('Cargo.toml', 1000)
  expect(isStale(dir)).toBe(true) // nothing built yet
  for (const output of [path.relative(dir, addonPath(dir)), 'binding.js', 'binding.d.ts']) write(output, 2000)
  expect(isStale(dir)).toBe(false)
  write('src/protocol/channel.rs', 3000) // an edit after the build
  expect(isStale(dir)).toBe(true)
})

test('install.js uses the same build as npm test in a checkout, and test-all.sh skips a fresh one', () => {
  const root = path.join(__dirname, '..')
  const install = fs.readFileSync(path.join(root, 'scripts', 'install.js'), 'utf8')
  expect(install).toContain("require('./build.js').build()")
  const testAll = fs.readFileSync(path.join(root, 'scripts', 'test-all.sh'), 'utf8')
  expect(testAll).toContain('node scripts/build.js --if-stale')
  const build = require('../package.json').scripts.build
  expect(build).toBe('napi build --platform --release --js binding.js --dts binding.d.ts')
  expect(fs.readFileSync(path.join(root, 'scripts', 'build.js'), 'utf8')).toContain(
    "['build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts']",
  )
})
