'use strict'
// Sends events as fast as it can, printing each id after its send returned; killed by the test.
const { FileChannel } = require('../../index.js')

const [dir, role] = process.argv.slice(2)
const channel = FileChannel[role](dir, { maxMessages: 100000, acknowledge: false, staleLockMs: 300 })
for (let i = 0; ; i++) {
  const id = channel.sendRequest('n', { i, pad: 'x'.repeat(i % 200) })
  process.stdout.write(id + '\n')
}
