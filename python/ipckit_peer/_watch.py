"""Waking a Peer when its inbox changes, instead of polling it every few milliseconds.

An :class:`InboxWatcher` watches the channel DIRECTORY (writers replace the inbox by renaming
``<stem>.tmp`` over it, so a watch on the file itself would be lost at the first message) with
what the OS offers, from the standard library alone:

- Linux: inotify through ``ctypes`` (``IN_MOVED_TO`` for a rename over the inbox,
  ``IN_CLOSE_WRITE`` for a writer that rewrites it in place, like the reference ``clear()``);
- macOS and the BSDs: ``select.kqueue`` on the directory (``NOTE_WRITE``: an entry was added,
  removed or renamed) and on the inbox file itself (written in place);
- Windows: ``ReadDirectoryChangesW`` through ``ctypes``, overlapped, on a thread that also waits
  for a stop event, so that closing never waits for the next change.

A thread blocks on that source and, when the inbox changed, bumps a generation counter and wakes
every waiter. Changes of other files in the directory (our own outbox writes, lock files,
acknowledgement files) are filtered out by name (by a stat of the inbox on kqueue, which reports
no names), so our own writes cost a wake-up of that thread, never a read of the inbox.

Events are only hints: a waiter always reads the file itself, and the reader delivers each message
once by id, so a spurious or duplicated event costs one read. Waiters also re-read at least every
SAFETY_PERIOD seconds, so a watcher that stays silent (a network share, an overflowing queue)
never loses a message. Where no watcher can be set up (no inotify instance left, an exotic file
system, an unknown OS) or when it is disabled (``watch=False``, ``IPCKIT_PEER_WAKE=poll``), the
waiters poll instead: every ``poll_interval`` right after activity, backing off to IDLE_POLL when
nothing happens.

Network shares (issue 22; the rules live in is_remote_file_system() and fresh_size()): on a
network or cluster file system (Linux: NFS, SMB, FUSE, 9P...) writers on other hosts or mounts
make no local events and ``stat()`` answers from a cache, so the waiters poll at the polling
cadence whatever the watcher does (it still wakes them for this machine's writers) and the inbox
content is read on every poll. A watcher that keeps missing changes (MISSES_BEFORE_FALLBACK reads
in a row found messages it had not announced) is stopped and reported once; the peer then polls,
reading the content every time, as on a share.
"""

import errno
import os
import struct
import sys
import threading
import time

# Set to "poll" to disable the watcher of every Peer of this process (benchmarks, tests, a file
# system whose change events cannot be trusted).
WAKE_ENV = "IPCKIT_PEER_WAKE"

# A waiter reads the inbox at least this often even when no event came (a silent watcher): a
# stat(), and the whole file when that changed or WATCHED_FULL_READ_PERIOD passed (_inbox.py).
SAFETY_PERIOD = 2.0
# Polling without a watcher backs off to this period when nothing happens...
IDLE_POLL = 0.1
# ...reaching it after (IDLE_POLL * BACKOFF_FACTOR) s without activity.
BACKOFF_FACTOR = 8

# Reads in a row that find messages the watcher did not announce before it is taken for silent
# (the Node side's EWATCH rule): a local writer's event may lag a poll once, never three times.
MISSES_BEFORE_FALLBACK = 3

# What a source's wait_events() reports.
_INBOX = "inbox"  # the inbox (probably) changed, or events were lost: read it
_OTHER = "other"  # something else in the directory changed
_STOP = "stop"  # close() interrupted the wait
_LOST = "lost"  # the watch is gone (directory deleted or unmounted)


class WatchUnavailable(OSError):
    """The OS mechanism cannot be used here; the watcher polls instead."""


# -- Linux: inotify ---------------------------------------------------------------------------

_IN_MODIFY = 0x00000002
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_UNMOUNT = 0x00002000
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_ONLYDIR = 0x01000000
_IN_EXCL_UNLINK = 0x04000000
_INOTIFY_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


def parse_inotify_events(data):
    """``[(mask, name)]`` of a buffer of ``struct inotify_event`` records (name as bytes)."""
    events = []
    offset = 0
    while offset + _INOTIFY_EVENT.size <= len(data):
        _wd, mask, _cookie, length = _INOTIFY_EVENT.unpack_from(data, offset)
        start = offset + _INOTIFY_EVENT.size
        events.append((mask, data[start : start + length].rstrip(b"\0")))
        offset = start + length
    return events


class _InotifySource(object):
    mode = "inotify"

    def __init__(self, directory, name):
        import ctypes
        import select

        libc = ctypes.CDLL(None, use_errno=True)
        try:
            init1 = libc.inotify_init1
            add_watch = libc.inotify_add_watch
        except AttributeError:
            raise WatchUnavailable(errno.ENOSYS, "this C library has no inotify")
        init1.argtypes = [ctypes.c_int]
        init1.restype = ctypes.c_int
        add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        add_watch.restype = ctypes.c_int
        self._name = os.fsencode(name)
        self._fd = init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            code = ctypes.get_errno()
            raise WatchUnavailable(code, "inotify_init1: %s" % os.strerror(code))
        self._stop_r = self._stop_w = None
        try:
            mask = _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_ONLYDIR | _IN_EXCL_UNLINK
            if add_watch(self._fd, os.fsencode(directory), mask) < 0:
                code = ctypes.get_errno()
                raise WatchUnavailable(code, "inotify_add_watch %s: %s" % (directory, os.strerror(code)))
            self._stop_r, self._stop_w = os.pipe()
            self._poller = select.poll()
            self._poller.register(self._fd, select.POLLIN)
            self._poller.register(self._stop_r, select.POLLIN)
        except BaseException:
            self.close()
            raise

    def wait_events(self):
        ready = [fd for fd, _ in self._poller.poll()]  # no timeout: close() writes to the stop pipe
        if self._stop_r in ready:
            return _STOP
        outcome = _OTHER
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return outcome
            for mask, name in parse_inotify_events(data):
                if mask & (_IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_UNMOUNT):
                    return _LOST
                if mask & _IN_Q_OVERFLOW or name == self._name:
                    outcome = _INBOX

    def interrupt(self):
        os.write(self._stop_w, b"x")

    def close(self):
        for fd in (self._fd, self._stop_r, self._stop_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fd = self._stop_r = self._stop_w = None


# -- macOS / BSD: kqueue ----------------------------------------------------------------------


class _KqueueSource(object):
    mode = "kqueue"

    def __init__(self, directory, name):
        import select

        self._select = select
        self._inbox = os.path.join(directory, name)
        self._kq = select.kqueue()
        self._dir_fd = self._file_fd = self._stop_r = self._stop_w = None
        self._open_flags = getattr(os, "O_EVTONLY", os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)
        try:
            self._dir_fd = os.open(directory, self._open_flags)
            self._stop_r, self._stop_w = os.pipe()
            self._register(self._dir_fd, select.KQ_NOTE_WRITE | select.KQ_NOTE_DELETE | select.KQ_NOTE_RENAME)
            self._kq.control([select.kevent(self._stop_r, select.KQ_FILTER_READ, select.KQ_EV_ADD)], 0, 0)
            self._signature = None
            self._watch_inbox()
        except BaseException:
            self.close()
            raise

    def _register(self, fd, fflags):
        s = self._select
        event = s.kevent(fd, s.KQ_FILTER_VNODE, s.KQ_EV_ADD | s.KQ_EV_CLEAR, fflags)
        self._kq.control([event], 0, 0)

    def _watch_inbox(self):
        """(Re)opens the inbox for in-place writes; True when the inbox differs from last time."""
        s = self._select
        try:
            st = os.stat(self._inbox)
        except OSError:
            st = None
        signature = None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns)
        changed = signature != self._signature
        if st is not None and (self._signature is None or st.st_ino != self._signature[0] or self._file_fd is None):
            if self._file_fd is not None:
                os.close(self._file_fd)  # its kevent goes with it
                self._file_fd = None
            try:
                self._file_fd = os.open(self._inbox, self._open_flags)
                self._register(self._file_fd, s.KQ_NOTE_WRITE | s.KQ_NOTE_EXTEND | s.KQ_NOTE_DELETE | s.KQ_NOTE_RENAME)
            except OSError:
                self._file_fd = None  # replaced meanwhile: the directory event of that comes next
        self._signature = signature
        return changed

    def wait_events(self):
        s = self._select
        outcome = _OTHER
        for event in self._kq.control(None, 16, None):
            if event.ident == self._stop_r:
                return _STOP
            if event.ident == self._dir_fd and event.fflags & (s.KQ_NOTE_DELETE | s.KQ_NOTE_RENAME):
                return _LOST
            if event.ident == self._file_fd:
                outcome = _INBOX
        # The directory event names no file: compare the inbox with what it was.
        if self._watch_inbox():
            outcome = _INBOX
        return outcome

    def interrupt(self):
        os.write(self._stop_w, b"x")

    def close(self):
        for fd in (self._file_fd, self._dir_fd, self._stop_r, self._stop_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._file_fd = self._dir_fd = self._stop_r = self._stop_w = None
        try:
            self._kq.close()
        except OSError:
            pass


# -- Windows: ReadDirectoryChangesW -----------------------------------------------------------

_FILE_NOTIFY_INFORMATION = struct.Struct("<III")  # NextEntryOffset, Action, FileNameLength
_FILE_ACTION_ADDED = 1
_FILE_ACTION_MODIFIED = 3
_FILE_ACTION_RENAMED_NEW_NAME = 5


def parse_file_notify_information(data):
    """``[(action, name)]`` of a buffer of ``FILE_NOTIFY_INFORMATION`` records."""
    events = []
    offset = 0
    while offset + _FILE_NOTIFY_INFORMATION.size <= len(data):
        following, action, length = _FILE_NOTIFY_INFORMATION.unpack_from(data, offset)
        start = offset + _FILE_NOTIFY_INFORMATION.size
        events.append((action, data[start : start + length].decode("utf-16-le", "replace")))
        if following == 0:
            break
        offset += following
    return events


class _WindowsSource(object):  # pragma: no cover - exercised on Windows only
    mode = "windows"

    _BUFFER_BYTES = 32 * 1024  # at most 64 KB on network shares

    def __init__(self, directory, name):
        import ctypes
        from ctypes import wintypes

        class OVERLAPPED(ctypes.Structure):
            _fields_ = [
                ("Internal", ctypes.c_size_t),
                ("InternalHigh", ctypes.c_size_t),
                ("Offset", wintypes.DWORD),
                ("OffsetHigh", wintypes.DWORD),
                ("hEvent", wintypes.HANDLE),
            ]

        from ._win32 import kernel32 as k32  # CreateFileW and CloseHandle declared there

        self._ctypes = ctypes
        self._k32 = k32
        self._wintypes = wintypes
        k32.CreateEventW.argtypes = [wintypes.LPVOID, wintypes.BOOL, wintypes.BOOL, wintypes.LPCWSTR]
        k32.CreateEventW.restype = wintypes.HANDLE
        k32.ReadDirectoryChangesW.argtypes = [
            wintypes.HANDLE,
            wintypes.LPVOID,
            wintypes.DWORD,
            wintypes.BOOL,
            wintypes.DWORD,
            ctypes.POINTER(wintypes.DWORD),
            ctypes.POINTER(OVERLAPPED),
            wintypes.LPVOID,
        ]
        k32.ReadDirectoryChangesW.restype = wintypes.BOOL
        k32.WaitForMultipleObjects.argtypes = [
            wintypes.DWORD,
            ctypes.POINTER(wintypes.HANDLE),
            wintypes.BOOL,
            wintypes.DWORD,
        ]
        k32.WaitForMultipleObjects.restype = wintypes.DWORD
        k32.GetOverlappedResult.argtypes = [
            wintypes.HANDLE,
            ctypes.POINTER(OVERLAPPED),
            ctypes.POINTER(wintypes.DWORD),
            wintypes.BOOL,
        ]
        k32.GetOverlappedResult.restype = wintypes.BOOL
        k32.CancelIoEx.argtypes = [wintypes.HANDLE, ctypes.POINTER(OVERLAPPED)]
        k32.CancelIoEx.restype = wintypes.BOOL
        for fn in (k32.SetEvent, k32.ResetEvent, k32.CloseHandle):
            fn.argtypes = [wintypes.HANDLE]
            fn.restype = wintypes.BOOL

        invalid = wintypes.HANDLE(-1).value
        self._name = name.lower()  # NTFS names compare without case
        self._pending = False
        self._dir = self._event = self._stop = None
        file_list_directory = 0x0001
        share_all = 0x1 | 0x2 | 0x4
        open_existing = 3
        backup_semantics_overlapped = 0x02000000 | 0x40000000
        try:
            handle = k32.CreateFileW(
                directory, file_list_directory, share_all, None, open_existing, backup_semantics_overlapped, None
            )
            if not handle or handle == invalid:
                self._fail("CreateFileW %s" % directory)
            self._dir = handle
            self._event = k32.CreateEventW(None, True, False, None) or self._fail("CreateEventW")
            self._stop = k32.CreateEventW(None, True, False, None) or self._fail("CreateEventW")
            self._overlapped = OVERLAPPED()
            self._overlapped.hEvent = self._event
            self._buffer = ctypes.create_string_buffer(self._BUFFER_BYTES)
            self._handles = (wintypes.HANDLE * 2)(self._event, self._stop)
            self._arm()  # changes are queued by the system from now on
        except BaseException:
            self.close()
            raise

    def _fail(self, what):
        code = self._ctypes.get_last_error()
        raise WatchUnavailable(None, "%s: %s" % (what, self._ctypes.FormatError(code)), None, code)

    def _arm(self):
        k32 = self._k32
        k32.ResetEvent(self._event)
        changes = 0x1 | 0x8 | 0x10  # FILE_NAME, SIZE, LAST_WRITE
        ok = k32.ReadDirectoryChangesW(
            self._dir,
            self._buffer,
            self._BUFFER_BYTES,
            False,
            changes,
            None,
            self._ctypes.byref(self._overlapped),
            None,
        )
        if not ok:
            self._fail("ReadDirectoryChangesW")  # e.g. a share that cannot notify
        self._pending = True

    def wait_events(self):
        k32 = self._k32
        infinite = 0xFFFFFFFF
        which = k32.WaitForMultipleObjects(2, self._handles, False, infinite)
        if which == 1:  # the stop event
            return _STOP
        if which != 0:
            self._fail("WaitForMultipleObjects")  # the watcher's thread falls back to polling
        count = self._wintypes.DWORD(0)
        ok = k32.GetOverlappedResult(self._dir, self._ctypes.byref(self._overlapped), self._ctypes.byref(count), False)
        self._pending = False
        if not ok:
            return _LOST  # e.g. ERROR_ACCESS_DENIED: the directory was deleted
        data = self._buffer.raw[: count.value]
        self._arm()
        if count.value == 0:
            return _INBOX  # the system's buffer overflowed: changes were lost
        for action, name in parse_file_notify_information(data):
            if action in (_FILE_ACTION_ADDED, _FILE_ACTION_MODIFIED, _FILE_ACTION_RENAMED_NEW_NAME):
                if name.lower() == self._name:
                    return _INBOX
        return _OTHER

    def interrupt(self):
        self._k32.SetEvent(self._stop)

    def close(self):
        k32 = self._k32
        if self._pending and self._dir:
            # The system writes into our buffer until the read is cancelled and has completed.
            k32.CancelIoEx(self._dir, self._ctypes.byref(self._overlapped))
            count = self._wintypes.DWORD(0)
            k32.GetOverlappedResult(self._dir, self._ctypes.byref(self._overlapped), self._ctypes.byref(count), True)
            self._pending = False
        for handle in (self._dir, self._event, self._stop):
            if handle:
                k32.CloseHandle(handle)
        self._dir = self._event = self._stop = None


# statfs() f_type of the file systems whose changes may come from other hosts, which no local
# watcher sees (the Node core's list): NFS, SMB, CIFS, SMB2, FUSE (sshfs...), Coda, AFS, Ceph, 9P
# (WSL's Windows drives), GFS2, OCFS2, Lustre.
_REMOTE_FILE_SYSTEMS = frozenset(
    [
        0x6969,
        0x517B,
        0xFF534D42,
        0xFE534D42,
        0x65735546,
        0x73757245,
        0x5346414F,
        0x00C36400,
        0x01021997,
        0x01161970,
        0x7461636F,
        0x0BD00BD0,
    ]
)


def is_remote_file_system(directory):
    """True when ``directory`` is on a network or cluster file system (Linux; elsewhere False:
    there the watcher is tried, and a silent one is covered by the safety re-reads)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        statfs = libc.statfs
        statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        statfs.restype = ctypes.c_int
        buffer = ctypes.create_string_buffer(512)  # larger than any struct statfs
        if statfs(os.fsencode(directory), buffer) != 0:
            return False
        # f_type is the first field, a long (an int on 32-bit targets).
        magic = ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF
    except (AttributeError, OSError, ValueError):
        return False
    return magic in _REMOTE_FILE_SYSTEMS


_AT_EMPTY_PATH = 0x1000
_AT_STATX_FORCE_SYNC = 0x2000
_STATX_SIZE = 0x200
_STATX_SIZE_OFFSET = 40  # struct statx: stx_size (u64) follows mask, blksize, attributes, nlink, uid, gid, mode, ino
_statx = None


def fresh_size(fd):
    """The size of the open file ``fd`` as the file system has it now, not as a cache remembers it.

    A share's client (FUSE, NFS, SMB) keeps a file's size for up to its attribute timeout, and a
    read through it stops at that size: a file rewritten through another mount or machine comes
    back cut off. Linux: ``statx(AT_STATX_FORCE_SYNC)`` asks the server and refreshes the cached
    size, so the read that follows sees the whole file; a read still shorter than this size is cut
    off and must be read again. Elsewhere (or without statx): ``fstat()``."""
    global _statx
    if _statx is None:
        _statx = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                fn = ctypes.CDLL(None, use_errno=True).statx
                fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
                fn.restype = ctypes.c_int
                _statx = fn
            except (AttributeError, OSError):  # a C library without statx (glibc < 2.28)
                pass
    if _statx:
        import ctypes

        buffer = ctypes.create_string_buffer(256)  # sizeof(struct statx)
        if _statx(fd, b"", _AT_EMPTY_PATH | _AT_STATX_FORCE_SYNC, _STATX_SIZE, buffer) == 0:
            return ctypes.c_uint64.from_buffer(buffer, _STATX_SIZE_OFFSET).value
    return os.fstat(fd).st_size


def _source_class():
    if sys.platform.startswith("linux"):
        return _InotifySource
    if os.name == "nt":
        return _WindowsSource
    import select

    if hasattr(select, "kqueue"):
        return _KqueueSource
    return None


# -- the watcher ------------------------------------------------------------------------------


class InboxWatcher(object):
    """Wakes waiters when the inbox ``name`` in ``directory`` changes; see the module docstring.

    ``mode`` is ``"inotify"``, ``"kqueue"``, ``"windows"`` or ``"poll"`` (no watcher). ``watch``
    False (or ``IPCKIT_PEER_WAKE=poll``) forces ``"poll"``. ``report(error)`` is told when a watcher
    cannot be set up or is lost; it is called on the watcher's thread or the creating one.

    Waiting: take ``seen = watcher.generation``, do the work (read the inbox), then
    ``wait(seen, timeout)``: it returns at once when anything happened since ``seen``.
    """

    def __init__(self, directory, name, watch=True, report=None, poll_interval=0.005):
        self.directory = directory
        self.name = name
        self.poll_interval = poll_interval
        self._report = report
        self._cond = threading.Condition(threading.Lock())
        self._generation = 0
        self._hint = False
        self._last_activity = time.monotonic()
        self._closed = False
        self._source = None
        self._thread = None
        self._missed = 0
        # A share (see the module docstring): polled at the polling cadence, content read each time.
        self.remote = is_remote_file_system(directory)
        # The watcher missed changes and was stopped: this file system is treated like a share.
        self.silent = False
        self.mode = "poll"
        if not watch or os.environ.get(WAKE_ENV, "").strip().lower() == "poll":
            return
        cls = _source_class()
        if cls is None:
            self._tell("no file watcher on this platform (%s); polling the inbox instead" % sys.platform)
            return
        try:
            self._source = cls(directory, name)
        except Exception as error:  # WatchUnavailable, OSError (ENOSPC, EMFILE), a ctypes failure
            self._tell("cannot watch %s (%s); polling the inbox instead" % (directory, error))
            return
        self.mode = self._source.mode
        self._thread = threading.Thread(target=self._run, name="ipckit-peer-watch")
        self._thread.daemon = True
        self._thread.start()

    def _tell(self, text):
        if self._report is not None:
            from .errors import WatchProblem

            self._report(WatchProblem(text))

    @property
    def generation(self):
        return self._generation

    @property
    def reads_content(self):
        """True where cached attributes cannot be trusted (a share, or a watcher found silent):
        every poll reads the inbox's content, its size asked afresh (fresh_size)."""
        return self.remote or self.silent

    def note_read(self, found, hinted):
        """After a read of the inbox that ``found`` new messages or not, ``hinted`` whether the
        watcher had announced a change. MISSES_BEFORE_FALLBACK reads in a row that found messages
        it had not announced: it does not see this file system's writers (a share written from
        another machine or mount, an undetected one included): stop it, poll, say so once."""
        if self.mode == "poll" or not found:
            return
        if hinted:
            self._missed = 0
            return
        self._missed += 1
        if self._missed < MISSES_BEFORE_FALLBACK:
            return
        self.silent = True
        self._stop_source()
        self._tell(
            "the watcher of %s missed %d changes in a row (the file system may not report changes, "
            "e.g. a network share written from another machine); polling the inbox instead"
            % (self.directory, self._missed)
        )

    @property
    def alive(self):
        """True while an OS watcher (not polling) wakes the waiters."""
        return self.mode != "poll"

    def take_hint(self):
        """True (once) when the inbox changed since the last call: read it even if its stat() looks
        the same (a replaced file may get the old one's inode, size and coarse mtime)."""
        with self._cond:
            hint, self._hint = self._hint, False
            return hint

    def hint_pending(self):
        return self._hint

    def poke(self):
        """Wakes every waiter (something besides the inbox changed: a response was routed, the
        peer closes)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def note_activity(self):
        """Messages came or went: polling stays at its fast cadence for a while."""
        self._last_activity = time.monotonic()

    def period(self, busy=False):
        """How long a waiter may sleep without an event before it reads the inbox anyway.

        With an OS watcher: SAFETY_PERIOD, except on a share (writers elsewhere raise no event).
        Polling: ``poll_interval`` while ``busy`` (requests in flight either way) or right after
        activity, growing with the time since to IDLE_POLL (or ``poll_interval`` if longer)."""
        if self.mode != "poll" and not self.remote:
            return SAFETY_PERIOD
        fast = self.poll_interval
        if busy:
            return fast
        idle = time.monotonic() - self._last_activity
        return min(max(IDLE_POLL, fast), max(fast, idle / BACKOFF_FACTOR))

    def wait(self, seen, timeout=None, busy=False):
        """Blocks until the generation differs from ``seen``, ``timeout`` seconds pass (None: no
        limit of the caller's) or period() runs out. True when the generation moved."""
        limit = self.period(busy)
        if timeout is not None:
            limit = min(limit, max(timeout, 0.0))
        with self._cond:
            if self._generation == seen and limit > 0:
                self._cond.wait(limit)
            return self._generation != seen

    def _signal(self, hint):
        with self._cond:
            if hint:
                self._hint = True
            self._generation += 1
            self._cond.notify_all()

    def _run(self):
        source = self._source
        try:
            while True:
                outcome = source.wait_events()
                if outcome == _STOP or self._closed:
                    return
                if outcome == _INBOX:
                    self.note_activity()
                    self._signal(True)
                elif outcome == _LOST:
                    self.mode = "poll"
                    self._tell("the watch of %s ended (deleted or unmounted?); polling instead" % self.directory)
                    self._signal(True)
                    return
        except Exception as error:
            if self._closed:
                return
            self.mode = "poll"
            self._tell("the watcher of %s failed (%s); polling the inbox instead" % (self.directory, error))
            self._signal(True)

    def close(self):
        """Stops the thread and releases the OS handles; waiters are woken once and poll from
        now on. Idempotent. From the watcher's own thread (a report callback that closes the
        peer), the thread ends by itself right after."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self._stop_source()
        self.poke()

    def _stop_source(self):
        """Ends the watcher's thread and releases its handles (once); the waiters poll."""
        with self._cond:
            source, thread = self._source, self._thread
            self._source = self._thread = None
        self.mode = "poll"
        if source is None:
            return
        try:
            source.interrupt()
        except OSError:
            pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
            if thread.is_alive():  # pragma: no cover - never seen; do not free what it uses
                self._tell("the watcher thread of %s did not stop" % self.directory)
                return
        source.close()
