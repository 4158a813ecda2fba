// Types of ipckit/testing: a real frontend and a scripted in-process backend over a temporary
// channel directory, for test suites.

import type {
  ChannelMessage,
  ChannelOptions,
  FileChannel,
  HandlerContext as ChannelHandlerContext,
  JsonValue,
  UntypedApi,
} from '../index'

/**
 * What a scripted handler gets besides the params: the context a real `handle()` handler gets
 * (the request's fields, `message`, `signal`, which aborts on the requester's `task.cancel` or
 * when the backend goes, and `progress()`), plus `requestId`. A handler written for `handle()`
 * runs unchanged in the kit.
 */
export interface HandlerContext extends ChannelHandlerContext {
  /** The id of the request being answered (the same as `id`). */
  readonly requestId: string
}

/** A backend handler: its (awaited) result is the response; a throw is an error response (with the error's `code` and `data`). */
export type TestHandler = (params: any, context: HandlerContext) => unknown

/** Handler factories: answer after a delay, fail, send progress, never answer. */
export declare const respond: {
  /** Answers `value` (or what `value(params, context)` returns) after `ms` milliseconds (fake timers control the delay). */
  after(ms: number, value?: unknown): TestHandler
  /** Fails with an error response carrying `message`, and `code` / `data` as `error_code` / `error_data`. */
  error(message: string, details?: { code?: string; data?: JsonValue; afterMs?: number }): TestHandler
  /** Sends a progress update for each step (`intervalMs` apart), then answers `result`. */
  progress(
    steps: Array<number | { progress: number; total?: number; message?: string }>,
    result?: unknown,
    options?: { intervalMs?: number; total?: number },
  ): TestHandler
  /** Never answers: the request stays pending until its timeout or `close()`. */
  never(): TestHandler
}

/** The name of progress events: `'task.progress'`. */
export declare const PROGRESS_EVENT: 'task.progress'

/** The scripted backend of a test channel. */
export declare class TestBackend {
  private constructor()
  /** The real backend channel. */
  readonly channel: FileChannel
  /** Every request received, in order. */
  readonly requests: ChannelMessage[]
  /** Whether `disappear()` or `close()` ended it. */
  readonly gone: boolean
  /** Answers `method` with `handler` (a function or a `respond.*` script). */
  handle(method: string, handler: TestHandler): this
  /** `handle()` for each entry. */
  serve(handlers: Record<string, TestHandler>): this
  /**
   * The next request (of `method`) the backend receives, or an earlier one not yet returned
   * here. Rejects `ETIMEDOUT` after `timeoutMs` of real time (default 5000).
   */
  waitForRequest(method?: string, options?: { timeoutMs?: number }): Promise<ChannelMessage>
  /** Sends an event to the frontend. */
  sendEvent(name: string, payload?: JsonValue): void
  /** Sends a progress update for request `requestId`. */
  progress(requestId: string, progress: number, details?: { total?: number; message?: string }): void
  /** Answers a request by hand (for one left pending by `respond.never()`). */
  respond(requestId: string, result?: JsonValue): void
  /** Fails a request by hand. */
  fail(requestId: string, message: string, details?: { code?: string; data?: JsonValue }): void
  /** Appends an entry the protocol does not accept to the backend's outbox; returns it. */
  writeMalformed(entry?: unknown): unknown
  /** Replaces the backend's outbox with `text`, as it is. */
  writeRaw(text: string): void
  /** The backend goes away (peer gone); `announce: true` sends `backend_shutdown` first. */
  disappear(options?: { announce?: boolean }): void
}

export interface TestChannelSetup {
  /** The backend's handlers, by method. */
  handlers?: Record<string, TestHandler>
  /** Channel options of both ends. */
  options?: ChannelOptions
  /** Options of the backend only (over `options`). */
  backendOptions?: ChannelOptions
}

export interface TestChannel<Api extends object = UntypedApi> {
  /** The real frontend channel: the one your code under test uses. */
  channel: FileChannel<Api>
  /** The scripted backend. */
  backend: TestBackend
  /** The channel directory (inside a new temporary directory). */
  dir: string
  /** Closes both ends and removes the temporary directory. Idempotent. */
  close(): void
  [Symbol.dispose](): void
  [Symbol.asyncDispose](): Promise<void>
}

/** A real frontend and a real scripted backend over a new temporary channel directory. */
export declare function createTestChannel<Api extends object = UntypedApi>(setup?: TestChannelSetup): TestChannel<Api>
