'use strict'

// Payloads: refuses what JSON cannot hold, naming the path of the bad value, and otherwise
// follows JSON.stringify (toJSON() is honoured, undefined object properties are left out). The
// depth limit is the core's (MAX_PAYLOAD_DEPTH).

const { codedError, describe } = require('./errors.js')
const { MAX_PAYLOAD_DEPTH } = require('./constants.js')

/** `name` followed by the keys and indices leading to a value, as JavaScript would write it. */
function pathOf(name, keys) {
  let path = name
  for (const key of keys) {
    if (typeof key === 'number') path += `[${key}]`
    else path += /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
  }
  return path
}

/**
 * Walks `value` as JSON.stringify would. `keys` is the way down from the top (the path is only
 * spelled out for an error: building it for every value cost more than the stringify itself);
 * `ancestors` the objects on it (a circular reference, the depth).
 */
function checkJson(value, name, keys, ancestors) {
  const refuse = (what, type = TypeError) => codedError('EINVAL', `${pathOf(name, keys)} ${what}`, type)
  if (value !== null && typeof value === 'object' && typeof value.toJSON === 'function') {
    value = value.toJSON()
  }
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw refuse('contains a lone surrogate, which UTF-8 JSON cannot represent')
      return
    case 'boolean':
    case 'undefined':
      return
    case 'number':
      if (!Number.isFinite(value)) throw refuse(`is ${value}, which JSON cannot represent`)
      return
    case 'object':
      break
    default:
      throw refuse(`is ${describe(value)}, which JSON cannot represent`)
  }
  if (value === null) return
  if (ancestors.includes(value)) throw refuse('is a circular reference')
  if (ancestors.length >= MAX_PAYLOAD_DEPTH) {
    throw refuse(
      `is nested deeper than ${MAX_PAYLOAD_DEPTH} levels, which the reference reader cannot read`,
      RangeError,
    )
  }
  ancestors.push(value)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      keys.push(i)
      checkJson(value[i], name, keys, ancestors)
      keys.pop()
    }
  } else {
    for (const key of Object.keys(value)) {
      if (!key.isWellFormed()) throw refuse('has a key with a lone surrogate, which UTF-8 JSON cannot represent')
      keys.push(key)
      checkJson(value[key], name, keys, ancestors)
      keys.pop()
    }
  }
  ancestors.pop()
}

/** JSON text of a payload; `undefined` (top level) is left out, which the core sends as `null`. */
function toJsonText(value, name) {
  if (value === undefined) return undefined
  checkJson(value, name, [], [])
  return JSON.stringify(value)
}

module.exports = { toJsonText }
