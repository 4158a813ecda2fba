// ESM entry of ipckit/testing: the same objects as the CommonJS entry.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const testing = require('./testing.js')

export const { createTestChannel, respond, TestBackend, PROGRESS_EVENT } = testing
export default testing
