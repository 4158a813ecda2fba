// Types of the ESM entry (index.mjs): the same declarations as the CommonJS entry, as ES module
// exports, plus the default export (the whole module object).

import ipckit from './index.js'

export * from './index.js'
export default ipckit
