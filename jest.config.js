module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/__test__/**/*.test.js'],
  testTimeout: 30000,
  // Two cores: run suites side by side, but not more.
  maxWorkers: 2,
}
