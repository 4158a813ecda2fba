'use strict'

// Defaults and limits, as the Rust core defines them (src/protocol/options.rs). Nothing here
// is written twice: every number comes from the native addon.

const native = require('./addon.js')

const specs = native.channelOptionSpecs()

/** The default of every channel option, plus `timeoutMs` of `request()` and `waitResponse()`. */
const DEFAULTS = Object.freeze({
  timeoutMs: native.DEFAULT_TIMEOUT_MS,
  ...Object.fromEntries(specs.map((spec) => [spec.name, spec.default])),
})

/** Limits: payload depth, longest timeout, and each numeric option's accepted range. */
const LIMITS = Object.freeze({
  maxPayloadDepth: native.MAX_PAYLOAD_DEPTH,
  maxTimeoutMs: native.MAX_TIMEOUT_MS,
  options: Object.freeze(
    Object.fromEntries(
      specs
        .filter((spec) => spec.kind !== 'boolean')
        .map((spec) => [spec.name, Object.freeze({ min: spec.min, max: spec.max })]),
    ),
  ),
})

module.exports = {
  DEFAULTS,
  LIMITS,
  MAX_PAYLOAD_DEPTH: native.MAX_PAYLOAD_DEPTH,
  FILES: Object.freeze(native.channelFileNames()),
}
