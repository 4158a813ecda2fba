'use strict'

// The core's option table (src/protocol/options.rs) is the one source of every option; the
// binding's typed twin (`ChannelOptions` in src/binding/channel.rs, generated into binding.d.ts)
// only declares them for TypeScript. An option added to one and forgotten in the other would
// silently vanish from the types or be refused at run time: this keeps them in step.

const fs = require('node:fs')
const path = require('node:path')
const { channelOptionSpecs } = require('../lib/addon.js')

const declarations = fs.readFileSync(path.join(__dirname, '..', 'binding.d.ts'), 'utf8')

/** The fields of `export interface <name> { ... }` in binding.d.ts, each with its doc comment. */
function interfaceFields(name) {
  const body = declarations.match(new RegExp(`export interface ${name} \\{([\\s\\S]*?)\\n\\}`))
  if (!body) throw new Error(`binding.d.ts declares no interface ${name}`)
  const fields = new Map()
  for (const [, doc, field, type] of body[1].matchAll(/(?:\/\*\*([\s\S]*?)\*\/\s*)?\n\s*(\w+)\?: ([^\n]+)/g)) {
    fields.set(field, { doc: (doc || '').replace(/\s*\n\s*\*\s?/g, ' ').trim(), type })
  }
  return fields
}

function writtenDefault(spec) {
  const value = spec.default
  if (spec.kind === 'boolean') return `\`${value}\``
  if (spec.kind === 'mode') return `0o${value.toString(8)}`
  const mib = 1024 * 1024
  return value >= mib && value % mib === 0 ? `${value / mib} MiB` : `${value}`
}

const kindToType = { integer: 'number', boolean: 'boolean', mode: 'number' }

test('every option of the core is declared for TypeScript, with its type and documented default', () => {
  const specs = channelOptionSpecs()
  const fields = interfaceFields('ChannelOptions')
  expect([...fields.keys()].sort()).toEqual(specs.map((spec) => spec.name).sort())
  for (const spec of specs) {
    const field = fields.get(spec.name)
    expect({ name: spec.name, type: field.type }).toEqual({
      name: spec.name,
      type: kindToType[spec.kind] ?? expect.any(String),
    })
    expect(field.doc).not.toBe('')
    // The documented default is the core's, as the docs write it (100, `true`, 0o600, 64 MiB).
    expect(`${spec.name}: ${field.doc}`).toContain(writtenDefault(spec))
  }
})

test('setListening takes named inputs, every one of them optional', () => {
  const fields = interfaceFields('ListeningInput')
  expect([...fields.keys()].sort()).toEqual(['cancels', 'errors', 'events', 'presence', 'requests', 'responses'])
  for (const field of fields.values()) expect(field.type).toBe('boolean')
  expect(declarations).toMatch(/setListening\(listening: ListeningInput\): void/)
})
