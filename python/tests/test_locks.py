"""Lock files a killed writer left behind (PROTOCOL-EXTENSIONS.md, "Abandoned lock files"): a
restarted peer takes over at once one whose PID no longer runs, never one of a live process."""

import json
import os
import subprocess
import sys

from conftest import BACKEND_OUTBOX
from ipckit_peer._locks import clear_abandoned_lock, process_running


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_running(child.pid)
    return child.pid


def lock_path(harness):
    return os.path.join(harness.dir, "backend_to_frontend.lock")


def test_a_restarted_backend_takes_over_the_lock_its_killed_predecessor_left(harness):
    os.makedirs(harness.dir)
    with open(lock_path(harness), "w") as handle:
        handle.write("%d\n" % dead_pid())
    peer = harness.backend()
    assert not os.path.exists(lock_path(harness))
    # One attempt is enough: no wait for the reference's 5 s staleness.
    peer._send(peer._channel.send_event, "hello", {"n": 1}, tries=1, raise_all=True)
    assert harness.backend_log().events("hello")


def test_on_a_share_a_lock_naming_no_process_here_is_left_alone(harness, monkeypatch):
    # Its PID may be a process of the machine across the share: never judged by it here.
    import ipckit_peer._locks as locks

    os.makedirs(harness.dir)
    with open(lock_path(harness), "w") as handle:
        handle.write("%d\n" % dead_pid())
    monkeypatch.setattr(locks, "is_remote_file_system", lambda directory: True)
    assert not clear_abandoned_lock(os.path.join(harness.dir, BACKEND_OUTBOX))
    assert os.path.exists(lock_path(harness))
    monkeypatch.setattr(locks, "is_remote_file_system", lambda directory: False)
    assert clear_abandoned_lock(os.path.join(harness.dir, BACKEND_OUTBOX))
    assert not os.path.exists(lock_path(harness))


def test_a_lock_of_a_running_process_is_left_alone(harness):
    os.makedirs(harness.dir)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(lock_path(harness), "w") as handle:
            handle.write("%d\n" % holder.pid)
        outbox = os.path.join(harness.dir, BACKEND_OUTBOX)
        assert not clear_abandoned_lock(outbox)
        assert os.path.exists(lock_path(harness))
    finally:
        holder.kill()
        holder.wait()
    # Once it is gone (and reaped) the lock is abandoned.
    assert clear_abandoned_lock(outbox)
    assert not os.path.exists(lock_path(harness))


def test_odd_lock_contents_are_left_alone(harness):
    os.makedirs(harness.dir)
    outbox = os.path.join(harness.dir, BACKEND_OUTBOX)
    for content in ["", "not a pid\n", "0\n", "-5\n", "9" * 100]:
        with open(lock_path(harness), "w") as handle:
            handle.write(content)
        assert not clear_abandoned_lock(outbox)
        assert os.path.exists(lock_path(harness))


def test_a_second_backend_on_one_directory_is_warned_about(harness):
    problems = []
    harness.backend()
    # Another process's reader of the same inbox: this process stands in for it, so make the
    # record name a live process that is not us.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name in os.listdir(harness.dir):
            if name.endswith(".ack"):
                path = os.path.join(harness.dir, name)
                with open(path) as handle:
                    record = json.load(handle)
                record["pid"] = other.pid
                with open(path, "w") as handle:
                    json.dump(record, handle)
        harness.backend(on_error=problems.append)
    finally:
        other.kill()
        other.wait()
    assert any("already reads" in str(p) and str(other.pid) in str(p) for p in problems)


def test_the_acknowledgement_names_its_process_by_start_too(harness):
    peer = harness.backend()
    with open(peer.ack_path) as handle:
        record = json.load(handle)
    with open("/proc/%d/stat" % os.getpid(), "rb") as stat:
        started = int(stat.read().rsplit(b")", 1)[1].split()[19])
    assert (record["pid"], record["started"]) == (os.getpid(), started)
