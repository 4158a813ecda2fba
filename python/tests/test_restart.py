"""Restart safety: a peer never runs a request that is already settled (answered in its own
outbox before it opened, or cancelled later in the same read of the inbox); and hardening: a
task.cancel with an odd requestId, and a message nested 100,000 levels deep, are survived."""

import json
import os
import time
import uuid

import pytest

from conftest import FRONTEND_OUTBOX, wait_until
from ipckit_peer import InboxProblem


def request(method, payload, ident=None):
    return {
        "id": ident or str(uuid.uuid4()),
        "timestamp": int(time.time() * 1000),
        "type": "request",
        "method": method,
        "payload": payload,
    }


def event(method, payload):
    message = request(method, payload)
    message["type"] = "event"
    return message


def write_inbox(harness, messages):
    """Replaces the backend's inbox in one rename, as the protocol's writers do: whatever it
    holds is read in one batch. ``messages``: dicts, or JSON text for one element."""
    path = os.path.join(harness.dir, FRONTEND_OUTBOX)
    parts = [m if isinstance(m, str) else json.dumps(m) for m in messages]
    with open(path + ".test-tmp", "w") as handle:
        handle.write("[\n" + ",\n".join(parts) + "\n]")
    os.replace(path + ".test-tmp", path)


def counting_backend(harness, **options):
    peer = harness.backend(**options)
    ran = []
    peer.handle("job", lambda params, ctx: ran.append(params) or "done %s" % params)
    return peer, ran


def test_requests_a_previous_backend_answered_are_not_run_again_after_a_restart(harness):
    front = harness.reference_frontend()
    out = harness.backend_log()
    first, ran_first = counting_backend(harness)
    harness.serve(first)
    answered = [front.send_request("job", n) for n in range(3)]
    for request_id in answered:
        out.wait_response(request_id)
    first.close()  # or a crash: what counts is the responses in the outbox

    # The inbox still holds the three requests: a new backend reads them again.
    second, ran_second = counting_backend(harness)
    assert second.skipped_requests == 0
    harness.serve(second)
    fresh = front.send_request("job", "new")
    assert out.wait_response(fresh)["payload"] == "done new"
    assert ran_first == [0, 1, 2] and ran_second == ["new"]
    assert second.skipped_requests == 3


def test_a_response_written_by_hand_settles_its_request_also_when_it_comes_later(harness):
    # A backend written with the reference API answered two requests, then crashed.
    front = harness.reference_frontend()
    answered_now = front.send_request("job", "old")
    by_hand = harness.reference_backend()
    by_hand.send_response(answered_now, "answered before the restart")
    answered_later = str(uuid.uuid4())  # its request reaches the inbox only after we opened
    by_hand.send_error(answered_later, "failed before the restart")

    peer, ran = counting_backend(harness)
    harness.serve(peer)
    wait_until(lambda: peer.skipped_requests == 1, 10, "the old request to be skipped")
    new = request("job", "new")
    write_inbox(harness, [request("job", "late", answered_later), new])  # a later read
    assert harness.backend_log().wait_response(new["id"])["payload"] == "done new"
    assert ran == ["new"]
    assert peer.skipped_requests == 2  # the late one, read in the same batch as "new"


def test_a_request_cancelled_later_in_the_same_read_is_answered_not_run(harness):
    peer, ran = counting_backend(harness)
    harness.serve(peer)
    doomed, kept = request("job", "doomed"), request("job", "kept")
    cancel = event("task.cancel", {"requestId": doomed["id"], "reason": "changed my mind"})
    write_inbox(harness, [doomed, cancel, kept])
    out = harness.backend_log()
    assert out.wait_response(doomed["id"])["error"] == "cancelled before it started: changed my mind"
    assert out.wait_response(kept["id"])["payload"] == "done kept"
    assert ran == ["kept"]


def test_a_request_and_its_cancel_already_in_the_inbox_at_open_are_answered_not_run(harness):
    front = harness.reference_frontend()
    request_id = front.send_request("job", "doomed")
    front.send_event("task.cancel", {"requestId": request_id})  # no reason
    peer, ran = counting_backend(harness)
    harness.serve(peer)
    assert harness.backend_log().wait_response(request_id)["error"] == "cancelled before it started"
    after = front.send_request("job", "after")
    assert harness.backend_log().wait_response(after)["payload"] == "done after"
    assert ran == ["after"]


def test_a_cancel_whose_request_id_is_not_a_string_is_ignored(harness):
    errors = []
    peer, ran = counting_backend(harness, on_error=errors.append)
    harness.serve(peer)  # a crash of serve() would fail the harness's cleanup
    front = harness.reference_frontend()
    for odd in (["a", "list"], {"a": "dict"}, 42, None):
        front.send_event("task.cancel", {"requestId": odd, "reason": "odd"})
    request_id = front.send_request("job", 1)
    assert harness.backend_log().wait_response(request_id)["payload"] == "done 1"
    assert errors == [] and ran == [1]


def test_a_message_nested_100000_deep_is_reported_and_skipped_and_the_others_flow(harness):
    errors = []
    peer, ran = counting_backend(harness, on_error=errors.append)
    harness.serve(peer)
    deep = request("job", None)
    deep_text = json.dumps(deep).replace("null", "[" * 100000 + "]" * 100000)
    before, after = request("job", "before"), request("job", "after")
    write_inbox(harness, [before, deep_text, after])
    out = harness.backend_log()
    assert out.wait_response(before["id"])["payload"] == "done before"
    assert out.wait_response(after["id"])["payload"] == "done after"
    wait_until(lambda: errors, 10, "the report")
    assert len(errors) == 1 and isinstance(errors[0], InboxProblem)
    assert "message 1 is skipped" in str(errors[0]) and "nested too deeply" in str(errors[0])
    assert ran == ["before", "after"]
    # A file holding only such a message is survived the same way.
    write_inbox(harness, [deep_text.replace(deep["id"], str(uuid.uuid4()))])
    wait_until(lambda: len(errors) == 2, 10, "the second report")
    last = request("job", "last")
    write_inbox(harness, [last])
    assert out.wait_response(last["id"])["payload"] == "done last"


def nested(levels):
    value = "core"
    for _ in range(levels):
        value = [value]
    return value


def test_a_reply_nested_deeper_than_the_reference_reads_is_refused_and_the_outbox_stays_usable(harness):
    from ipckit_peer._peer import MAX_PAYLOAD_DEPTH

    backend = harness.backend()
    backend.handle("deep", lambda params, ctx: nested(params))
    harness.serve(backend)
    front = harness.reference_frontend()
    too_deep = front.send_request("deep", MAX_PAYLOAD_DEPTH + 75)
    fine = front.send_request("deep", MAX_PAYLOAD_DEPTH)
    log = harness.backend_log()
    refused = log.wait_response(too_deep)
    assert refused["payload"] is None and "nested deeper than 125 levels" in refused["error"]
    assert log.wait_response(fine)["payload"] == nested(MAX_PAYLOAD_DEPTH)
    # The outbox still parses: later sends go through.
    backend.send_event("after", 1)
    assert log.wait_event("after")
    with pytest.raises(ValueError):
        backend.send_event("deep", nested(MAX_PAYLOAD_DEPTH + 1))
