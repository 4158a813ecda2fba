"""The Peer: one end of an ipckit file channel, with handlers, progress, cancellation, presence,
acknowledgements and exactly-once delivery. See README.md and PROTOCOL-EXTENSIONS.md."""

import collections
import logging
import math
import os
import queue
import socket
import sys
import threading
import time
import warnings

import ipckit

from ._inbox import FULL_READ_PERIOD, WATCHED_FULL_READ_PERIOD, AckPublisher, InboxReader, settled_request_ids
from ._locks import clear_abandoned_lock
from ._watch import InboxWatcher
from .errors import PeerClosed, PeerError, RemoteError, RequestTimeout
from .executors import ThreadPool

log = logging.getLogger("ipckit_peer")

PROGRESS_EVENT = "task.progress"
CANCEL_EVENT = "task.cancel"

INBOX = {"backend": "frontend_to_backend.json", "frontend": "backend_to_frontend.json"}
OUTBOX = {"backend": "backend_to_frontend.json", "frontend": "frontend_to_backend.json"}

# Responses and progress updates that arrive before request() has registered its id (the other
# side can answer between send_request() returning and the registration) wait here; bounded.
_MAX_EARLY = 256
# Ids of requests that request() gave up on, to count their late responses; bounded.
_MAX_ABANDONED = 1024
# Ids of requests answered in this session, never run again; bounded (those answered before we
# opened, read from our outbox, are kept besides).
_MAX_SETTLED = 4096
# How often a failed response send is tried again (each try may wait ~0.5 s for the lock).
_SEND_TRIES = 3


# The deepest payload the reference reader parses back (serde_json stops at 128 levels, counting
# the array and the message around the payload); the Node side refuses the same.
MAX_PAYLOAD_DEPTH = 125


def _jsonable(value, depth=0):
    """``value`` with tuples turned into lists (the reference writer refuses tuples). Raises
    ValueError for nesting the reference reader could not read back: written, such a message
    would make every later read of the file fail, our own sends' included."""
    if isinstance(value, (tuple, list, dict)):
        if depth >= MAX_PAYLOAD_DEPTH:
            raise ValueError(
                "the payload is nested deeper than %d levels, which the reference reader cannot read"
                % MAX_PAYLOAD_DEPTH
            )
        if isinstance(value, dict):
            return dict((key, _jsonable(item, depth + 1)) for key, item in value.items())
        return [_jsonable(item, depth + 1) for item in value]
    return value


def _number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number, not %r" % (name, value))
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("%s must be finite, not %r" % (name, value))
    return value


def _error_text(error):
    text = str(error)
    return text if text else type(error).__name__


# Modules whose presence says we run inside a DCC host whose API must be called on its main thread.
_HOST_MODULES = {"bpy": "Blender", "maya": "Maya", "hou": "Houdini", "nuke": "Nuke"}


def _warn_if_in_a_host():
    """Handlers on the default worker threads cannot safely call a host's API (bpy, maya.cmds,
    hou): it often *appears* to work, with no warning from the host."""
    hosts = [name for module, name in sorted(_HOST_MODULES.items()) if module in sys.modules]
    if hosts:
        warnings.warn(
            "ipckit_peer: no executor given inside %s: handlers run on worker threads, where the "
            "host's API is not safe; pass executor= (see python/README.md, 'The executor')" % hosts[0],
            RuntimeWarning,
            stacklevel=4,
        )


class Context(object):
    """What a request handler gets besides the params.

    ``message`` is the request as read from the file (``id``, ``timestamp``, ``type``,
    ``method``, ``payload``); ``id``, ``method`` and ``params`` are shortcuts.
    """

    def __init__(self, peer, message):
        self._peer = peer
        self.message = message
        self.id = message["id"]
        self.method = message["method"]
        self.params = message.get("payload")
        self._cancel = threading.Event()
        self.cancel_reason = None
        self._lock = threading.Lock()
        self._finished = False
        self._started = False

    @property
    def cancelled(self):
        """True once the requester sent ``task.cancel`` for this request, or the peer closed.

        Reading it also reads the inbox when it changed and nobody else read it (a handler that
        runs on the thread that would otherwise poll still sees a cancel); otherwise it is cheap."""
        if not self._cancel.is_set() and not self._finished:
            self._peer._refresh()
        return self._cancel.is_set()

    def sleep(self, seconds):
        """Waits ``seconds``, returning early when cancelled. Returns ``self.cancelled``."""
        deadline = time.monotonic() + seconds
        watch = self._peer._watch
        while True:
            seen = watch.generation
            if self.cancelled:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # A change of the inbox, a cancel applied by another thread or close() wakes this.
            watch.wait(seen, remaining, busy=True)

    def progress(self, progress, total=None, message=None):
        """Sends a ``task.progress`` event for this request (ignored once it is answered)."""
        payload = {"progressToken": self.id, "progress": _number(progress, "progress")}
        if total is not None:
            payload["total"] = _number(total, "total")
        if message is not None:
            if not isinstance(message, str):
                raise TypeError("message must be a string, not %r" % (message,))
            payload["message"] = message
        if self._finished:
            return
        self._peer._send(self._peer._channel.send_event, PROGRESS_EVENT, payload, tries=1)

    def _mark_cancelled(self, reason):
        with self._lock:
            if self._cancel.is_set():
                return
            self.cancel_reason = reason
            self._cancel.set()
        self._peer._watch.poke()  # wakes a ctx.sleep()

    def __repr__(self):
        return "<Context %s %s%s>" % (self.method, self.id, " cancelled" if self._cancel.is_set() else "")


class _Call(object):
    """A request() waiting for its response."""

    def __init__(self, method):
        self.method = method
        self.items = queue.Queue()


class Peer(object):
    """One end of an ipckit file channel. Create it with :meth:`backend` or :meth:`frontend`.

    Options (keywords of backend()/frontend()):

    ``executor``
        callable taking a zero-argument function and running it where the host wants (for
        example its main thread); default: a pool of ``max_workers`` threads.
    ``on_error``
        called with an exception for non-fatal problems (a bad inbox file or message, a send
        that failed, a raising event handler); default: logged on the ``ipckit_peer`` logger.
    ``heartbeat_interval``
        seconds between acknowledgement heartbeats (default 1.0; readers count a reader as gone
        after 10 s without one).
    ``max_file_bytes``
        a larger inbox is reported and not read (default 64 MiB).
    ``watch``
        True (default): wake on file-system events of the channel directory (inotify on Linux,
        kqueue on macOS, ReadDirectoryChangesW on Windows) instead of polling, re-reading at
        least every 2 s all the same. False, or the environment variable
        ``IPCKIT_PEER_WAKE=poll``: poll (see :meth:`serve`). Where no watcher can be set up the
        peer polls and says so through ``on_error``; :attr:`wake_mode` tells which it does. On a
        network share (NFS, SMB, FUSE, 9P on Linux) the inbox is read at the polling cadence
        whatever the watcher does, and a watcher that keeps missing changes is stopped and
        reported once (a :class:`WatchProblem`, the Node side's ``EWATCH``).

    Requests are never run twice: at open the peer reads its own outbox and skips the requests
    it (or an earlier process of the same role) already answered, and it skips those it answered
    since. A request cancelled (``task.cancel``) before its handler started, for example by a
    cancel later in the same read of the inbox, is not run but answered with the error
    ``cancelled before it started[: <reason>]``, so a requester still waiting learns of it.
    """

    def __init__(
        self,
        channel_dir,
        role,
        executor=None,
        on_error=None,
        max_workers=4,
        heartbeat_interval=1.0,
        max_file_bytes=64 * 1024 * 1024,
        watch=True,
    ):
        if role not in INBOX:
            raise ValueError("role must be 'backend' or 'frontend', not %r" % (role,))
        if heartbeat_interval <= 0 or heartbeat_interval > 10.0 / 3:
            raise ValueError("heartbeat_interval must be in (0, 10/3] seconds")
        if not hasattr(ipckit, "FileChannel"):
            raise ImportError(
                "ipckit %s has no FileChannel here (its native extension is not built for this "
                "Python or platform); install an ipckit wheel with the extension" % getattr(ipckit, "__version__", "?")
            )
        self.dir = os.path.abspath(os.fspath(channel_dir))
        self.role = role
        self._channel = ipckit.FileChannel.backend(self.dir) if role == "backend" else ipckit.FileChannel.frontend(self.dir)
        self._outbox_path = os.path.join(self.dir, OUTBOX[role])
        # A predecessor killed mid-send (a crashed host) may have left its lock file behind.
        clear_abandoned_lock(self._outbox_path)
        self._on_error = on_error
        self._own_pool = None
        if executor is None:
            _warn_if_in_a_host()
            self._own_pool = ThreadPool(max_workers)
            executor = self._own_pool
        elif not callable(executor) and hasattr(executor, "submit"):
            executor = executor.submit  # a concurrent.futures.Executor
        if not callable(executor):
            raise TypeError("executor must be a callable taking a zero-argument function")
        self._executor = executor

        self._handlers = {}
        self._event_handlers = collections.defaultdict(list)
        self._send_lock = threading.Lock()  # the reference FileChannel is used by one thread at a time
        self._ingest_lock = threading.Lock()
        self._dispatch_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._pending = collections.deque()  # ("request", Context) / ("event", message), file order
        self._tasks = {}  # request id -> Context, from reading the request until it is answered
        self._calls = {}  # request id -> _Call of our own request()s
        self._early = collections.OrderedDict()  # request id -> [(kind, message)] not yet claimed
        self._abandoned = collections.OrderedDict()  # request ids request() gave up on
        # Requests already answered: before we opened (our outbox says so) and since.
        self._settled_before = frozenset(settled_request_ids(self._outbox_path))
        self._settled = collections.OrderedDict()
        self._last_ingest = 0.0
        self._closed = False
        self._started = False
        self.dropped_responses = 0
        """Responses that answered no pending request() (late, repeated or unknown)."""
        self.skipped_requests = 0
        """Requests not run because they were already answered (before a restart, or twice)."""

        self._inbox = InboxReader(os.path.join(self.dir, INBOX[role]), self._report, max_file_bytes)
        self._ack = AckPublisher(self._inbox.path, heartbeat_interval)
        self._ack.flush_if_due()  # from now on our writers keep what we have not read
        for pid, host in self._ack.other_live_readers():
            self._report(
                PeerError(
                    "another %s (pid %d on %s) already reads %s: each of you would handle every "
                    "request; run one %s per channel directory" % (role, pid, host, self.dir, role)
                )
            )
        self._heartbeat_stop = threading.Event()
        self._heartbeat_kick = threading.Event()
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="ipckit-peer-heartbeat")
        self._heartbeat.daemon = True
        self._heartbeat.start()
        # Last: nothing after it can fail and leave its thread running. A change before it is
        # not missed: the first read of the inbox reads it all.
        self._watch = InboxWatcher(self.dir, INBOX[role], watch=watch, report=self._report)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def backend(cls, channel_dir, **options):
        """The backend end: reads ``frontend_to_backend.json``, writes ``backend_to_frontend.json``."""
        return cls(channel_dir, "backend", **options)

    @classmethod
    def frontend(cls, channel_dir, **options):
        """The frontend end: reads ``backend_to_frontend.json``, writes ``frontend_to_backend.json``."""
        return cls(channel_dir, "frontend", **options)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- public attributes --------------------------------------------------------------------

    @property
    def closed(self):
        return self._closed

    @property
    def reader_id(self):
        """The 32-hex-digit id in this peer's acknowledgement file name."""
        return self._ack.reader_id

    @property
    def ack_path(self):
        """This peer's acknowledgement file."""
        return self._ack.path

    @property
    def methods(self):
        """The sorted names of the handled methods."""
        return sorted(self._handlers)

    @property
    def wake_mode(self):
        """How this peer learns that its inbox changed: ``"inotify"``, ``"kqueue"``,
        ``"windows"`` (ReadDirectoryChangesW) or ``"poll"`` (no watcher, or it was lost)."""
        return self._watch.mode

    # -- registration -------------------------------------------------------------------------

    def handle(self, method, fn=None):
        """Registers ``fn(params, ctx)`` for requests of ``method``; usable as a decorator.

        The return value becomes the response, an exception an error response with its text.
        Registering after start() announces the new method list again."""
        if not isinstance(method, str):
            raise TypeError("method must be a string")

        def register(handler):
            with self._state_lock:
                self._handlers[method] = handler
                announce = self._started and not self._closed
            if announce:
                self._announce()
            return handler

        return register if fn is None else register(fn)

    def on_event(self, name, fn=None):
        """Registers ``fn(payload, message)`` for events ``name`` (``"*"``: every event);
        usable as a decorator. Called on the thread that polls, in file order, each once."""
        if not isinstance(name, str):
            raise TypeError("event name must be a string")

        def register(handler):
            with self._state_lock:
                self._event_handlers[name].append(handler)
            return handler

        return register if fn is None else register(fn)

    # -- running ------------------------------------------------------------------------------

    def start(self):
        """Announces this peer (``backend_ready`` / ``frontend_ready``), once. poll(), serve()
        and request() call it."""
        with self._state_lock:
            if self._started or self._closed:
                return
            self._started = True
        self._announce()

    def _announce(self):
        payload = {"available_methods": self.methods, "pid": os.getpid(), "host": socket.gethostname()}
        self._send(self._channel.send_event, self.role + "_ready", payload)

    def serve(self, poll_interval=0.005):
        """Reads and dispatches until close() (from another thread or a handler). Blocks the
        calling thread.

        It sleeps until the inbox changes (see ``watch``), re-reading at least every 2 s.
        ``poll_interval`` is the polling cadence where the peer polls (:attr:`wake_mode`
        ``"poll"``): every ``poll_interval`` seconds while requests are in flight or messages
        came lately, backing off to 0.1 s (or ``poll_interval`` if longer) when idle."""
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._watch.poll_interval = poll_interval
        self.start()
        while not self._closed:
            seen = self._watch.generation
            if not self.poll():
                self._watch.wait(seen, busy=self._busy())

    def poll(self):
        """Reads the inbox once and dispatches what arrived: events to their handlers (on this
        thread), requests to the executor. Returns how many messages were dispatched."""
        if self._closed:
            return 0
        self.start()
        self._ingest()
        return self._dispatch()

    def close(self):
        """Sends ``backend_shutdown`` / ``frontend_shutdown``, removes the acknowledgement file,
        cancels running handlers (their responses are not sent) and fails waiting request()s
        with PeerClosed. Idempotent."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            tasks = list(self._tasks.values())
            calls = list(self._calls.values())
        self._watch.poke()
        self._heartbeat_stop.set()
        self._heartbeat_kick.set()
        for ctx in tasks:
            ctx._mark_cancelled("closed")
        for call in calls:
            call.items.put(("closed", None))
        self._send(self._channel.send_event, self.role + "_shutdown", {"pid": os.getpid()})
        if self._heartbeat is not threading.current_thread():
            self._heartbeat.join(2.0)
        self._ack.remove()
        self._watch.close()
        if self._own_pool is not None:
            self._own_pool.shutdown(wait=False)

    # -- reading ------------------------------------------------------------------------------

    def _busy(self):
        """Requests in flight (ours or theirs): polling stays at its fast cadence."""
        return bool(self._tasks or self._calls)

    def _refresh(self):
        """Reads the inbox when it changed, or nobody has read it for a watcher's (or the poll)
        period; from ctx.cancelled and request() waits, which may run while nobody serves."""
        if self._closed:
            return
        if self._watch.hint_pending() or time.monotonic() - self._last_ingest >= self._watch.period(self._busy()):
            self._ingest(blocking=False)

    def _ingest(self, blocking=True):
        """Reads the inbox; applies cancels, responses and progress at once; queues the rest."""
        if not self._ingest_lock.acquire(blocking):
            return 0
        try:
            self._last_ingest = time.monotonic()
            watch = self._watch
            hinted = watch.take_hint()
            if watch.reads_content:
                # A share: cached attributes may hide a new version, so the content is read on
                # every poll (and a cut-off copy read again), never only when stat() changed.
                fresh = self._inbox.read_new(hinted, 0.0, fresh=True)
            else:
                full_read_period = WATCHED_FULL_READ_PERIOD if watch.alive else FULL_READ_PERIOD
                fresh = self._inbox.read_new(hinted, full_read_period)
            # Messages the watcher did not announce, again and again: it falls back to polling.
            watch.note_read(bool(fresh), hinted)
            for message in fresh:
                self._accept(message)
            if fresh:
                self._watch.note_activity()
                self._ack.note_consumed(self._inbox.last_id)
                if not self._ack.flush_if_due():
                    self._heartbeat_kick.set()  # the heartbeat thread writes it within 20 ms
            return len(fresh)
        finally:
            self._ingest_lock.release()
            if self._watch.hint_pending():
                # The inbox changed while we read it, and a waiter whose own read found us busy
                # may be asleep on it: wake the waiters to read again.
                self._watch.poke()

    def _accept(self, message):
        kind = message["type"]
        if kind == "request":
            with self._state_lock:
                if message["id"] in self._settled_before or message["id"] in self._settled:
                    # Answered already (before a restart, or the id came again): never run twice.
                    self.skipped_requests += 1
                    log.debug("request %s (%s) was answered before; not run again", message["id"], message["method"])
                    return
                ctx = Context(self, message)
                self._tasks[ctx.id] = ctx
                self._pending.append(("request", ctx))
            return
        if kind == "response":
            self._route(message["reply_to"], "response", message)
            return
        method = message["method"]
        payload = message.get("payload")
        if method == CANCEL_EVENT and isinstance(payload, dict):
            request_id = payload.get("requestId")
            with self._state_lock:
                ctx = self._tasks.get(request_id) if isinstance(request_id, str) else None
            if ctx is not None:
                reason = payload.get("reason")
                ctx._mark_cancelled(reason if isinstance(reason, str) else None)
        elif method == PROGRESS_EVENT and isinstance(payload, dict):
            token = payload.get("progressToken")
            if isinstance(token, str):
                self._route(token, "progress", message)
        with self._state_lock:
            wanted = method in self._event_handlers or "*" in self._event_handlers
            if wanted or method not in (CANCEL_EVENT, PROGRESS_EVENT):
                self._pending.append(("event", message))

    def _route(self, request_id, kind, message):
        with self._state_lock:
            call = self._calls.get(request_id)
            if call is not None:
                call.items.put((kind, message))
                self._watch.poke()  # its request() may wait on the watcher, not the queue
                return
            if request_id in self._abandoned:
                if kind == "response":
                    self.dropped_responses += 1
                return
            if kind == "response":
                # Not (yet) a request of ours: counted as dropped unless request() claims it.
                self.dropped_responses += 1
            self._early.setdefault(request_id, []).append((kind, message))
            while len(self._early) > _MAX_EARLY:
                self._early.popitem(last=False)

    def _dispatch(self):
        # One thread dispatches at a time, and it drains the queue; another thread that finds it
        # busy leaves the queue to it rather than wait (the dispatching thread may be blocked in
        # an executor that waits for the host's main thread, which may be the one calling here).
        if not self._dispatch_lock.acquire(False):
            return 0
        count = 0
        try:
            while True:
                with self._state_lock:
                    if not self._pending or self._closed:
                        return count
                    kind, item = self._pending.popleft()
                    handlers = None
                    if kind == "event":
                        handlers = list(self._event_handlers.get(item["method"], ()))
                        handlers += self._event_handlers.get("*", ())
                count += 1
                if kind == "request":
                    self._start(item)
                else:
                    for handler in handlers:
                        try:
                            handler(item.get("payload"), item)
                        except Exception as error:
                            self._report(
                                PeerError("the handler of event %r raised: %s" % (item["method"], _error_text(error)))
                            )
        finally:
            self._dispatch_lock.release()

    # -- answering ----------------------------------------------------------------------------

    def _start(self, ctx):
        with self._state_lock:
            handler = self._handlers.get(ctx.method)
        if handler is None:
            self._finish(ctx, error="unknown method: %s" % ctx.method)
            return

        def job():
            # A cancel read with the request (later in the same read) or since it was queued.
            if ctx._cancel.is_set():
                self._finish(ctx, error="cancelled before it started" + (": " + ctx.cancel_reason if ctx.cancel_reason else ""))
                return
            ctx._started = True
            try:
                result = handler(ctx.params, ctx)
            except Exception as error:
                log.debug("handler of %r raised", ctx.method, exc_info=True)
                self._finish(ctx, error=_error_text(error))
            except BaseException as error:
                self._finish(ctx, error=_error_text(error))
                raise
            else:
                self._finish(ctx, result=result)

        try:
            self._executor(job)
        except Exception as error:
            self._finish(ctx, error="the executor refused the request: %s" % _error_text(error))

    def _finish(self, ctx, result=None, error=None):
        with ctx._lock:
            if ctx._finished:
                return
            ctx._finished = True
        with self._state_lock:
            self._tasks.pop(ctx.id, None)
            self._settled[ctx.id] = True
            while len(self._settled) > _MAX_SETTLED:
                self._settled.popitem(last=False)
            closed = self._closed
        if closed:
            return  # we announced our shutdown: the requester has given up on us
        if error is None:
            try:
                self._send(self._channel.send_response, ctx.id, _jsonable(result), raise_bad_value=True)
                return
            except (TypeError, ValueError, RecursionError) as bad:
                error = "the result of %r could not be sent: %s" % (ctx.method, _error_text(bad))
        self._send(self._channel.send_error, ctx.id, error)

    # -- requesting ---------------------------------------------------------------------------

    def request(self, method, params=None, timeout=5.0, on_progress=None):
        """Calls ``method`` on the other side and returns its result.

        Raises RemoteError (an error response), RequestTimeout (nothing within ``timeout``
        seconds; None waits forever; the other side is sent ``task.cancel``), PeerClosed.
        ``on_progress(update)`` gets each ``{"progress", "total"?, "message"?}`` in order, on
        this thread."""
        if self._closed:
            raise PeerClosed("the peer is closed")
        self.start()
        call = _Call(method)
        request_id = self._send(self._channel.send_request, method, _jsonable(params), raise_all=True)
        with self._state_lock:
            early = self._early.pop(request_id, ())
            self._calls[request_id] = call
            closed = self._closed
            for kind, message in early:
                if kind == "response":
                    self.dropped_responses -= 1  # counted when it arrived unclaimed
                call.items.put((kind, message))
        if closed:
            call.items.put(("closed", None))
        deadline = None if timeout is None else time.monotonic() + timeout
        answered = False
        try:
            while True:
                seen = self._watch.generation
                try:
                    kind, message = call.items.get_nowait()
                except queue.Empty:
                    remaining = None
                    if deadline is not None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise RequestTimeout(method, request_id, timeout)
                    self._refresh()
                    if call.items.empty():
                        # Woken by a change of the inbox, a response routed by another thread
                        # (serve()), or close(); at the latest after the watcher's period.
                        self._watch.wait(seen, remaining, busy=True)
                    continue
                if kind == "closed":
                    raise PeerClosed("the peer was closed while request %r (id %s) waited" % (method, request_id))
                if kind == "progress":
                    if on_progress is not None:
                        update = dict((k, v) for k, v in message["payload"].items() if k != "progressToken")
                        try:
                            on_progress(update)
                        except Exception as error:
                            self._report(PeerError("on_progress of %r raised: %s" % (method, _error_text(error))))
                    continue
                answered = True
                if message.get("error") is not None:
                    raise RemoteError(method, request_id, message["error"])
                return message.get("payload")
        finally:
            with self._state_lock:
                self._calls.pop(request_id, None)
                if not answered:
                    self._abandoned[request_id] = True
                    while len(self._abandoned) > _MAX_ABANDONED:
                        self._abandoned.popitem(last=False)
                closed = self._closed
            if not answered and not closed:
                self.cancel(request_id, "timeout" if deadline is not None and time.monotonic() >= deadline else "abandoned")

    def cancel(self, request_id, reason=None):
        """Sends ``task.cancel`` for one of our requests (request() does this when it gives up)."""
        payload = {"requestId": request_id}
        if reason is not None:
            payload["reason"] = reason
        self._send(self._channel.send_event, CANCEL_EVENT, payload, tries=1)

    def send_event(self, name, payload=None):
        """Sends an event to the other side."""
        if self._closed:
            raise PeerClosed("the peer is closed")
        self._send(self._channel.send_event, name, _jsonable(payload), raise_all=True)

    # -- plumbing -----------------------------------------------------------------------------

    def _send(self, fn, *args, **options):
        """Calls a reference send method under our lock; tries again when the outbox lock was
        busy. A value the writer refuses raises (TypeError/ValueError) when ``raise_bad_value``;
        with ``raise_all`` every failure raises; otherwise failures are reported."""
        tries = options.get("tries", _SEND_TRIES)
        raise_all = options.get("raise_all", False)
        raise_bad_value = options.get("raise_bad_value", False) or raise_all
        for attempt in range(tries):
            try:
                with self._send_lock:
                    return fn(*args)
            except (TypeError, ValueError) as error:
                if raise_bad_value:
                    raise
                self._report(PeerError("%s refused %r: %s" % (fn.__name__, args[0], _error_text(error))))
                return None
            except Exception as error:
                if attempt + 1 < tries:
                    # A lock file whose writer died: taken over now, not after the reference's 5 s.
                    clear_abandoned_lock(self._outbox_path)
                    continue
                if raise_all:
                    raise
                self._report(PeerError("%s(%r) failed: %s" % (fn.__name__, args[0], _error_text(error))))
                return None

    def _report(self, error):
        if self._on_error is not None:
            try:
                self._on_error(error)
                return
            except Exception:
                log.exception("on_error raised")
        log.warning("%s", error)

    def _heartbeat_loop(self):
        retry = min(self._ack.heartbeat / 2, 0.5)
        failed = False
        while not self._heartbeat_stop.is_set():
            # Sleeps until a write is due (a moved position: INTERVAL after the last write; else
            # the heartbeat) or a kick, so an idle peer wakes once per heartbeat.
            delay = self._ack.seconds_until_due()
            self._heartbeat_kick.wait(max(delay, retry) if failed else delay)
            self._heartbeat_kick.clear()
            if self._heartbeat_stop.is_set():
                return
            try:
                self._ack.flush_if_due()
                failed = False
            except OSError as error:
                failed = True
                self._report(PeerError("cannot write %s: %s" % (self._ack.path, error)))
