#!/usr/bin/env node
'use strict'

// `npx ipckit`: look at, poke and measure ipckit file channels from a shell.
// Everything lives in lib/cli; this file only starts it and sets the exit code.

require('../lib/cli/main.js')
  .main(process.argv.slice(2))
  .then(
    (code) => {
      process.exitCode = code
    },
    (error) => {
      process.stderr.write(`ipckit: ${error && error.stack ? error.stack : error}\n`)
      process.exitCode = 1
    },
  )
