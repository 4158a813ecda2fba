"""Peer.frontend calling Peer.backend: results, remote errors, progress callbacks, timeouts with
cancellation, late replies dropped, events both ways, close() while a request waits."""

import threading
import time

import pytest

from conftest import wait_until
from ipckit_peer import PeerClosed, RemoteError, RequestTimeout


@pytest.fixture
def pair(harness):
    back = harness.backend()
    front = harness.frontend()
    return back, front


def test_request_returns_the_result_and_raises_remote_errors(harness, pair):
    back, front = pair
    back.handle("mul", lambda params, ctx: params["a"] * params["b"])

    @back.handle("explode")
    def explode(params, ctx):
        raise ValueError("bad frame %d" % params)

    harness.serve(back)
    assert front.request("mul", {"a": 6, "b": 7}) == 42
    with pytest.raises(RemoteError) as raised:
        front.request("explode", 13)
    error = raised.value
    assert (error.method, error.remote_message) == ("explode", "bad frame 13")
    assert "explode" in str(error) and error.request_id in str(error) and "bad frame 13" in str(error)


def test_on_progress_receives_updates_in_order(harness, pair):
    back, front = pair

    @back.handle("render")
    def render(params, ctx):
        for n in range(1, 31):
            ctx.progress(n, total=30, message="frame %d" % n if n % 10 == 0 else None)
        return "done"

    harness.serve(back)
    updates = []
    assert front.request("render", None, on_progress=updates.append) == "done"
    expected = []
    for n in range(1, 31):
        update = {"progress": n, "total": 30}
        if n % 10 == 0:
            update["message"] = "frame %d" % n
        expected.append(update)
    assert updates == expected


def test_a_timeout_cancels_the_handler_and_its_late_reply_is_dropped(harness, pair):
    back, front = pair
    reasons = []

    @back.handle("bake")
    def bake(params, ctx):
        ctx.sleep(30)
        reasons.append(ctx.cancel_reason)
        return "too late"

    back.handle("ping", lambda params, ctx: "pong")
    harness.serve(back)
    harness.serve(front)  # the frontend's own loop reads its inbox too
    with pytest.raises(RequestTimeout) as raised:
        front.request("bake", None, timeout=0.3)
    assert raised.value.method == "bake"
    wait_until(lambda: reasons == ["timeout"], 5, "the handler to be cancelled")
    wait_until(lambda: harness.backend_log().response_to(raised.value.request_id), 5, "the late reply")
    wait_until(lambda: front.dropped_responses == 1, 5, "the late reply to be dropped")
    assert front.request("ping") == "pong"  # the late reply resolved nothing else
    assert front.dropped_responses == 1


def test_events_flow_both_ways_each_once(harness, pair):
    back, front = pair
    at_back = []
    at_front = []
    back.on_event("frontend_log", lambda payload, message: at_back.append(payload))
    front.on_event("backend_log", lambda payload, message: at_front.append(payload))
    harness.serve(back)
    harness.serve(front)
    for n in range(50):
        front.send_event("frontend_log", n)
        back.send_event("backend_log", n)
    wait_until(lambda: len(at_back) == 50 and len(at_front) == 50, 10, "50 events each way")
    back.poll()
    front.poll()
    assert at_back == list(range(50)) and at_front == list(range(50))


def test_both_peers_are_symmetric_a_backend_can_call_the_frontend(harness, pair):
    back, front = pair
    front.handle("confirm", lambda params, ctx: "yes: " + params)
    harness.serve(front)
    assert back.request("confirm", "overwrite?") == "yes: overwrite?"


def test_close_fails_a_waiting_request_and_later_calls(harness, pair):
    back, front = pair
    outcome = []

    def call():
        try:
            front.request("never", None, timeout=30)
        except PeerClosed as error:
            outcome.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    wait_until(lambda: front._calls, 5, "the request to wait")
    front.close()
    thread.join(5)
    assert len(outcome) == 1
    with pytest.raises(PeerClosed):
        front.request("never")
    with pytest.raises(PeerClosed):
        front.send_event("x")
    assert front.poll() == 0


def test_close_cancels_running_handlers_and_ends_serve(harness, pair):
    back, _ = pair
    started = threading.Event()
    seen = []

    @back.handle("long")
    def long_task(params, ctx):
        started.set()
        seen.append(ctx.sleep(30))
        return "unsent"

    thread = harness.serve(back)
    front_ref = harness.reference_frontend()
    request_id = front_ref.send_request("long", None)
    wait_until(started.is_set, 5, "the handler")
    back.close()
    thread.join(5)
    assert not thread.is_alive()
    wait_until(lambda: seen == [True] and not back._tasks, 5, "the handler to see the close and end")
    out = harness.backend_log()
    assert out.response_to(request_id) is None  # announced shutdown: no reply after it
    assert out.refresh()[-1]["method"] == "backend_shutdown"
    started_at = time.monotonic()
    back.close()  # idempotent
    assert time.monotonic() - started_at < 1
