// jest under Wine's Windows node.exe (scripts/test-windows.sh): every suite that needs no Python,
// plus the Windows-only suites in __test__/windows/. Python on Windows cannot run here, so the
// suites that use the Python reference peer (they require helpers/python) are left out by path,
// not skipped; a Python test in a Node suite lives in its own *-python.test.js file for this.
const fs = require('node:fs')
const path = require('node:path')
const base = require('./jest.config.js')

const tests = path.join(__dirname, '__test__')
const pythonSuites = fs
  .readdirSync(tests)
  .filter((name) => name.endsWith('.test.js'))
  .filter((name) =>
    /require\(['"]\.\/helpers\/python(\.js)?['"]\)/.test(fs.readFileSync(path.join(tests, name), 'utf8')),
  )
  .map((name) => `/__test__/${name.replace(/\./g, '\\.')}$`)

module.exports = {
  ...base,
  // readme.test.js links the package into a scratch project (a symbolic link, which Wine 8
  // cannot make); the README's text is the same on every platform and is checked on Linux.
  // __test__/blender/ needs Blender (Linux, jest.blender.config.js); __test__/shares/ FUSE mounts
  // (Linux, jest.shares.config.js).
  testPathIgnorePatterns: [
    '/node_modules/',
    '/__test__/readme\\.test\\.js$',
    '/__test__/blender/',
    '/__test__/shares/',
    ...pythonSuites,
  ],
  // Starting a process under Wine takes 0.5-1 s (Linux: 0.1 s), and the tests start many.
  testTimeout: 120000,
}
