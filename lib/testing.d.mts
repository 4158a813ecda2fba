// Types of the ESM entry of ipckit/testing: the same declarations as the CommonJS entry.

import testing from './testing.js'

export * from './testing.js'
export default testing
