'use strict'
// The channel directory disappearing and coming back under open channels.
const fs = require('node:fs')
const path = require('node:path')
const { FileChannel } = require('../index.js')
const { removeLiveDir, useHarness } = require('./helpers/channels.js')
const { waitFor } = require('../test-support')

// Its cleanup removes `base` with removeLiveDir: a reader's last acknowledgement, or Windows still
// holding a handle, can make one rmdir fail.
const h = useHarness()
let base
beforeEach(() => {
  base = h.tmpDir('ipckit-recovery-')
})

function open(role, dir, options) {
  return h.track(FileChannel[role](dir, options))
}

test('a directory deleted and re-created by the peer: the listener receives again (the watch re-arms)', async () => {
  const dir = path.join(base, 'chan')
  const front = open('frontend', dir)
  const errors = []
  const got = []
  front.on('error', (error) => errors.push(error.code))
  front.on('event', (message) => got.push(message.payload))
  const back = open('backend', dir)
  back.sendEvent('e', 'before')
  await waitFor(() => got.length === 1, { what: 'the first event' })

  await removeLiveDir(dir)
  await waitFor(() => errors.includes('ENOENT'), { what: 'ENOENT' }) // reported, not a crash
  const reborn = open('backend', dir) // the peer comes back and re-creates the channel
  reborn.sendEvent('e', 'after')
  await waitFor(() => got.includes('after'), { what: "the event 'after'" })
  expect(got).toEqual(['before', 'after'])

  // Our own outbox is re-created by our next send.
  const id = front.sendRequest('ping')
  expect(reborn.recv().map((m) => m.id)).toEqual([id])
})

test('a directory replaced by a file: sends fail with ENOTDIR (Windows: ENOENT) naming the path, and work again once it is back', async () => {
  const dir = path.join(base, 'chan')
  const front = open('frontend', dir)
  await removeLiveDir(dir)
  fs.writeFileSync(dir, 'not a directory')
  let thrown
  try {
    front.sendEvent('e', 1)
  } catch (error) {
    thrown = error
  }
  // What the OS says of a path through a file: ENOTDIR on Unix, ENOENT on Windows (as Node's fs).
  const notADirectory = process.platform === 'win32' ? 'ENOENT' : 'ENOTDIR'
  expect(thrown && thrown.code).toBe(notADirectory)
  expect(thrown.message).toContain(dir)
  expect(() => front.recv()).toThrow(expect.objectContaining({ code: notADirectory }))

  fs.rmSync(dir)
  fs.mkdirSync(dir, { mode: 0o700 })
  front.sendEvent('e', 2)
  const back = open('backend', dir)
  expect(back.recv().map((m) => m.payload)).toEqual([2])
})
