"""The inbox watcher: a change of the inbox wakes a blocked wait at once (inotify here), other
files of the directory do not, the forced polling fallback still delivers and backs off when idle,
a lost or unavailable watcher falls back to polling, and close() releases the thread and the fd."""

import json
import os
import struct
import sys
import threading
import time

import pytest

from conftest import FRONTEND_OUTBOX as INBOX, wait_until
from ipckit_peer import _watch
from ipckit_peer._watch import IDLE_POLL, InboxWatcher
from ipckit_peer.errors import WatchProblem

LINUX = sys.platform.startswith("linux")
EXPECTED_MODE = "inotify" if LINUX else "windows" if os.name == "nt" else "kqueue"


@pytest.fixture
def channel(tmp_path, monkeypatch):
    monkeypatch.delenv(_watch.WAKE_ENV, raising=False)
    directory = str(tmp_path / "chan")
    os.mkdir(directory)
    with open(os.path.join(directory, INBOX), "w") as handle:
        handle.write("[]")
    watchers = []

    def open_watcher(**options):
        watcher = InboxWatcher(directory, INBOX, **options)
        watchers.append(watcher)
        return watcher

    yield directory, open_watcher
    for watcher in watchers:
        watcher.close()


def replace(directory, name, content="[]"):
    """Writes ``<name>.tmp`` and renames it over ``name``, as the protocol's writers do."""
    tmp = os.path.join(directory, name + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(content)
    os.replace(tmp, os.path.join(directory, name))


class BlockedWaiter(object):
    """A thread blocked in watcher.wait() until the generation moves; records when it woke."""

    def __init__(self, watcher):
        self.seen = watcher.generation
        self.woke_at = None
        self.ready = threading.Event()

        def run():
            self.ready.set()
            # Each wait() ends after the watcher's period at the latest; only a moved
            # generation (an event) ends the loop.
            while not watcher.wait(self.seen, timeout=30):
                pass
            self.woke_at = time.monotonic()

        self.thread = threading.Thread(target=run)
        self.thread.daemon = True
        self.thread.start()
        self.ready.wait(5)


def test_a_rename_over_the_inbox_wakes_a_blocked_wait_at_once(channel):
    directory, open_watcher = channel
    watcher = open_watcher()
    assert watcher.mode == EXPECTED_MODE and watcher.alive
    waiter = BlockedWaiter(watcher)
    renamed_at = time.monotonic()
    replace(directory, INBOX, json.dumps([{"x": 1}]))
    wait_until(lambda: waiter.woke_at, 10, "the waiter to wake")
    # Typically well under a millisecond; generous for a loaded machine, yet less than the
    # period after which a silent watcher's waiters read anyway.
    assert waiter.woke_at - renamed_at < _watch.SAFETY_PERIOD
    assert watcher.take_hint() is True  # the next read must not trust an unchanged stat()
    assert watcher.take_hint() is False


def test_an_in_place_rewrite_of_the_inbox_wakes_too(channel):
    directory, open_watcher = channel
    watcher = open_watcher()
    waiter = BlockedWaiter(watcher)
    with open(os.path.join(directory, INBOX), "w") as handle:  # as the reference clear() does
        handle.write("[]")
    wait_until(lambda: waiter.woke_at, 10, "the waiter to wake")
    assert watcher.take_hint() is True


def test_changes_of_other_files_in_the_directory_wake_nobody(channel):
    directory, open_watcher = channel
    watcher = open_watcher()
    seen = watcher.generation
    # Our own writes: the outbox, its lock, an acknowledgement file, a temporary file.
    for _ in range(20):
        replace(directory, "backend_to_frontend.json")
        replace(directory, "frontend_to_backend.0123abcd.ack", "{}")
        with open(os.path.join(directory, "backend_to_frontend.lock"), "w") as handle:
            handle.write("1\n")
        os.remove(os.path.join(directory, "backend_to_frontend.lock"))
    # Events arrive in order: once the inbox's change is seen, the others were filtered out.
    replace(directory, INBOX)
    wait_until(lambda: watcher.generation != seen, 10, "the inbox change")
    assert watcher.generation == seen + 1
    assert watcher.take_hint() is True


def test_polling_is_forced_by_the_argument_or_the_environment(channel, monkeypatch):
    _, open_watcher = channel
    threads = threading.active_count()
    assert open_watcher(watch=False).mode == "poll"
    monkeypatch.setenv(_watch.WAKE_ENV, "poll")
    watcher = open_watcher()
    assert watcher.mode == "poll" and not watcher.alive
    assert threading.active_count() == threads  # no watcher thread


def test_polling_runs_fast_after_activity_or_while_busy_and_backs_off_when_idle(channel):
    _, open_watcher = channel
    watcher = open_watcher(watch=False, poll_interval=0.005)
    watcher.note_activity()
    assert watcher.period() == pytest.approx(0.005, abs=0.002)
    watcher._last_activity = time.monotonic() - 60  # a minute without messages
    assert watcher.period() == IDLE_POLL
    assert watcher.period(busy=True) == 0.005  # requests in flight: fast all the same
    watcher.poll_interval = 0.5  # a caller that asked for slower polling gets it
    assert watcher.period() == 0.5
    assert open_watcher().period() == _watch.SAFETY_PERIOD


def test_a_peer_forced_to_poll_still_delivers(harness, monkeypatch):
    monkeypatch.setenv(_watch.WAKE_ENV, "poll")
    peer = harness.backend()
    assert peer.wake_mode == "poll"
    peer.handle("echo", lambda params, ctx: params)
    harness.serve(peer)
    front = harness.reference_frontend()
    out = harness.backend_log()
    for n in range(3):
        assert out.wait_response(front.send_request("echo", n))["payload"] == n
    other = harness.frontend(watch=False)
    assert other.wake_mode == "poll"
    assert other.request("echo", "via request()") == "via request()"


def test_a_peer_wakes_by_its_watcher_and_answers(harness, monkeypatch):
    monkeypatch.delenv(_watch.WAKE_ENV, raising=False)
    peer = harness.backend()
    assert peer.wake_mode == EXPECTED_MODE
    peer.handle("echo", lambda params, ctx: params)
    harness.serve(peer)
    front = harness.frontend()  # request() waits on the watcher too, with nobody serving it
    assert front.wake_mode == EXPECTED_MODE
    for n in range(20):
        assert front.request("echo", n, timeout=10) == n


def test_our_own_writes_never_make_the_peer_read_its_inbox(harness, monkeypatch):
    monkeypatch.delenv(_watch.WAKE_ENV, raising=False)
    peer = harness.backend(heartbeat_interval=0.05)  # an acknowledgement write every 50 ms
    forced = []
    read_new = peer._inbox.read_new

    def counting_read_new(force=False, *args):
        if force:
            forced.append(True)
        return read_new(force, *args)

    peer._inbox.read_new = counting_read_new
    harness.serve(peer)
    for n in range(20):
        peer.send_event("log", n)  # outbox writes: lock, temporary file, rename

    def ack_writes():
        with open(peer.ack_path) as handle:
            return json.load(handle)["updated"]

    stamps = set()
    wait_until(lambda: stamps.add(ack_writes()) or len(stamps) >= 5, 10, "five acknowledgement writes")
    assert forced == []


@pytest.mark.skipif(not LINUX, reason="counts inotify descriptors in /proc/self/fd")
def test_close_releases_the_thread_and_the_inotify_descriptor(harness, monkeypatch):
    monkeypatch.delenv(_watch.WAKE_ENV, raising=False)

    def inotify_fds():
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink("/proc/self/fd/" + fd) == "anon_inode:inotify"
            except OSError:
                pass
        return count

    def watch_threads():
        return [t for t in threading.enumerate() if t.name == "ipckit-peer-watch"]

    fds, threads = inotify_fds(), len(watch_threads())
    peer = harness.backend()
    harness.serve(peer)
    assert inotify_fds() == fds + 1 and len(watch_threads()) == threads + 1
    peer.close()
    assert inotify_fds() == fds
    assert len(watch_threads()) == threads  # joined by close()
    peer.close()  # idempotent


def test_a_deleted_directory_falls_back_to_polling_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv(_watch.WAKE_ENV, raising=False)
    directory = str(tmp_path / "gone")
    os.mkdir(directory)
    reports = []
    watcher = InboxWatcher(directory, INBOX, report=reports.append)
    try:
        assert watcher.mode == EXPECTED_MODE
        os.rmdir(directory)
        wait_until(lambda: watcher.mode == "poll", 10, "the fallback to polling")
        wait_until(lambda: reports, 10, "the report")
        assert "polling" in str(reports[0])
    finally:
        watcher.close()


def test_an_unavailable_watcher_falls_back_to_polling_and_says_so(harness, monkeypatch):
    monkeypatch.delenv(_watch.WAKE_ENV, raising=False)

    class Exhausted(object):
        def __init__(self, directory, name):
            raise _watch.WatchUnavailable(24, "inotify_init1: Too many open files")

    monkeypatch.setattr(_watch, "_source_class", lambda: Exhausted)
    reports = []
    peer = harness.backend(on_error=reports.append)
    assert peer.wake_mode == "poll"
    assert len(reports) == 1 and "Too many open files" in str(reports[0]) and "polling" in str(reports[0])
    peer.handle("echo", lambda params, ctx: params)
    harness.serve(peer)
    front = harness.reference_frontend()
    assert harness.backend_log().wait_response(front.send_request("echo", 7))["payload"] == 7


def test_a_network_file_system_is_polled_at_the_polling_cadence_and_read_whole(channel, monkeypatch):
    directory, open_watcher = channel
    assert _watch.is_remote_file_system(directory) is False  # the test's own temp directory
    assert open_watcher().reads_content is False
    monkeypatch.setattr(_watch, "is_remote_file_system", lambda path: True)  # say, NFS
    reports = []
    watcher = open_watcher(report=reports.append, poll_interval=0.02)
    # The watcher still wakes us for this machine's writers, but writers elsewhere raise no
    # event: the waiters read at the polling cadence, the content every time, without complaint.
    assert watcher.mode == EXPECTED_MODE and watcher.reads_content and reports == []
    assert watcher.period(busy=True) == 0.02
    assert open_watcher(watch=False).reads_content


@pytest.mark.skipif(not LINUX, reason="statfs magic numbers are read on Linux only")
def test_the_file_system_type_decides_what_is_remote(channel, monkeypatch):
    directory, _ = channel
    assert _watch.is_remote_file_system("/proc") is False
    assert 0x65735546 in _watch._REMOTE_FILE_SYSTEMS  # FUSE (bindfs, sshfs)
    assert 0x6969 in _watch._REMOTE_FILE_SYSTEMS  # NFS
    assert 0xFF534D42 in _watch._REMOTE_FILE_SYSTEMS  # CIFS
    # A fake mount type: the statfs answer is what decides.
    monkeypatch.setattr(_watch, "_REMOTE_FILE_SYSTEMS", frozenset())
    assert _watch.is_remote_file_system(directory) is False
    import ctypes

    buffer = ctypes.create_string_buffer(512)
    libc = ctypes.CDLL(None)
    assert libc.statfs(os.fsencode(directory), buffer) == 0
    magic = ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF
    monkeypatch.setattr(_watch, "_REMOTE_FILE_SYSTEMS", frozenset([magic]))
    assert _watch.is_remote_file_system(directory) is True


def test_fresh_size_is_the_file_size(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"[1, 2, 3]")
    fd = os.open(str(path), os.O_RDONLY)
    try:
        assert _watch.fresh_size(fd) == 9
    finally:
        os.close(fd)


class _DeafSource(object):
    """A watcher source that announces nothing (a share written through another mount)."""

    mode = "deaf"

    def __init__(self, directory, name):
        self._stop = threading.Event()
        self.closed = False

    def wait_events(self):
        self._stop.wait()
        return _watch._STOP

    def interrupt(self):
        self._stop.set()

    def close(self):
        self.closed = True


def test_a_watcher_that_misses_changes_falls_back_to_polling_and_says_so_once(channel, monkeypatch):
    directory, open_watcher = channel
    monkeypatch.setattr(_watch, "_source_class", lambda: _DeafSource)
    reports = []
    watcher = open_watcher(report=reports.append)
    assert watcher.mode == "deaf" and watcher.period() == _watch.SAFETY_PERIOD
    source = watcher._source
    # Reads that find nothing, or find what was announced, are no misses.
    watcher.note_read(False, False)
    watcher.note_read(True, False)
    watcher.note_read(True, True)
    for _ in range(_watch.MISSES_BEFORE_FALLBACK - 1):
        watcher.note_read(True, False)
    assert watcher.mode == "deaf" and reports == []
    watcher.note_read(True, False)
    assert watcher.mode == "poll" and watcher.silent and watcher.reads_content
    assert source.closed and watcher._thread is None
    assert len(reports) == 1 and isinstance(reports[0], WatchProblem) and reports[0].code == "EWATCH"
    assert "missed 3 changes" in str(reports[0]) and "polling" in str(reports[0])
    for _ in range(10):
        watcher.note_read(True, False)
    assert len(reports) == 1  # once


def test_a_peer_whose_watcher_hears_nothing_still_answers_falls_back_once_and_reads_content(harness, monkeypatch):
    monkeypatch.delenv(_watch.WAKE_ENV, raising=False)
    monkeypatch.setattr(_watch, "_source_class", lambda: _DeafSource)
    reports = []
    peer = harness.backend(on_error=reports.append)
    assert peer.wake_mode == "deaf"
    peer.handle("echo", lambda params, ctx: params)
    harness.serve(peer)
    front = harness.reference_frontend()
    log = harness.backend_log()
    for n in range(5):
        assert log.wait_response(front.send_request("echo", n), timeout=10)["payload"] == n
    wait_until(lambda: peer.wake_mode == "poll", 5, "the fallback")
    watch_reports = [r for r in reports if isinstance(r, WatchProblem)]
    assert len(watch_reports) == 1 and "missed 3 changes" in str(watch_reports[0])
    assert peer._watch.reads_content


def test_event_buffers_are_parsed():
    name = b"frontend_to_backend.json"
    padded = name + b"\0" * (32 - len(name))
    record = struct.pack("iIII", 1, 0x80, 0, len(padded)) + padded
    overflow = struct.pack("iIII", -1, 0x4000, 0, 0)
    assert _watch.parse_inotify_events(record + overflow) == [(0x80, name), (0x4000, b"")]

    def notify(action, text, last):
        encoded = text.encode("utf-16-le")
        size = 12 + len(encoded)
        size += -size % 4  # records are DWORD-aligned
        head = struct.pack("<III", 0 if last else size, action, len(encoded))
        return (head + encoded).ljust(size, b"\0")

    buffer = notify(4, "frontend_to_backend.tmp", False) + notify(5, "FRONTEND_to_backend.json", True)
    assert _watch.parse_file_notify_information(buffer) == [
        (4, "frontend_to_backend.tmp"),
        (5, "FRONTEND_to_backend.json"),
    ]
