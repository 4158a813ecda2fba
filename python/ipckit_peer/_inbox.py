"""Reading the inbox: each message exactly once, and publishing how far we have read.

The reference ``FileChannel.recv()`` remembers the timestamp of the last message it returned, so
it repeats messages that share a millisecond and skips messages whose timestamps go backwards.
This reader compares message ids instead: a message is new when its id was not in the previous
snapshot of the file. Writers replace the file by rename, so every read sees one whole version,
and a message never comes back once a writer has trimmed it. Only the previous snapshot's ids are
kept, so memory is bounded by the file.
"""

import errno
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid

from ._locks import own_start, process_running, read_small
from ._watch import fresh_size
from .errors import InboxProblem

MESSAGE_TYPES = ("request", "response", "event")

# Re-read the inbox at least this often even when its stat() looks unchanged (a writer that
# rewrites a file in place within one timestamp tick would otherwise go unnoticed)...
FULL_READ_PERIOD = 1.0
# ...or this often while a file watcher reports changes: it reports such a rewrite too (and the
# reader is then told to read), so this only covers a watcher gone silent.
WATCHED_FULL_READ_PERIOD = 10.0

DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024

# Reads of one version of a file on a share before a cut-off copy is given up on (until the next
# poll): the size is asked afresh before each, so a second one almost always sees it whole.
CUT_OFF_TRIES = 3


class CutOff(OSError):
    """Every read of a file came back shorter than the file is (a share's stale cached size)."""


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import ctypes
    import msvcrt

    from ._win32 import INVALID_HANDLE as _INVALID_HANDLE
    from ._win32 import CloseHandle as _CloseHandle
    from ._win32 import CreateFileW as _CreateFileW

    _GENERIC_READ = 0x80000000
    _SHARE_ALL = 0x1 | 0x2 | 0x4  # read, write, delete: a writer may rename over the file meanwhile
    _OPEN_EXISTING = 3
    _FILE_ATTRIBUTE_NORMAL = 0x80

    def _read_file(path, fresh=False):
        """The file's bytes and os.fstat() result, opened so that a writer's rename never fails.
        (``fresh``: no share is detected on Windows; a silent watcher's fallback just reads.)"""
        handle = _CreateFileW(path, _GENERIC_READ, _SHARE_ALL, None, _OPEN_EXISTING, _FILE_ATTRIBUTE_NORMAL, None)
        if handle is None or handle == _INVALID_HANDLE:
            error = ctypes.get_last_error()
            raise OSError(None, ctypes.FormatError(error), path, error)
        try:
            fd = msvcrt.open_osfhandle(handle, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except Exception:
            _CloseHandle(handle)
            raise
        with os.fdopen(fd, "rb") as handle_file:
            return handle_file.read(), os.fstat(handle_file.fileno())

else:

    def _read_file(path, fresh=False):
        """The file's bytes and the os.fstat() result of the very file that was read. ``fresh``
        (a share): the size is asked afresh first (fresh_size), and a read shorter than that is a
        cut-off copy, read again; CutOff when every try was."""
        for _ in range(CUT_OFF_TRIES if fresh else 1):
            with open(path, "rb") as handle_file:
                size = fresh_size(handle_file.fileno()) if fresh else 0
                data = handle_file.read()
                if len(data) >= size:
                    return data, os.fstat(handle_file.fileno())
        raise CutOff(errno.EAGAIN, "read %d of its %d bytes (a cut-off copy)" % (len(data), size), path)


def _signature(st):
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class TooDeep(object):
    """An element of the array nested too deeply for Python's JSON parser (its recursion limit,
    about 1,000 levels; the reference reader stops at 128). ``text`` is its JSON text."""

    def __init__(self, text):
        self.text = text


# A JSON string (skipped whole) or a bracket: enough to find where a value ends without recursion.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _end_of_value(text, start):
    """Index just past the array or object that starts at ``start`` (counted, not parsed)."""
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text, start):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
        elif bracket in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    raise ValueError("an unterminated value at character %d" % start)


def _parse_array_element_wise(text):
    """The top-level array of ``text`` with each too-deep element as a TooDeep, the others
    parsed. Raises ValueError when the text is not an array of JSON values."""
    index = _WHITESPACE.match(text, 0).end()
    if text[index : index + 1] != "[":
        raise ValueError("not a JSON array")
    index = _WHITESPACE.match(text, index + 1).end()
    elements = []
    if text[index : index + 1] == "]":
        index += 1
    else:
        while True:
            try:
                element, index = _DECODER.raw_decode(text, index)
            except RecursionError:
                end = _end_of_value(text, index)
                element, index = TooDeep(text[index:end]), end
            elements.append(element)
            index = _WHITESPACE.match(text, index).end()
            separator = text[index : index + 1]
            index = _WHITESPACE.match(text, index + 1).end()
            if separator == "]":
                break
            if separator != ",":
                raise ValueError("expected ',' or ']' at character %d" % index)
    if text[index:].strip():
        raise ValueError("extra data after the array")
    return elements


def parse_messages(data):
    """The JSON value of a message file's bytes. An array holding elements nested too deeply
    for Python comes back with those elements as TooDeep (the others still flow). Raises
    UnicodeDecodeError or ValueError for a file that is not JSON."""
    text = data.decode("utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        return _parse_array_element_wise(text)


def settled_request_ids(path):
    """The ids of the requests that the message file ``path`` holds responses to (``reply_to``);
    empty when it cannot be read or parsed."""
    try:
        data, _ = _read_file(path, fresh=True)  # once, at open: never a cut-off copy
        messages = parse_messages(data)
    except (OSError, ValueError):
        return set()
    if not isinstance(messages, list):
        return set()
    return set(
        m["reply_to"]
        for m in messages
        if isinstance(m, dict) and m.get("type") == "response" and isinstance(m.get("reply_to"), str)
    )


def message_problem(message):
    """Why ``message`` (one element of the array) cannot be delivered, or None."""
    if isinstance(message, TooDeep):
        return "nested too deeply to read (%d bytes)" % len(message.text)
    if not isinstance(message, dict):
        return "not a JSON object"
    ident = message.get("id")
    if not isinstance(ident, str) or not ident:
        return "no string id"
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        return "unknown type %r" % (kind,)
    if kind == "response":
        if not isinstance(message.get("reply_to"), str):
            return "a response without a string reply_to"
    elif not isinstance(message.get("method"), str):
        return "a %s without a string method" % kind
    return None


def _bad_key(index, message):
    """A key that names an undeliverable element across snapshots (so it is reported once)."""
    ident = message.get("id") if isinstance(message, dict) else None
    if isinstance(ident, str):
        return "bad:id:" + ident
    if isinstance(message, TooDeep):
        text = message.text
    else:
        try:
            text = json.dumps(message, sort_keys=True)
        except (TypeError, ValueError, RecursionError):  # pragma: no cover - parsed JSON dumps
            text = repr(message)
    return "bad:%d:%s" % (index, hashlib.sha1(text.encode("utf-8")).hexdigest())


class InboxReader(object):
    """Returns the inbox messages not seen in the previous snapshot, in file order.

    ``report(problem)`` receives an :class:`InboxProblem` for an unreadable file or a bad message,
    once per distinct file version / message. Not thread-safe: the caller serializes reads.
    """

    def __init__(self, path, report, max_file_bytes=DEFAULT_MAX_FILE_BYTES):
        self.path = path
        self._report = report
        self._max_file_bytes = max_file_bytes
        self._previous = frozenset()
        self._signature = None
        self._last_full_read = None
        self._reported = None  # what was last reported about the file as a whole
        self._unparsed = None  # the bytes of the last read that did not parse (a share's read)
        self.last_id = None  # id of the newest message of the newest non-empty snapshot

    def _report_once(self, key, text):
        if self._reported != key:
            self._reported = key
            self._report(InboxProblem(text, self.path))

    def read_new(self, force=False, full_read_period=FULL_READ_PERIOD, fresh=False):
        """The new, well-formed messages (a list, possibly empty). ``force``: read the file even
        when its stat() looks unchanged (a change event said it changed); so does a read
        ``full_read_period`` seconds after the last full one. ``fresh`` (a share): cut-off reads
        are read again (_read_file), and a read that does not parse is reported only when the
        next one finds the same bytes (a cut-off copy that slipped through is not a bad file)."""
        now = time.monotonic()
        try:
            signature = _signature(os.stat(self.path))
        except OSError as error:
            self._report_once(("stat", error.errno), "cannot read inbox %s: %s" % (self.path, error))
            return []
        if (
            not force
            and signature == self._signature
            and self._last_full_read is not None
            and now - self._last_full_read < full_read_period
        ):
            return []
        if signature[2] > self._max_file_bytes:
            self._signature = signature
            self._last_full_read = now
            self._report_once(
                ("size", signature),
                "inbox %s is %d bytes, more than the %d allowed; not read"
                % (self.path, signature[2], self._max_file_bytes),
            )
            return []
        try:
            data, st = _read_file(self.path, fresh)
        except CutOff:
            self._signature = None  # the next poll reads it again; nothing is delivered from it
            return []
        except OSError as error:
            self._report_once(("read", error.errno), "cannot read inbox %s: %s" % (self.path, error))
            return []
        signature = _signature(st)
        if not data.strip():
            # Only a writer that rewrites the file in place (the reference clear()) leaves it
            # empty, and only for an instant: read it again next time.
            self._signature = None
            return []
        self._last_full_read = now
        self._signature = signature
        try:
            snapshot = parse_messages(data)
        except (UnicodeDecodeError, ValueError) as error:
            if fresh and data != self._unparsed:
                self._unparsed = data  # perhaps cut off: reported if the next read finds it again
                self._signature = None
                return []
            # The writer replaces the file by rename, so this is a genuinely bad file: say so once
            # for this version and keep the previous snapshot (nothing is delivered from it).
            self._report_once(("parse", signature), "inbox %s is not valid JSON: %s" % (self.path, error))
            return []
        if not isinstance(snapshot, list):
            self._report_once(("shape", signature), "inbox %s does not hold a JSON array" % self.path)
            return []
        self._reported = None
        self._unparsed = None

        keys = set()
        fresh = []
        last_id = None
        for index, message in enumerate(snapshot):
            problem = message_problem(message)
            if problem is None:
                key = message["id"]
                last_id = key
                if key in keys:
                    continue  # the same id twice in one file: deliver it once
                keys.add(key)
                if key not in self._previous:
                    fresh.append(message)
            else:
                if isinstance(message, dict) and isinstance(message.get("id"), str):
                    last_id = message["id"]  # looked at, so consumed: a writer may trim it
                key = _bad_key(index, message)
                if key in keys:
                    continue
                keys.add(key)
                if key not in self._previous:
                    self._report(
                        InboxProblem(
                            "inbox %s: message %d is skipped: %s" % (self.path, index, problem),
                            self.path,
                            message,
                        )
                    )
        self._previous = frozenset(keys)
        if last_id is not None:
            self.last_id = last_id
        return fresh


class AckPublisher(object):
    """Publishes ``<inbox stem>.<reader id>.ack``: how far this reader has consumed its inbox.

    The content is ``{"last_id", "updated", "pid", "host"}``, written to ``<name>.ack.tmp`` and
    renamed over ``<name>.ack``. Thread-safe.
    """

    INTERVAL = 0.02  # at most this often for position changes

    def __init__(self, inbox_path, heartbeat):
        directory, name = os.path.split(inbox_path)
        stem = os.path.splitext(name)[0]
        self.reader_id = uuid.uuid4().hex
        self.path = os.path.join(directory, "%s.%s.ack" % (stem, self.reader_id))
        self.tmp_path = self.path + ".tmp"
        self.heartbeat = heartbeat
        self._lock = threading.Lock()
        self._consumed = None
        self._published = None
        self._last_write = None
        self._removed = False
        self._pid = os.getpid()
        self._host = socket.gethostname()
        self._started = own_start()

    def note_consumed(self, last_id):
        if last_id is not None:
            with self._lock:
                self._consumed = last_id

    def pending(self):
        """True when a position change is waiting for the next write."""
        with self._lock:
            return self._consumed != self._published

    def seconds_until_due(self, now=None):
        """How long until flush_if_due() would write (0: now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._removed:
                return self.heartbeat
            if self._last_write is None:
                return 0.0
            elapsed = now - self._last_write
            wait = self.INTERVAL if self._consumed != self._published else self.heartbeat
            return max(0.0, wait - elapsed)

    def flush_if_due(self, now=None):
        """Writes when the position moved (and INTERVAL passed) or the heartbeat is due."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._removed:
                return False
            if self._last_write is not None:
                elapsed = now - self._last_write
                moved = self._consumed != self._published
                if not ((moved and elapsed >= self.INTERVAL) or elapsed >= self.heartbeat):
                    return False
            self._write(now)
            return True

    def _write(self, now):
        record = {
            "last_id": self._consumed,
            "updated": int(time.time() * 1000),
            "pid": self._pid,
            "host": self._host,
        }
        if self._started is not None:
            # A writer of this host then tells us from a later process that reuses our PID.
            record["started"] = self._started
        data = json.dumps(record, indent=2).encode("utf-8")
        fd = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        deadline = now + 0.05
        while True:
            try:
                os.replace(self.tmp_path, self.path)
                break
            except PermissionError:
                # Windows: a writer is reading the file right now; it is done within moments.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
        self._published = self._consumed
        self._last_write = now

    def other_live_readers(self, max_age=10.0):
        """The processes (``(pid, host)``) of other readers of our inbox that are alive: on this
        host their process runs, elsewhere their heartbeat is at most ``max_age`` s old. Two
        readers of one role each run every request."""
        directory, own = os.path.split(self.path)
        prefix = own[: -len(self.reader_id) - len(".ack")]
        found = []
        try:
            names = os.listdir(directory)
        except OSError:
            return found
        for name in names:
            if name == own or not (name.startswith(prefix) and name.endswith(".ack")):
                continue
            try:
                record = json.loads(read_small(os.path.join(directory, name)) or b"null")
                pid, host, updated = record["pid"], record["host"], record["updated"]
            except (ValueError, TypeError, KeyError):
                continue
            if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == self._pid:
                continue
            if host == self._host:
                alive = process_running(pid)
            else:
                alive = isinstance(updated, (int, float)) and time.time() * 1000 - updated <= max_age * 1000
            if alive:
                found.append((pid, host))
        return found

    def remove(self):
        with self._lock:
            self._removed = True
            for path in (self.path, self.tmp_path):
                try:
                    os.remove(path)
                except OSError:
                    pass
