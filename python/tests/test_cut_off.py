"""Cut-off reads on a network share (issue 22): a mount that still holds a file's old size serves a
cut-off copy of the new one. Faked here by a fresh_size() that reports more than the read returns:
such a read is read again, never taken for the whole file, and a copy that does not parse is
reported only when the next read finds the same bytes."""

import json
import os

from ipckit_peer import _inbox, _locks
from ipckit_peer._inbox import CUT_OFF_TRIES, InboxReader, settled_request_ids


def write(path, value):
    with open(path, "w") as handle:
        handle.write(value if isinstance(value, str) else json.dumps(value))


def message(n):
    return {"id": "m%d" % n, "timestamp": n, "type": "event", "method": "e", "payload": n}


class StaleSizes(object):
    """fresh_size() answers ``extra`` bytes more than the file holds for the first ``times`` calls."""

    def __init__(self, times, extra=10):
        self.times = times
        self.extra = extra
        self.calls = 0

    def __call__(self, fd):
        self.calls += 1
        size = os.fstat(fd).st_size
        return size + self.extra if self.calls <= self.times else size


def test_a_cut_off_read_of_the_inbox_is_read_again(tmp_path, monkeypatch):
    inbox = str(tmp_path / "frontend_to_backend.json")
    write(inbox, [message(1), message(2)])
    sizes = StaleSizes(CUT_OFF_TRIES - 1)
    monkeypatch.setattr(_inbox, "fresh_size", sizes)
    problems = []
    reader = InboxReader(inbox, problems.append)
    assert [m["id"] for m in reader.read_new(fresh=True)] == ["m1", "m2"]
    assert sizes.calls == CUT_OFF_TRIES and problems == []


def test_a_read_cut_off_every_time_delivers_nothing_reports_nothing_and_is_read_next_poll(tmp_path, monkeypatch):
    inbox = str(tmp_path / "frontend_to_backend.json")
    write(inbox, [message(1)])
    monkeypatch.setattr(_inbox, "fresh_size", StaleSizes(CUT_OFF_TRIES))
    problems = []
    reader = InboxReader(inbox, problems.append)
    assert reader.read_new(fresh=True) == [] and problems == []
    assert [m["id"] for m in reader.read_new(fresh=True)] == ["m1"]  # whole now: delivered once
    assert reader.read_new(fresh=True) == [] and problems == []


def test_on_a_share_a_file_that_does_not_parse_is_reported_when_the_next_read_finds_the_same_bytes(tmp_path):
    inbox = str(tmp_path / "frontend_to_backend.json")
    write(inbox, '[{"id": "m1", "type"')  # a cut-off copy that slipped through
    problems = []
    reader = InboxReader(inbox, problems.append)
    assert reader.read_new(fresh=True) == [] and problems == []
    write(inbox, [message(1)])  # the whole version, read next time
    assert [m["id"] for m in reader.read_new(fresh=True)] == ["m1"] and problems == []
    write(inbox, "[1, 2")  # really broken: the same bytes twice
    assert reader.read_new(fresh=True) == [] and problems == []
    assert reader.read_new(fresh=True) == [] and len(problems) == 1
    assert "not valid JSON" in str(problems[0])
    assert reader.read_new(fresh=True) == [] and len(problems) == 1  # once per version


def test_a_cut_off_lock_file_never_names_another_process(tmp_path, monkeypatch):
    lock = str(tmp_path / "backend_to_frontend.lock")
    write(lock, "%d" % os.getpid())
    monkeypatch.setattr(_locks, "fresh_size", StaleSizes(100))
    # Every read looks cut off ("12" of "12345" would name another, probably dead, process).
    assert _locks.read_small(lock) is None
    assert _locks.clear_abandoned_lock(str(tmp_path / "backend_to_frontend.json")) is False
    assert os.path.exists(lock)
    monkeypatch.setattr(_locks, "fresh_size", StaleSizes(1))
    assert _locks.read_small(lock) == str(os.getpid()).encode()  # read again, whole


def test_the_answered_requests_are_read_from_a_whole_outbox(tmp_path, monkeypatch):
    outbox = str(tmp_path / "backend_to_frontend.json")
    response = {"id": "r1", "timestamp": 1, "type": "response", "reply_to": "q1", "payload": 1}
    write(outbox, [response])
    monkeypatch.setattr(_inbox, "fresh_size", StaleSizes(1))
    assert settled_request_ids(outbox) == {"q1"}
