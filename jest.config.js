module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/__test__/**/*.test.js'],
  // __test__/windows/ holds Windows-only suites, run under Wine by jest.windows.config.js;
  // __test__/blender/ the Blender suites, run by jest.blender.config.js (their own stage);
  // __test__/shares/ the network-share suites (FUSE mounts), run by jest.shares.config.js.
  testPathIgnorePatterns: [
    '/node_modules/',
    '<rootDir>/__test__/windows/',
    '<rootDir>/__test__/blender/',
    '<rootDir>/__test__/shares/',
  ],
  testTimeout: 30000,
  // Two cores: run suites side by side, but not more.
  maxWorkers: 2,
}
