// ESM entry: the same objects as the CommonJS entry.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const ipckit = require('./index.js')

export const { FileChannel, DEFAULTS, LIMITS, MAX_PAYLOAD_DEPTH } = ipckit
export default ipckit
