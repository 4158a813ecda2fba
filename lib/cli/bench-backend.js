'use strict'

// The backend of `ipckit bench`, run in its own process: answers `echo` until its standard
// input closes (the parent ended) or `stop` arrives.

const { FileChannel } = require('../channel.js')

const dir = process.argv[2]
const channel = FileChannel.backend(dir)
const stop = () => {
  channel.close()
  process.stdin.destroy()
}
channel.serve({
  echo: (params) => params,
  stop: () => {
    setImmediate(stop)
    return true
  },
})
process.stdin.on('end', stop)
process.stdin.on('error', stop)
process.stdin.resume()
process.stdout.write('ready\n')
