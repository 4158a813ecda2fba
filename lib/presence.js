'use strict'

// Presence (PROTOCOL-EXTENSIONS.md, "Presence"): `channel.peer`, the 'peer' event, `ready()`,
// and our own announcements (`<role>_ready` with the handled methods, `<role>_shutdown` on
// close). The native core follows the peer's announcements in the inbox and the heartbeats of
// our outbox's readers, checking them on its dispatcher thread while anyone cares (a 'peer'
// listener, ready(), request()s in flight); here we turn what changed into events.

const { codedError, abortError, describe } = require('./errors.js')
const { setTimeout, clearTimeout, afterThisJob } = require('./scheduling.js')

class PeerPresence {
  #check
  #onChange
  #status = Object.freeze({ state: 'unknown' })
  // The newest state known, from a check on the spot or a change the core reported (which
  // reaches us a moment after the check that found it).
  #latest = this.#status
  #waiters = new Set()
  #closed = false
  // Whether a pending ready() keeps the process alive (the channel's ref()/unref()).
  #referenced = true

  /**
   * `check()` asks the core (changes come back through `update()`), `onChange(status)` is told
   * of each change.
   */
  constructor({ check, onChange }) {
    this.#check = check
    this.#onChange = onChange
  }

  get waiting() {
    return this.#waiters.size
  }

  /** What is known now (checked on the spot). */
  current() {
    if (this.#closed) return this.#status
    try {
      this.#latest = Object.freeze(this.#check())
    } catch {
      return this.#status
    }
    return this.#latest
  }

  /** What is known of the peer when it is known to be gone (checked again now), else null. */
  gone() {
    if (this.#closed || this.#latest.state !== 'gone') return null
    const now = this.current()
    return now.state === 'gone' ? now : null
  }

  /** Changes found by the core, in order. */
  update(statuses) {
    for (const status of statuses) {
      this.#status = Object.freeze(status)
      this.#latest = this.#status
      if (status.state === 'ready' && this.#waiters.size > 0) {
        // A change reaches us a moment after the core found it: the peer may be gone again by
        // now (killed right after it announced), and a waiter must not take it for ready.
        const now = this.current()
        if (now.state === 'ready') for (const waiter of [...this.#waiters]) waiter.resolve(now)
      }
      this.#onChange(this.#status)
    }
  }

  ready(options, maxTimeoutMs, defaultTimeoutMs) {
    const { timeoutMs = defaultTimeoutMs, signal } = options ?? {}
    if (!(typeof timeoutMs === 'number' && timeoutMs >= 0 && timeoutMs <= maxTimeoutMs)) {
      throw codedError(
        'EINVAL',
        `timeoutMs must be a number of milliseconds from 0 to ${maxTimeoutMs}, got ${describe(timeoutMs)}`,
        TypeError,
      )
    }
    if (this.#closed) throw codedError('ECLOSED', 'the channel is closed')
    if (signal?.aborted) throw abortError(signal)
    const now = this.current()
    if (now.state === 'ready') return Promise.resolve(now)
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (status) => settle(resolve, status),
        reject: (error) => settle(reject, error),
      }
      const onAbort = () => waiter.reject(abortError(signal))
      const timer = setTimeout(
        () => waiter.reject(codedError('ETIMEDOUT', `the peer did not announce itself within ${timeoutMs} ms`)),
        timeoutMs,
      )
      waiter.timer = timer
      if (!this.#referenced) timer.unref?.()
      const settle = (fn, value) => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#waiters.delete(waiter)
        fn(value)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.add(waiter)
    })
  }

  /** Whether pending ready() calls keep the process alive, as the channel's ref()/unref() say. */
  setReferenced(referenced) {
    this.#referenced = referenced
    for (const { timer } of this.#waiters) {
      if (referenced) timer?.ref?.()
      else timer?.unref?.()
    }
  }

  close() {
    this.#closed = true
    for (const waiter of [...this.#waiters]) waiter.reject(codedError('ECLOSED', 'the channel is closed'))
  }
}

/**
 * Our own announcements: `<role>_ready` with the sorted handled methods (sent once the handlers
 * of one synchronous run of code are registered, and again when they change), and
 * `<role>_shutdown` on close once we announced.
 */
class Announcer {
  #role
  #send
  #sendNow
  #methods
  #announced = null
  #scheduled = false

  /** `send(name, payload)` queues an event; `sendNow(name, payload)` writes it before returning. */
  constructor(role, { methods, send, sendNow, host }) {
    this.#role = role
    this.#methods = methods
    this.#send = send
    this.#sendNow = sendNow
    this.host = host
  }

  get announced() {
    return this.#announced !== null
  }

  /** The handled methods may have changed. */
  changed() {
    if (this.#scheduled) return
    this.#scheduled = true
    afterThisJob(() => {
      this.#scheduled = false
      const methods = [...this.#methods()].sort()
      if (methods.length === 0 && this.#announced === null) return
      const key = methods.join('\n')
      if (key === this.#announced) return
      this.#announced = key
      this.#send(`${this.#role}_ready`, { available_methods: methods, pid: process.pid, host: this.host() })
    })
  }

  /** Sends `<role>_shutdown` if we announced; never throws. */
  shutdown() {
    if (this.#announced === null) return
    this.#announced = null
    try {
      this.#sendNow(`${this.#role}_shutdown`, { pid: process.pid })
    } catch {
      // closing anyway: the heartbeat's end tells the peer as well
    }
  }
}

module.exports = { PeerPresence, Announcer }
