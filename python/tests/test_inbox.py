"""Exactly-once delivery from the inbox: same-millisecond bursts of the reference writer,
timestamps that go backwards, trimmed files, and bad files or messages."""

import json
import os
import threading
import time
import uuid

from conftest import FRONTEND_OUTBOX, wait_until
from ipckit_peer import InboxProblem


def message(method, payload, timestamp=None, **fields):
    result = {
        "id": str(uuid.uuid4()),
        "timestamp": int(time.time() * 1000) if timestamp is None else timestamp,
        "type": "event",
        "method": method,
        "payload": payload,
    }
    result.update(fields)
    return result


def write_inbox(harness, content):
    """Replaces the backend's inbox atomically, as every writer of the protocol does."""
    path = os.path.join(harness.dir, FRONTEND_OUTBOX)
    tmp = path + ".test-tmp"
    with open(tmp, "w") as handle:
        handle.write(content if isinstance(content, str) else json.dumps(content, indent=2))
    os.replace(tmp, path)


def test_a_same_millisecond_burst_of_200_reference_events_is_delivered_once_each_in_order(harness):
    peer = harness.backend()
    received = []
    peer.on_event("tick", lambda payload, msg: received.append((payload, msg["timestamp"])))
    harness.serve(peer, poll_interval=0.001)
    front = harness.reference_frontend()
    # A burst is as fast as the reference writer goes (about two sends per millisecond here), but
    # on a loaded machine one burst may happen to give each message its own millisecond: then
    # another burst follows, until one has shared milliseconds (each is checked the same way).
    sent = 0
    for burst in range(10):
        for _ in range(200):
            # The reference writer keeps only 100 messages: stay inside its cap, so that this is a
            # test of repetition, not of loss.
            if sent - len(received) >= 90:
                wait_until(lambda: sent - len(received) < 90, 10, "the reader to catch up")
            front.send_event("tick", sent)
            sent += 1
        wait_until(lambda: len(received) >= sent, 10, "%d events" % sent)
        peer.poll()  # one more read: a repeat would show up now
        assert [payload for payload, _ in received] == list(range(sent))
        stamps = [stamp for _, stamp in received[-200:]]
        if len(set(stamps)) < len(stamps):
            break
    else:
        raise AssertionError("10 bursts of 200 and never two messages in one millisecond")


def test_200_events_in_one_millisecond_are_delivered_once_where_the_reference_recv_repeats(harness):
    peer = harness.backend()
    received = []
    peer.on_event("tick", lambda payload, msg: received.append(payload))
    reference = harness.reference_backend()  # the reference reader, on the same inbox
    reference_got = []
    stamp = int(time.time() * 1000)
    messages = [message("tick", n, timestamp=stamp) for n in range(200)]
    for end in (50, 120, 200):  # the file grows, every message in the same millisecond
        write_inbox(harness, messages[:end])
        peer.poll()
        reference_got += [m["payload"] for m in reference.recv()]
    peer.poll()
    assert received == list(range(200))
    assert len(reference_got) > 200  # the reference repeats them


def test_bursts_written_while_nobody_reads_are_delivered_once_even_when_the_file_is_trimmed(harness):
    peer = harness.backend()
    received = []
    peer.on_event("tick", lambda payload, msg: received.append(payload))
    front = harness.reference_frontend()
    for n in range(100):
        front.send_event("tick", n)
    assert peer.poll() == 100
    assert peer.poll() == 0
    for n in range(100, 200):  # replaces every message of the file (the writer's cap is 100)
        front.send_event("tick", n)
    assert peer.poll() == 100
    assert received == list(range(200))
    # Only the previous snapshot is remembered.
    assert len(peer._inbox._previous) == 100


def test_timestamps_going_backwards_and_repeated_ids_lose_and_repeat_nothing(harness):
    peer = harness.backend()
    received = []
    peer.on_event("e", lambda payload, msg: received.append(payload))
    now = int(time.time() * 1000)
    first = [message("e", n, timestamp=now - n) for n in range(5)]  # every timestamp older
    write_inbox(harness, first)
    peer.poll()
    assert received == [0, 1, 2, 3, 4]
    late = message("e", "older than all", timestamp=now - 10000)
    write_inbox(harness, first + [late, late])  # the same id twice in one file
    peer.poll()
    peer.poll()
    assert received == [0, 1, 2, 3, 4, "older than all"]


def test_a_malformed_file_is_reported_once_and_never_stops_the_peer(harness):
    problems = []
    peer = harness.backend(on_error=problems.append)
    received = []
    peer.on_event("e", lambda payload, msg: received.append(payload))
    harness.serve(peer, poll_interval=0.001)
    write_inbox(harness, '[{"id": "truncated"')
    wait_until(lambda: problems, 5, "the report")
    write_inbox(harness, '{"not": "an array"}')
    wait_until(lambda: len(problems) == 2, 5, "the second report")
    good = [message("e", 1)]
    write_inbox(harness, good)
    wait_until(lambda: received == [1], 5, "the good message")
    assert all(isinstance(p, InboxProblem) for p in problems)
    assert "not valid JSON" in str(problems[0]) and problems[0].path.endswith(FRONTEND_OUTBOX)
    assert "array" in str(problems[1])
    assert len(problems) == 2


def test_a_bad_message_is_reported_once_and_the_others_still_flow(harness):
    problems = []
    peer = harness.backend(on_error=problems.append)
    received = []
    peer.on_event("e", lambda payload, msg: received.append(payload))
    bad = {"id": "x-1", "timestamp": 1, "type": "shout", "payload": None}
    write_inbox(harness, [message("e", 1), bad, 42, message("e", 2)])
    peer.poll()
    write_inbox(harness, [message("e", 3), bad, 42])
    peer.poll()
    assert received == [1, 2, 3]
    assert len(problems) == 2
    assert "unknown type 'shout'" in str(problems[0]) and problems[0].message == bad
    assert "not a JSON object" in str(problems[1])


def test_the_reference_clear_and_an_empty_file_are_not_errors(harness):
    problems = []
    peer = harness.backend(on_error=problems.append)
    received = []
    peer.on_event("e", lambda payload, msg: received.append(payload))
    front = harness.reference_frontend()
    front.send_event("e", 1)
    peer.poll()
    front.clear()  # writes [] in place
    peer.poll()
    write_inbox(harness, "")  # what an in-place writer leaves for an instant
    peer.poll()
    front.send_event("e", 2)
    peer.poll()
    assert received == [1, 2]
    assert problems == []


def test_reading_and_answering_from_several_threads_delivers_each_request_once(harness):
    peer = harness.backend()
    calls = []
    lock = threading.Lock()

    def count(params, ctx):
        with lock:
            calls.append(params)
        return params

    peer.handle("count", count)
    for _ in range(3):
        harness.serve(peer, poll_interval=0.001)
    front = harness.reference_frontend()
    out = harness.backend_log()
    ids = []
    for n in range(60):
        ids.append(front.send_request("count", n))
        if n % 20 == 19:
            wait_until(lambda: len(calls) == n + 1, 10, "the requests")
    for request_id in ids:
        out.wait_response(request_id)
    assert sorted(calls) == list(range(60))
