// jest for __test__/shares/ only: one channel directory seen through two FUSE mounts (bindfs, its
// default 1 s attribute cache), the frontend on one and the backend on the other, as two machines
// see a network share. Run by scripts/test-all.sh (stage "shares", after scripts/setup-shares.sh);
// by hand: `bash scripts/setup-shares.sh && npx jest -c jest.shares.config.js`. Needs root (FUSE
// mounts, unshare -u). One suite at a time: the mounts' caches make timing matter.
const base = require('./jest.config.js')

module.exports = {
  ...base,
  testMatch: ['<rootDir>/__test__/shares/**/*.test.js'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 120000,
  maxWorkers: 1,
}
