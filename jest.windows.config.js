// jest under Wine's Windows node.exe (scripts/test-windows.sh): every suite that needs no Python,
// plus the Windows-only suites in __test__/windows/. Python on Windows cannot run here, so the
// interop suite and the Python stress test (*-python.test.js) are left out by path, not skipped.
const base = require('./jest.config.js')

module.exports = {
  ...base,
  testPathIgnorePatterns: ['/node_modules/', 'interop\\.test\\.js$', '-python\\.test\\.js$'],
  // Starting a process under Wine takes 0.5-1 s (Linux: 0.1 s), and the tests start many.
  testTimeout: 120000,
}
