'use strict'

// Payloads: refuses what JSON cannot hold, naming the path of the bad value, and otherwise
// follows JSON.stringify (toJSON() is honoured, undefined object properties are left out). The
// depth limit is the core's (MAX_PAYLOAD_DEPTH).

const { codedError, describe } = require('./errors.js')
const { MAX_PAYLOAD_DEPTH } = require('./constants.js')

function propertyPath(path, key) {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`
}

function checkJson(value, path, ancestors) {
  if (value !== null && typeof value === 'object' && typeof value.toJSON === 'function') {
    value = value.toJSON()
  }
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) {
        throw codedError('EINVAL', `${path} contains a lone surrogate, which UTF-8 JSON cannot represent`, TypeError)
      }
      return
    case 'boolean':
    case 'undefined':
      return
    case 'number':
      if (!Number.isFinite(value)) {
        throw codedError('EINVAL', `${path} is ${value}, which JSON cannot represent`, TypeError)
      }
      return
    case 'object':
      break
    default:
      throw codedError('EINVAL', `${path} is ${describe(value)}, which JSON cannot represent`, TypeError)
  }
  if (value === null) return
  if (ancestors.includes(value)) {
    throw codedError('EINVAL', `${path} is a circular reference`, TypeError)
  }
  if (ancestors.length >= MAX_PAYLOAD_DEPTH) {
    throw codedError(
      'EINVAL',
      `${path} is nested deeper than ${MAX_PAYLOAD_DEPTH} levels, which the reference reader cannot read`,
      RangeError,
    )
  }
  ancestors.push(value)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkJson(value[i], `${path}[${i}]`, ancestors)
  } else {
    for (const key of Object.keys(value)) {
      if (!key.isWellFormed()) {
        throw codedError(
          'EINVAL',
          `${path} has a key with a lone surrogate, which UTF-8 JSON cannot represent`,
          TypeError,
        )
      }
      checkJson(value[key], propertyPath(path, key), ancestors)
    }
  }
  ancestors.pop()
}

/** JSON text of a payload; `undefined` (top level) is left out, which the core sends as `null`. */
function toJsonText(value, name) {
  if (value === undefined) return undefined
  checkJson(value, name, [])
  return JSON.stringify(value)
}

module.exports = { toJsonText }
