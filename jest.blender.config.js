// jest for __test__/blender/ only: Blender (Debian's `blender`, run headless and under Xvfb) as a
// real DCC backend. Run by scripts/test-all.sh (stage "blender", after scripts/setup-blender.sh);
// by hand: `npx jest -c jest.blender.config.js`. One suite at a time: each test starts Blender.
const base = require('./jest.config.js')

module.exports = {
  ...base,
  testMatch: ['<rootDir>/__test__/blender/**/*.test.js'],
  testPathIgnorePatterns: ['/node_modules/'],
  // Blender starts in ~1.5 s here, several seconds on a loaded machine; a test starts it up to twice.
  testTimeout: 180000,
  maxWorkers: 1,
}
