// Public types of ipckit. The message and option shapes are generated from the Rust sources by
// napi-rs (binding.d.ts); the FileChannel class is the JavaScript layer in index.js.

import type { ChannelMessage, ChannelOptions } from './binding'

export type { ChannelMessage, ChannelOptions }

/** Deepest payload nesting the reference (Python) reader can still parse: 125. */
export declare const MAX_PAYLOAD_DEPTH: number

/** Any value JSON can hold. `undefined` at the top level is sent as `null`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined }

/** An `Error` from ipckit, with a stable `code`. */
export interface IpcError extends Error {
  /**
   * `ETIMEDOUT`, `ELOCKED`, `EBADMSG`, `ECLOSED`, `EREMOTE`, `EINVAL`, `EFBIG`, `ELOST`, `EWATCH`,
   * `ENOBUFS`, `EPERM`, `ABORT_ERR`, or an OS code such as `ENOENT`, `EACCES`, `ENOTDIR`.
   */
  code: string
}

/**
 * What ipckit uses of an `AbortSignal` (declared structurally so that these types need neither the
 * DOM lib nor `@types/node`; any real `AbortSignal` fits).
 */
export interface AbortSignalLike {
  readonly aborted: boolean
  readonly reason?: unknown
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

export interface RequestOptions {
  /** Reject with `ETIMEDOUT` after this many milliseconds. Default 30000. */
  timeoutMs?: number
  /** Aborting rejects the pending wait with an `AbortError` (`code: 'ABORT_ERR'`). */
  signal?: AbortSignalLike
}

export interface WaitOptions {
  /** Aborting rejects the pending wait with an `AbortError` (`code: 'ABORT_ERR'`). */
  signal?: AbortSignalLike
}

export interface MessagesOptions {
  /** Aborting ends the iteration. */
  signal?: AbortSignalLike
}

/** Answers one request method: the resolved value becomes the response, a throw an error response. */
export type RequestHandler = (params: any, message: ChannelMessage) => unknown

export interface FileChannelEvents {
  /** Every incoming message not taken by a pending wait. */
  message: [message: ChannelMessage]
  request: [message: ChannelMessage]
  response: [message: ChannelMessage]
  event: [message: ChannelMessage]
  /** Non-fatal problems: a malformed inbox (`EBADMSG`), loss (`ELOST`), a watcher failure (`EWATCH`), a throwing listener. */
  error: [error: IpcError]
}

/**
 * One end of an ipckit file channel: two JSON files in a shared directory, byte-compatible with
 * the Python `ipckit` package. Every incoming message goes to exactly one place: the pending
 * `waitResponse`/`request` for it, else the listeners for its type, else the `recv()` queue.
 */
export declare class FileChannel {
  /** Opens the frontend end in `dir`, creating the directory and files as the reference does. */
  static frontend(dir: string, options?: ChannelOptions): FileChannel
  /** Opens the backend end in `dir`, creating the directory and files as the reference does. */
  static backend(dir: string, options?: ChannelOptions): FileChannel
  private constructor(dir: string, role: 'frontend' | 'backend', options?: ChannelOptions)

  /** The channel directory, as given. */
  readonly dir: string
  readonly role: 'frontend' | 'backend'
  /** Whether `close()` was called. */
  readonly closed: boolean
  /** `waitResponse`/`request` promises not yet settled. */
  readonly pendingWaits: number

  /** Sends a request; returns its id. Throws `EINVAL` (with the path) for values JSON cannot hold. */
  sendRequest(method: string, params?: unknown): string
  /** Sends the response to request `requestId`. */
  sendResponse(requestId: string, result?: unknown): void
  /** Sends an error response: `payload` is `null` and `error` carries the text. */
  sendError(requestId: string, message: string | Error): void
  /** Sends an event (no response expected). */
  sendEvent(name: string, payload?: unknown): void
  /**
   * The sends above, but when slow acknowledging readers have filled the backlog the promise
   * waits for room instead of throwing `ENOBUFS`; rejects `ETIMEDOUT` or `AbortError`.
   * `target` is the method (request), the request id (response, error) or the event name.
   * Resolves with the new id for a request.
   */
  sendAsync(kind: 'request', target: string, payload?: unknown, options?: RequestOptions): Promise<string>
  sendAsync(kind: 'response' | 'event', target: string, payload?: unknown, options?: RequestOptions): Promise<void>
  sendAsync(kind: 'error', target: string, message: string | Error, options?: RequestOptions): Promise<void>

  /** The new messages since the last call, each exactly once, in order. Throws a pending problem (`EBADMSG`, `ELOST`) once; the messages stay queued. */
  recv(): ChannelMessage[]
  /** One new message, or `null`. */
  recvOne(): ChannelMessage | null

  /**
   * Resolves with the response message to `requestId` (an error response too: it carries
   * `error`); rejects with `ETIMEDOUT` after `timeoutMs` (default 30000), `ECLOSED` on close.
   * Finds a response already in the inbox. Never blocks the event loop or the libuv pool.
   */
  waitResponse(requestId: string, timeoutMs?: number, options?: WaitOptions): Promise<ChannelMessage>
  /** Sends a request and resolves with the response payload; rejects with `EREMOTE` and the remote error text for an error response. */
  request<T = any>(method: string, params?: unknown, options?: RequestOptions): Promise<T>

  /** Answers requests for `method` automatically. */
  handle(method: string, handler: RequestHandler): this
  /** `handle()` for each method of `handlers`. Requests for other methods get an error response naming them (unless a `'request'` listener exists). */
  serve(handlers: Record<string, RequestHandler>): this
  /** Stops answering `method`, or every method. */
  unhandle(method?: string): this

  /** Incoming messages as an async iterator; ends when `signal` aborts or the channel closes. */
  messages(options?: MessagesOptions): AsyncIterableIterator<ChannelMessage>

  on<E extends keyof FileChannelEvents>(event: E, listener: (...args: FileChannelEvents[E]) => void): this
  addListener<E extends keyof FileChannelEvents>(event: E, listener: (...args: FileChannelEvents[E]) => void): this
  once<E extends keyof FileChannelEvents>(event: E, listener: (...args: FileChannelEvents[E]) => void): this
  off<E extends keyof FileChannelEvents>(event: E, listener: (...args: FileChannelEvents[E]) => void): this
  removeListener<E extends keyof FileChannelEvents>(event: E, listener: (...args: FileChannelEvents[E]) => void): this
  removeAllListeners(event?: keyof FileChannelEvents): this
  listenerCount(event: keyof FileChannelEvents): number

  /** Keep the process alive while this channel waits or listens (the default). */
  ref(): this
  /** Let the process exit even while this channel waits or listens. */
  unref(): this

  /** Empties both message files (each under its writer's lock, by rename). */
  clear(): void
  /** Rejects pending waits with `ECLOSED`, ends iterators, releases the watcher and every native callback. Later calls throw `ECLOSED`. Idempotent. */
  close(): void
}
