'use strict'

// The public API of ipckit. The pieces live in lib/: the FileChannel class (lib/channel.js),
// payload checks (lib/json.js), errors (lib/errors.js), request handlers (lib/handlers.js),
// message iteration (lib/message-iterator.js), and the core's defaults and limits
// (lib/constants.js).

const { FileChannel } = require('./lib/channel.js')
const { DEFAULTS, LIMITS, MAX_PAYLOAD_DEPTH } = require('./lib/constants.js')

module.exports = { FileChannel, DEFAULTS, LIMITS, MAX_PAYLOAD_DEPTH }
