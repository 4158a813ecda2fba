'use strict'

// Time of `require(<module>)` in this fresh process (argv[2]), printed in ms.
const t0 = process.hrtime.bigint()
require(process.argv[2])
const ms = Number(process.hrtime.bigint() - t0) / 1e6
process.stdout.write(`@@result ${JSON.stringify({ ms })}\n`)
