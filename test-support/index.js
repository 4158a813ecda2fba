'use strict'

// What the jest suites (__test__/) and the benchmarks (bench/) share: a child process whose
// stdout is read as lines, a child run to its end, waiting for a condition, quiet periods,
// percentiles, and sleep.
//
// Not part of the package (package.json `files` leaves it out) and not a test (jest's testMatch is
// __test__/**/*.test.js). Every timer here comes from node:timers / node:timers/promises and every
// clock from node:perf_hooks: jest's fake timers replace the globals (setTimeout, Date,
// performance) of a test file, not these, so a test that fakes timers can still wait on real time.
//
// Tests must hold on a loaded two-core machine: wait for a condition (waitFor, waitForLine), never
// for a fixed time; a fixed time is only right for "nothing more happens for N ms" (quietFor).

const { spawn, execFile } = require('node:child_process')
const { setTimeout: sleep } = require('node:timers/promises')
const { setTimeout, clearTimeout } = require('node:timers')
const { performance } = require('node:perf_hooks')
const { isDeepStrictEqual } = require('node:util')

/** Milliseconds on a clock that fake timers do not stop. */
function now() {
  return performance.now()
}

/**
 * Polls `condition` (which may return a promise) every `intervalMs` until it returns a truthy value,
 * and resolves with that value. Rejects after `timeoutMs` with an Error naming `what`; an error
 * thrown by `condition` rejects at once.
 */
async function waitFor(condition, { timeoutMs = 5000, intervalMs = 2, what = 'condition' } = {}) {
  const deadline = now() + timeoutMs
  for (;;) {
    const value = await condition()
    if (value) return value
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}

/**
 * A quiet period: resolves with `read()` once its value (compared deeply) has not changed for `ms`
 * in a row, so at least `ms` after the call. For "nothing more arrives": a change restarts the
 * period, and the caller asserts on the value returned. Rejects after `timeoutMs` (by default
 * 10 x `ms`, at least 5 s) when it never settles.
 */
async function quietFor(
  read,
  ms,
  { timeoutMs = Math.max(5000, 10 * ms), intervalMs = 5, what = 'a quiet period' } = {},
) {
  const deadline = now() + timeoutMs
  let value = structuredClone(read())
  let since = now()
  for (;;) {
    await sleep(Math.min(intervalMs, Math.max(1, since + ms - now())))
    const current = read()
    if (!isDeepStrictEqual(current, value)) {
      value = structuredClone(current)
      since = now()
    } else if (now() - since >= ms) {
      return current
    }
    if (now() > deadline) throw new Error(`no ${ms} ms without a change in ${timeoutMs} ms (${what})`)
  }
}

/** The middle value of `values` (the mean of the two middle ones for an even count); NaN when empty. */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The nearest-rank `p`th percentile (0..100) of `samples` (any order); NaN when empty. */
function percentile(samples, p) {
  const sorted = Float64Array.from(samples).sort()
  if (sorted.length === 0) return NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]
}

/** { n, p50, p99, min, max, mean } of `samples` (nearest-rank percentiles). */
function summary(samples) {
  const sorted = Float64Array.from(samples).sort()
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0],
    max: sorted[sorted.length - 1],
    mean: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
  }
}

/** How `match` (a function, a RegExp, or a string the line must contain) is tested against a line. */
function matcher(match) {
  if (typeof match === 'function') return match
  if (match instanceof RegExp) return (line) => match.test(typeof line === 'string' ? line : JSON.stringify(line))
  return (line) => (typeof line === 'string' ? line : JSON.stringify(line)).includes(match)
}

/**
 * A child process whose stdout is read as lines (made by spawnLines()). `lines` holds the lines so
 * far (with `json: true` each one parsed; a line that is not JSON is kept as `{ unparsed: text }`),
 * `texts` the same lines as printed, `stderr` its stderr text. `exited` resolves once the process
 * has exited and its output has been read, with { code, signal, ms, lines, stderr } (`ms`: from
 * the start to its exit).
 */
class LineProcess {
  constructor(command, args = [], options = {}) {
    const { env, cwd, json = false, label, group = false, stdin = 'pipe', keepBlankLines = false } = options
    const { stderrLimit = Infinity } = options
    this.label = label ?? [command, ...args].join(' ')
    this.lines = []
    this.texts = []
    this.stderr = ''
    this.spawnError = undefined
    this.closed = false
    this.group = group
    this.cursor = 0
    this.waiters = new Set()
    const started = now()
    const add = (text) => {
      if (!keepBlankLines && text.trim() === '') return
      let line = text
      if (json) {
        try {
          line = JSON.parse(text)
        } catch {
          line = { unparsed: text }
        }
      }
      this.texts.push(text)
      this.lines.push(line)
    }
    this.exited = new Promise((resolve) => {
      const finish = (exitMs) => {
        this.closed = true
        resolve({ ...this.result(), ms: exitMs ?? now() - started })
        this.check()
      }
      // Process creation is retried like runProcess() does: only when no child came to exist.
      const start = (attempt) => {
        const child = spawn(command, args, {
          cwd,
          env: { ...process.env, ...env },
          stdio: [stdin, 'pipe', 'pipe'],
          detached: group,
        })
        this.child = child
        let partial = ''
        child.stdout.setEncoding('utf8')
        child.stdout.on('data', (chunk) => {
          partial += chunk
          let newline
          while ((newline = partial.indexOf('\n')) >= 0) {
            add(partial.slice(0, newline).replace(/\r$/, ''))
            partial = partial.slice(newline + 1)
          }
          this.check()
        })
        child.stderr.setEncoding('utf8')
        child.stderr.on('data', (chunk) => {
          this.stderr += chunk
          if (this.stderr.length > stderrLimit) this.stderr = this.stderr.slice(-stderrLimit)
        })
        let exitMs
        child.on('exit', () => (exitMs = now() - started))
        child.on('error', (error) => {
          if (neverStarted(child, error) && attempt < START_ATTEMPTS) {
            setTimeout(() => start(attempt + 1), 100 * attempt)
            return
          }
          this.spawnError = error
          finish(exitMs)
        })
        child.on('close', () => {
          if (partial) add(partial)
          partial = ''
          finish(exitMs)
        })
      }
      start(1)
    })
  }

  get pid() {
    return this.child.pid
  }

  /** Its stdin stream (null when started with `stdin: 'ignore'`). */
  get stdin() {
    return this.child.stdin
  }

  /** The exit code, or null (killed by a signal, or still running). */
  get exitCode() {
    return this.child.exitCode
  }

  /** The signal that ended it, or null. */
  get signal() {
    return this.child.signalCode
  }

  /** Whether the process has not exited (nor failed to start). */
  get running() {
    return this.child.exitCode === null && this.child.signalCode === null && !this.spawnError
  }

  result() {
    return { code: this.child.exitCode, signal: this.child.signalCode, lines: this.lines, stderr: this.stderr }
  }

  /** Its label, state, stdout lines and stderr, for error messages. */
  describe() {
    const state = this.spawnError
      ? `failed to start: ${this.spawnError.message}`
      : this.running
        ? 'still running'
        : `exited with ${this.signal ?? this.exitCode}`
    return `${this.label} ${state}\n  stdout: ${this.texts.join('\n          ')}\n  stderr: ${this.stderr.trim()}`
  }

  check() {
    for (const waiter of this.waiters) waiter()
  }

  /**
   * Resolves with the first line (of all it printed, from index `from`) that `match` accepts: a
   * predicate, a RegExp or a substring. Rejects when none does and one that `failOn` accepts is there, when the
   * process has exited and all its output was read, or after `timeoutMs`; the error names `what`
   * and has the process's output.
   */
  waitForLine(match, { timeoutMs = 10000, what = String(match), failOn, from = 0 } = {}) {
    const accepts = matcher(match)
    const fails = failOn && matcher(failOn)
    return new Promise((resolve, reject) => {
      let timer
      const done = (settle, value) => {
        clearTimeout(timer)
        this.waiters.delete(waiter)
        settle(value)
      }
      const waiter = () => {
        const lines = this.lines.slice(from)
        const line = lines.find(accepts)
        if (line !== undefined) return done(resolve, line)
        if (fails && lines.some(fails))
          return done(reject, new Error(`${this.describe()}\n(while waiting for ${what})`))
        if (this.closed) done(reject, new Error(`${this.describe()}\n(before ${what})`))
      }
      timer = setTimeout(
        () => done(reject, new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.describe()}`)),
        timeoutMs,
      )
      this.waiters.add(waiter)
      waiter()
    })
  }

  /** The next line that next() has not returned yet (one line after the other, as read). */
  async next({ timeoutMs = 10000 } = {}) {
    const index = this.cursor++
    const line = await this.waitForLine(() => true, { timeoutMs, from: index, what: `line ${index + 1}` })
    return line
  }

  /** Resolves with `exited`'s result; after `timeoutMs` kills the process and rejects. */
  async exit(timeoutMs = 15000) {
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`timed out after ${timeoutMs} ms waiting for exit\n${this.describe()}`)
        this.kill()
        reject(error)
      }, timeoutMs)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Like exit(), but throws (with the output) unless the exit code is 0. */
  async success(timeoutMs) {
    const result = await this.exit(timeoutMs)
    if (result.code !== 0) throw new Error(this.describe())
    return result
  }

  /** Ends its stdin and waits for it to exit, killing it after `graceMs`; resolves with `exited`'s result. */
  async stop(graceMs = 3000) {
    if (!this.closed) {
      const timer = setTimeout(() => this.kill(), graceMs)
      this.child.stdin?.end()
      try {
        await this.exited
      } finally {
        clearTimeout(timer)
      }
    }
    return this.exited
  }

  /** Writes one line to its stdin. */
  write(line) {
    this.child.stdin.write(`${line}\n`)
  }

  /** Sends `signal` (to its whole process group when started with `group: true`) unless it has exited. */
  kill(signal = 'SIGKILL') {
    if (!this.running) return
    if (this.group) {
      try {
        process.kill(-this.child.pid, signal)
        return
      } catch {
        // the group is gone already
      }
    }
    this.child.kill(signal)
  }
}

/**
 * Starts `command args` and reads its stdout as lines: a LineProcess. Options: `env` (added to
 * process.env), `cwd`, `json` (parse each line), `label` (for messages), `stdin` ('pipe' or
 * 'ignore'), `group` (a process group of its own, which kill() signals as a whole),
 * `keepBlankLines`, `stderrLimit` (keep only the last that many characters of stderr).
 */
function spawnLines(command, args, options) {
  return new LineProcess(command, args, options)
}

/** How often a process whose creation failed is tried (see runProcess). */
const START_ATTEMPTS = 3

/** Whether `error` says the process was never created (it ran none of its code). */
function neverStarted(child, error) {
  return child.pid === undefined && typeof error?.syscall === 'string' && error.syscall.startsWith('spawn')
}

/**
 * Runs `command args` to its end and resolves with { code, stdout, stderr } whatever the exit code
 * (`code` -1 when killed or never started, with the reason in `error`). Options: `env` (added to
 * process.env), `cwd`, `input` (written to its stdin, which is then closed), `timeoutMs`.
 *
 * Process creation is retried (up to `startAttempts` times) when it failed before the child existed:
 * under Wine, CreateProcess fails now and then with `spawn UNKNOWN` on a loaded machine. A child
 * that started is never run again, so what it printed and its exit code are always its first run's.
 */
async function runProcess(
  command,
  args = [],
  { env, cwd, input, timeoutMs = 20000, startAttempts = START_ATTEMPTS } = {},
) {
  for (let attempt = 1; ; attempt++) {
    const outcome = await new Promise((resolve) => {
      const child = execFile(
        command,
        args,
        { cwd, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0
          resolve({
            result: { code, stdout, stderr, ...(code === -1 && { error }) },
            retry: neverStarted(child, error),
          })
        },
      )
      child.stdin?.on('error', () => {}) // a child that exits without reading its stdin
      child.stdin?.end(input)
    })
    if (!outcome.retry || attempt >= startAttempts) return outcome.result
    await sleep(100 * attempt)
  }
}

module.exports = {
  sleep,
  now,
  waitFor,
  quietFor,
  median,
  percentile,
  summary,
  spawnLines,
  LineProcess,
  runProcess,
}
