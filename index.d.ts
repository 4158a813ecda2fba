// Public types of ipckit. The option shapes are generated from the Rust sources by napi-rs
// (binding.d.ts); the FileChannel class is the JavaScript layer in lib/channel.js.
//
// These types need neither `@types/node` nor the DOM lib: the EventEmitter members and the
// AbortSignal are declared structurally (a FileChannel is a real `EventEmitter` at run time).

import type { ChannelOptions } from './binding'

export type { ChannelOptions }

// `Symbol.dispose` / `Symbol.asyncDispose` for projects whose `lib` predates them (the same
// declaration as TypeScript's `esnext.disposable` and `@types/node`, with which it merges).
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol
    readonly asyncDispose: unique symbol
  }
}

/** Deepest payload nesting the reference (Python) reader can still parse: 125. */
export declare const MAX_PAYLOAD_DEPTH: number

/** The core's defaults: every channel option, and `timeoutMs` of `request()`/`waitResponse()`. */
export declare const DEFAULTS: Readonly<Required<ChannelOptions> & { timeoutMs: number }>

/** The core's limits: payload depth, longest timeout, and each numeric option's range. */
export declare const LIMITS: Readonly<{
  maxPayloadDepth: number
  maxTimeoutMs: number
  options: Readonly<Record<string, Readonly<{ min: number; max: number }>>>
}>

/** A JSON value, as received. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/**
 * `T` if JSON can hold it (as `JSON.stringify` sends it: `toJSON()` is honoured, `undefined`
 * properties are left out), else `never` where it cannot: functions, symbols, BigInt, and
 * objects with methods. Payload parameters are `T & Jsonable<T>`, so such values do not compile.
 */
export type Jsonable<T> = [JsonInput] extends [T]
  ? T
  : T extends string | number | boolean | null | undefined
    ? T
    : T extends { toJSON(): unknown }
      ? T
      : T extends ((...args: any[]) => unknown) | bigint | symbol
        ? never
        : T extends readonly unknown[]
          ? { readonly [K in keyof T]: Jsonable<T[K]> }
          : T extends object
            ? { readonly [K in keyof T]: Jsonable<T[K]> }
            : never

/** A message as JavaScript sees it. On disk `replyTo` is `reply_to`; optional fields are absent when not set. */
export interface ChannelMessage<P = any> {
  /** A v4 UUID, lowercase with dashes. */
  id: string
  /** Milliseconds since the Unix epoch when the sender made the message. */
  timestamp: number
  type: 'request' | 'response' | 'event'
  /** Requests: the method name. Events: the event name. */
  method?: string
  /** Responses: the `id` of the request answered (`reply_to` on disk). */
  replyTo?: string
  /** Request params, response result or event data (any JSON value); `null` in an error response. */
  payload: P
  /** Error responses only: the error text. */
  error?: string
  /** Error responses only, when the peer sent `error_code` (PROTOCOL-EXTENSIONS.md). */
  errorCode?: string
  /** Error responses only, when the peer sent `error_data`. */
  errorData?: JsonValue
}

/** An `Error` from ipckit, with a stable `code`. */
export interface IpcError extends Error {
  /**
   * `ETIMEDOUT`, `ELOCKED`, `EBADMSG`, `ECLOSED`, `EREMOTE`, `EPEERGONE`, `EINVAL`, `EFBIG`,
   * `ELOST`, `EMAYBELOST`, `EBUSY`, `EAGAIN` (a network share kept serving a cut-off copy of the
   * outbox: nothing was written), `EWATCH`, `ENOBUFS`, `EPERM`, `ABORT_ERR`, or an OS code such
   * as `ENOENT`, `EACCES`, `ENOTDIR`. (`ECANCELED` is the `reason` of a handler's
   * `context.signal` when the requester cancelled.)
   */
  code: string
}

/**
 * The rejection of a `request()` when the peer is gone (`channel.peer.state` became `'gone'`: it
 * sent `backend_shutdown` / `frontend_shutdown`, its heartbeat lapsed, or its process on this host
 * ended): a call in flight rejects within moments instead of at the end of `timeoutMs` (and
 * `task.cancel` is sent, so that a restarted peer never runs it); a call started while the peer
 * is gone rejects at once unless it asked for `waitForPeer`.
 */
export interface PeerGoneError extends IpcError {
  code: 'EPEERGONE'
  /** The method that was requested. */
  method: string
  /** The id of the request. */
  requestId: string
  /** What was known of the peer when it went. */
  peer: PeerStatus
}

/**
 * The `reason` of a handler's `context.signal` when the requester sent `task.cancel` (it aborted
 * or gave up): `name` is `'AbortError'`, `code` `'ECANCELED'`, `reason` the requester's text when
 * it gave one (`'timeout'` when its `timeoutMs` or `idleTimeoutMs` ran out). When the channel
 * closes the reason is an {@link IpcError} with code `ECLOSED` instead.
 */
export interface CancelledError extends IpcError {
  code: 'ECANCELED'
  reason?: string
}

/** The rejection of `request()` when the peer answers with an error response. */
export interface RemoteError extends IpcError {
  code: 'EREMOTE'
  /** The method that was requested. */
  method: string
  /** The id of the request. */
  requestId: string
  /** The peer's error text (also the `message`). */
  remoteMessage: string
  /** The peer's error code (`error_code`), when it sent one. */
  remoteCode?: string
  /** The peer's error data (`error_data`), when it sent it. */
  remoteData?: JsonValue
}

/** Details of an error response: the `error_code` and `error_data` extension fields. */
export interface ErrorDetails<D = JsonValue> {
  code?: string
  data?: D & Jsonable<D>
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

/** Options of `sendAsync()`. */
export interface SendOptions {
  /** Reject with `ETIMEDOUT` after this many milliseconds. Default `DEFAULTS.timeoutMs` (30000). */
  timeoutMs?: number
  /** Aborting rejects the pending wait with an `AbortError` (`code: 'ABORT_ERR'`). */
  signal?: AbortSignalLike
}

/**
 * One progress update of a request, from the handler's `task.progress` event
 * (PROTOCOL-EXTENSIONS.md): `progress` should grow; `total`, when sent, is the value it reaches
 * at the end; `message` is text for a user. Absent fields were not sent.
 */
export interface ProgressUpdate {
  progress: number
  total?: number
  message?: string
}

/** Options of `request()`. */
export interface RequestOptions {
  /**
   * The overall limit: reject with `ETIMEDOUT` after this many milliseconds, progress or not.
   * Default `DEFAULTS.timeoutMs` (30000). Running out also sends `task.cancel` (reason
   * `'timeout'`) so that the handler can stop.
   */
  timeoutMs?: number
  /**
   * Reject with `ETIMEDOUT` when neither a progress update nor the response arrived for this
   * many milliseconds (each update restarts it); also sends `task.cancel` (reason `'timeout'`).
   * For long calls that report progress: "busy" is told from "stuck" long before `timeoutMs`.
   */
  idleTimeoutMs?: number
  /**
   * Aborting rejects with an `AbortError` (`code: 'ABORT_ERR'`) and sends `task.cancel` for the
   * request (with the abort reason as text when it is a string or an `Error`): the handler's
   * `context.signal` (Node) or `ctx.cancelled` (`ipckit_peer`) tells it to stop.
   */
  signal?: AbortSignalLike
  /**
   * Called with each progress update of this request, in order, before the promise settles.
   * These `task.progress` events reach neither `'event'` listeners nor `recv()`. A throw does not
   * fail the request: it goes to `'error'` listeners (without one it is an uncaught exception, as
   * from a throwing listener).
   */
  onProgress?: (update: ProgressUpdate) => void
  /**
   * What to do when the peer is known to be gone (`channel.peer.state === 'gone'`) as the call
   * starts. `false` (the default): reject at once with `EPEERGONE`, without writing the request.
   * `true`: wait for the peer to be ready again (a restarted backend announcing itself), then
   * send; all within `timeoutMs`. A peer not seen yet (`'unknown'`) is always sent to: the
   * request waits in the file until a backend reads it.
   */
  waitForPeer?: boolean
}

/** Options of `ready()`. */
export interface ReadyOptions {
  /** Reject with `ETIMEDOUT` after this many milliseconds. Default `DEFAULTS.timeoutMs` (30000); `0` checks once. */
  timeoutMs?: number
  /** Aborting rejects with an `AbortError` (`code: 'ABORT_ERR'`). */
  signal?: AbortSignalLike
}

/**
 * What is known of the other side of the channel (PROTOCOL-EXTENSIONS.md, "Presence"): `'unknown'`
 * until it announces itself (`backend_ready` / `frontend_ready`) or its acknowledgement heartbeat
 * is seen; `'ready'`; `'gone'` after its `*_shutdown`, a lapsed heartbeat, or (same host) the end
 * of its process. Absent fields were not said.
 */
export interface PeerStatus {
  readonly state: 'unknown' | 'ready' | 'gone'
  /** Its process id. */
  readonly pid?: number
  /** Its host name (as Python's `socket.gethostname()` gives it). */
  readonly host?: string
  /** The request methods it announced (`available_methods`), sorted. */
  readonly methods?: string[]
}

/**
 * What the channel dropped instead of handing out: replies whose wait had ended or that belong to
 * an earlier session, and requests that must not run again (PROTOCOL-EXTENSIONS.md, "Restarts").
 */
export interface ChannelStats {
  /**
   * Responses to a `request()` that had ended (aborted, timed out, `EPEERGONE`), to a request
   * already answered (a duplicate, such as a reference `recv()` loop's repeats cause), or to the
   * requests of an earlier session (this channel was reopened on files a previous one left).
   */
  readonly droppedResponses: number
  /** `task.progress` updates for `request()` calls that had ended or for an earlier session. */
  readonly droppedProgress: number
  /**
   * Requests not handed to handlers, listeners or `recv()`: an earlier session of this channel
   * had answered them (a restarted backend), or their sender cancelled them in the same read.
   */
  readonly droppedRequests: number
}

/**
 * The global `AbortSignal` type when the project has one (the DOM lib or `@types/node`), so that
 * `context.signal` can be passed to `fetch()`, `timers/promises` and the like; else
 * {@link AbortSignalLike}.
 */
export type GlobalAbortSignal = typeof globalThis extends { AbortSignal: { prototype: infer S } } ? S : AbortSignalLike

/** Options of `context.progress()`. */
export interface ProgressOptions {
  /** The value `progress` reaches at the end (a finite number). */
  total?: number
  /** Text for a user. */
  message?: string
}

/**
 * The second argument of a request handler. It is a copy of the request message's fields (so a
 * handler written as `(params, message)` keeps working), plus three non-enumerable members.
 */
export interface HandlerContext<P = any> extends ChannelMessage<P> {
  type: 'request'
  method: string
  /** The request message itself. */
  readonly message: ChannelMessage<P>
  /**
   * Aborts when the requester cancels this request (`task.cancel`: it aborted its signal or gave
   * up; `reason` is a {@link CancelledError}), or the channel closes (`reason` has code
   * `ECLOSED`). Stopping is up to the handler; whatever it returns afterwards is still sent
   * and dropped by the requester as a late reply.
   */
  readonly signal: GlobalAbortSignal
  /**
   * Sends a progress update for this request (a `task.progress` event), which the requester's
   * `onProgress` receives. Throws `EINVAL` for a non-finite number; does nothing once the
   * request is answered or cancelled.
   */
  progress(progress: number, options?: ProgressOptions): void
}

export interface WaitOptions {
  /** Aborting rejects the pending wait with an `AbortError` (`code: 'ABORT_ERR'`). */
  signal?: AbortSignalLike
}

export interface MessagesOptions {
  /** Aborting rejects the waiting (or next) `next()` with an `AbortError`, as `events.on` does. */
  signal?: AbortSignalLike
}

/**
 * An API map for `FileChannel<Api>`: each method name to a function type from its params to its
 * result, e.g. `{ add(params: { a: number; b: number }): number; ping(): 'pong' }`.
 */
export type ApiMap = { [method: string]: (params: any) => any }

/** The default (untyped) API: any method, any JSON params, `any` result. */
export interface UntypedApi {
  [method: string]: (params?: any) => any
}

export type ParamsOf<F> = F extends () => any ? undefined : F extends (params: infer P) => any ? P : never
export type ResultOf<F> = F extends (...args: any[]) => infer R ? Awaited<R> : never

type IsUntyped<Api> = string extends keyof Api ? true : false

/** What JSON can hold, as a type (the default of payload type parameters given explicitly). */
export type JsonInput =
  | null
  | boolean
  | number
  | string
  | undefined
  | readonly JsonInput[]
  | { readonly [key: string]: JsonInput }
  | { toJSON(): unknown }

/** `request()` of an untyped channel: `T` is the result type you expect. */
export type UntypedRequest = <T = any, P = JsonInput>(
  method: string,
  params?: P & Jsonable<P>,
  options?: RequestOptions,
) => Promise<T>

/** `request()` of a `FileChannel<Api>`: the method, its params and its result are checked. */
export type TypedRequest<Api> = <M extends keyof Api & string>(
  method: M,
  ...args: undefined extends ParamsOf<Api[M]>
    ? [params?: ParamsOf<Api[M]>, options?: RequestOptions]
    : [params: ParamsOf<Api[M]>, options?: RequestOptions]
) => Promise<ResultOf<Api[M]>>

/**
 * Answers one request method: the resolved value becomes the response, a throw an error response.
 * `context` is the request message's fields plus `signal`, `progress()` and `message`.
 */
export type RequestHandler<P = any, R = unknown> = (params: P, context: HandlerContext<P>) => R | Promise<R>

export type Handlers<Api> =
  IsUntyped<Api> extends true
    ? Record<string, RequestHandler>
    : { [M in keyof Api]?: RequestHandler<ParamsOf<Api[M]>, ResultOf<Api[M]>> }

export interface FileChannelEvents {
  /** Every incoming message not taken by a pending wait. */
  message: [message: ChannelMessage]
  request: [message: ChannelMessage]
  response: [message: ChannelMessage]
  event: [message: ChannelMessage]
  /** Non-fatal problems: a malformed inbox (`EBADMSG`), loss (`ELOST`), a watcher failure (`EWATCH`), a throwing listener. */
  error: [error: IpcError]
  /** Each change of `channel.peer` (`'ready'`, a new method list, `'gone'`). */
  peer: [status: PeerStatus]
  /** After `close()`, once. */
  close: []
}

type Listener<E extends keyof FileChannelEvents> = (...args: FileChannelEvents[E]) => void
type AnyListener = (...args: any[]) => void

/**
 * One end of an ipckit file channel: two JSON files in a shared directory, byte-compatible with
 * the Python `ipckit` package. Every incoming message goes to exactly one place: the pending
 * `waitResponse`/`request` for it, else the listeners for its type, else the `recv()` queue.
 * A real `EventEmitter` (`instanceof EventEmitter` is true).
 *
 * `Api` (optional) types `request()`, `handle()` and `serve()`: see {@link ApiMap}.
 */
export declare class FileChannel<Api extends object = UntypedApi> {
  /** Opens the frontend end in `dir`, creating the directory and files as the reference does. */
  static frontend<Api extends object = UntypedApi>(dir: string, options?: ChannelOptions): FileChannel<Api>
  /** Opens the backend end in `dir`, creating the directory and files as the reference does. */
  static backend<Api extends object = UntypedApi>(dir: string, options?: ChannelOptions): FileChannel<Api>
  private constructor(dir: string, role: 'frontend' | 'backend', options?: ChannelOptions)

  /** The channel directory, as given. */
  readonly dir: string
  readonly role: 'frontend' | 'backend'
  /** Whether `close()` was called. */
  readonly closed: boolean
  /** `waitResponse`/`request` promises not yet settled. */
  readonly pendingWaits: number
  /**
   * What is known of the other side now (checked on each read): its state, and the pid, host and
   * methods it announced. A `'peer'` event fires on each change.
   */
  readonly peer: PeerStatus
  /** Replies dropped because their wait had ended (late after a cancel or timeout, or duplicates). */
  readonly stats: ChannelStats

  /**
   * Resolves with `channel.peer` once the peer is ready (at once if it is): it announced itself
   * (`backend_ready` / `frontend_ready`, as upstream's example backend, `ipckit_peer` and our
   * handlers do) or publishes a live acknowledgement heartbeat. Rejects with `ETIMEDOUT` after
   * `timeoutMs`, `ABORT_ERR`, or `ECLOSED`.
   */
  ready(options?: ReadyOptions): Promise<PeerStatus>

  /** Sends a request; returns its id. Throws `EINVAL` (with the path) for values JSON cannot hold. */
  sendRequest<P = undefined>(method: string, params?: P & Jsonable<P>): string
  /** Sends the response to request `requestId`. */
  sendResponse<R = undefined>(requestId: string, result?: R & Jsonable<R>): void
  /**
   * Sends an error response: `payload` is `null` and `error` carries the text. An `Error` gives
   * its message, `code` and `data`; `details` sets `error_code` / `error_data` explicitly.
   */
  sendError<D = JsonValue>(requestId: string, message: string | Error, details?: ErrorDetails<D>): void
  /** Sends an event (no response expected). */
  sendEvent<P = undefined>(name: string, payload?: P & Jsonable<P>): void
  /**
   * The sends above, but when slow acknowledging readers have filled the backlog the promise
   * waits for room instead of throwing `ENOBUFS`; rejects `ETIMEDOUT` or `AbortError`.
   * `target` is the method (request), the request id (response, error) or the event name.
   * Resolves with the new id for a request.
   */
  sendAsync<P = undefined>(
    kind: 'request',
    target: string,
    payload?: P & Jsonable<P>,
    options?: SendOptions,
  ): Promise<string>
  sendAsync<P = undefined>(
    kind: 'response' | 'event',
    target: string,
    payload?: P & Jsonable<P>,
    options?: SendOptions,
  ): Promise<void>
  sendAsync(kind: 'error', target: string, message: string | Error, options?: SendOptions): Promise<void>

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
  /**
   * Sends a request and resolves with the response payload; rejects with a {@link RemoteError}
   * (`EREMOTE`: `method`, `requestId`, the remote text, code and data) for an error response,
   * `ETIMEDOUT` (`timeoutMs`, `idleTimeoutMs`), `ABORT_ERR` (`signal`; the handler is told to
   * cancel), {@link PeerGoneError} (`EPEERGONE`), `ECLOSED`. `onProgress` gets the handler's
   * progress updates. A reply that arrives after the call ended is dropped (`stats`). Every
   * rejection carries the caller's stack.
   */
  request: IsUntyped<Api> extends true ? UntypedRequest : TypedRequest<Api>

  /**
   * Answers requests for `method` with `handler(params, context)`: the (awaited) return value is
   * the response, a throw an error response. Handlers announce themselves to the peer
   * (`<role>_ready` with the method names) and `<role>_shutdown` on close.
   */
  handle<M extends keyof Api & string>(
    method: M,
    handler: IsUntyped<Api> extends true ? RequestHandler : RequestHandler<ParamsOf<Api[M]>, ResultOf<Api[M]>>,
  ): this
  /** `handle()` for each method of `handlers`. Requests for other methods get an error response naming them (unless a `'request'` listener exists). */
  serve(handlers: Handlers<Api>): this
  /** Stops answering `method`, or every method. */
  unhandle(method?: string): this

  /**
   * Incoming messages as an async iterator, like `events.on()`: several `next()` may wait at
   * once; ends when the channel closes; an aborted `signal` rejects with an `AbortError`.
   */
  messages(options?: MessagesOptions): AsyncIterableIterator<ChannelMessage>

  // EventEmitter (typed for the channel's events; any other name is accepted as EventEmitter does).
  on<E extends keyof FileChannelEvents>(event: E, listener: Listener<E>): this
  on(event: string | symbol, listener: AnyListener): this
  addListener<E extends keyof FileChannelEvents>(event: E, listener: Listener<E>): this
  addListener(event: string | symbol, listener: AnyListener): this
  prependListener<E extends keyof FileChannelEvents>(event: E, listener: Listener<E>): this
  prependListener(event: string | symbol, listener: AnyListener): this
  once<E extends keyof FileChannelEvents>(event: E, listener: Listener<E>): this
  once(event: string | symbol, listener: AnyListener): this
  prependOnceListener<E extends keyof FileChannelEvents>(event: E, listener: Listener<E>): this
  prependOnceListener(event: string | symbol, listener: AnyListener): this
  off<E extends keyof FileChannelEvents>(event: E, listener: Listener<E>): this
  off(event: string | symbol, listener: AnyListener): this
  removeListener<E extends keyof FileChannelEvents>(event: E, listener: Listener<E>): this
  removeListener(event: string | symbol, listener: AnyListener): this
  removeAllListeners(event?: string | symbol): this
  emit<E extends keyof FileChannelEvents>(event: E, ...args: FileChannelEvents[E]): boolean
  emit(event: string | symbol, ...args: any[]): boolean
  listenerCount(event: string | symbol, listener?: AnyListener): number
  listeners(event: string | symbol): AnyListener[]
  rawListeners(event: string | symbol): AnyListener[]
  eventNames(): Array<string | symbol>
  setMaxListeners(n: number): this
  getMaxListeners(): number

  /** Keep the process alive while this channel waits or listens (the default). */
  ref(): this
  /** Let the process exit even while this channel waits or listens. */
  unref(): this

  /** Empties both message files (each under its writer's lock, by rename). */
  clear(): void
  /** Writes what was sent before it (a handler's last answers among them, waiting for a locked outbox up to `lockTimeoutMs`, as a synchronous send does) and then the shutdown announcement; rejects pending waits with `ECLOSED`, ends iterators, releases the watcher and every native callback, then emits `'close'`. What could not be written is reported (`ELOST`, naming the outbox and why) and its promises reject with `ECLOSED`. Later calls throw `ECLOSED`. Idempotent. When it returns, this process has let go of the directory (also on Windows), so it can be removed right away. */
  close(): void
  /** `close()`, for `using`. */
  [Symbol.dispose](): void
  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>
}
