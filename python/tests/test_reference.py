"""A Peer backend driven by the reference ipckit.FileChannel (0.1.12) as frontend, and a Peer
frontend calling a backend hand-written with the reference API only."""

import os
import socket
import threading
import time

import pytest

from conftest import wait_until
from ipckit_peer import RemoteError, RequestTimeout


def test_handler_result_params_and_context(harness):
    peer = harness.backend()
    seen = []

    @peer.handle("add")
    def add(params, ctx):
        seen.append((ctx.id, ctx.method, ctx.message["type"], ctx.params))
        return {"sum": params["a"] + params["b"], "pair": (1, 2)}

    harness.serve(peer)
    front = harness.reference_frontend()
    out = harness.backend_log()
    request_id = front.send_request("add", {"a": 2, "b": 40})
    response = out.wait_response(request_id)
    assert response["payload"] == {"sum": 42, "pair": [1, 2]}  # a tuple goes out as a list
    assert "error" not in response
    assert seen == [(request_id, "add", "request", {"a": 2, "b": 40})]


def test_exceptions_unknown_methods_and_unsendable_results_become_error_responses(harness):
    peer = harness.backend()

    class RenderError(Exception):
        code = "E_RENDER"

    @peer.handle("fail")
    def fail(params, ctx):
        raise RenderError("camera %s is missing" % params["camera"])

    @peer.handle("bare")
    def bare(params, ctx):
        raise KeyError

    @peer.handle("nan")
    def nan(params, ctx):
        return float("nan")

    harness.serve(peer)
    front = harness.reference_frontend()
    out = harness.backend_log()
    fail_id = front.send_request("fail", {"camera": "cam1"})
    bare_id = front.send_request("bare", None)
    missing_id = front.send_request("missing", {})
    nan_id = front.send_request("nan", {})

    fail_response = out.wait_response(fail_id)
    assert fail_response["payload"] is None
    assert fail_response["error"] == "camera cam1 is missing"
    # The reference API cannot write extra fields, so none are added (no error_code/error_data).
    assert set(fail_response) == {"id", "timestamp", "type", "reply_to", "payload", "error"}
    assert out.wait_response(bare_id)["error"] == "KeyError"
    assert out.wait_response(missing_id)["error"] == "unknown method: missing"
    nan_error = out.wait_response(nan_id)["error"]
    assert "nan" in nan_error and "could not be sent" in nan_error


def test_progress_is_sent_in_order_before_the_response(harness):
    peer = harness.backend()

    @peer.handle("render")
    def render(params, ctx):
        for frame in range(1, params["frames"] + 1):
            ctx.progress(frame, total=params["frames"], message="frame %d" % frame)
        ctx.progress(0.5)  # no total, no message: those fields are left out
        return "rendered"

    harness.serve(peer)
    front = harness.reference_frontend()
    out = harness.backend_log()
    request_id = front.send_request("render", {"frames": 20})
    response = out.wait_response(request_id)
    messages = out.refresh()
    progress = [m for m in messages if m["type"] == "event" and m["method"] == "task.progress"]
    assert [m["payload"] for m in progress] == [
        {"progressToken": request_id, "progress": f, "total": 20, "message": "frame %d" % f} for f in range(1, 21)
    ] + [{"progressToken": request_id, "progress": 0.5}]
    assert messages.index(progress[-1]) < messages.index(response)
    assert response["payload"] == "rendered"


def test_progress_refuses_bad_values(harness):
    peer = harness.backend()
    problems = []

    @peer.handle("bad")
    def bad(params, ctx):
        for args in ((True,), ("1",), (float("inf"),), (1, "10"), (1, None, 5)):
            try:
                ctx.progress(*args)
            except (TypeError, ValueError) as error:
                problems.append(type(error).__name__)
        return len(problems)

    harness.serve(peer)
    front = harness.reference_frontend()
    response = harness.backend_log().wait_response(front.send_request("bad", {}))
    assert response["payload"] == 5
    assert harness.backend_log().events("task.progress") == []


@pytest.mark.parametrize("poll_interval", [0.005, 0.05])
def test_cancel_reaches_a_running_handler_within_its_poll_interval_plus_100ms(harness, poll_interval):
    peer = harness.backend()
    noticed = []

    @peer.handle("bake")
    def bake(params, ctx):
        ctx.progress(0)
        while not ctx.cancelled:
            time.sleep(0.001)
        noticed.append(time.monotonic())
        return {"stopped": True, "reason": ctx.cancel_reason}

    harness.serve(peer, poll_interval=poll_interval)
    front = harness.reference_frontend()
    out = harness.backend_log()
    request_id = front.send_request("bake", {})
    out.wait_event("task.progress", lambda m: m["payload"]["progressToken"] == request_id)
    front.send_event("task.cancel", {"requestId": request_id, "reason": "user pressed Esc"})
    sent = time.monotonic()
    wait_until(lambda: noticed, 5, "the handler to see the cancel")
    assert noticed[0] - sent <= poll_interval + 0.1
    # The handler returned anyway: its response is still sent (the requester drops it as late).
    response = out.wait_response(request_id)
    assert response["payload"] == {"stopped": True, "reason": "user pressed Esc"}


def test_cancel_for_unknown_or_finished_requests_is_ignored(harness):
    peer = harness.backend()
    events = []
    peer.on_event("after", lambda payload, message: events.append(payload))
    peer.handle("quick", lambda params, ctx: "ok")
    harness.serve(peer)
    front = harness.reference_frontend()
    out = harness.backend_log()
    request_id = front.send_request("quick", {})
    out.wait_response(request_id)
    front.send_event("task.cancel", {"requestId": request_id})
    front.send_event("task.cancel", {"requestId": "no-such-request"})
    front.send_event("task.cancel", "not an object")
    front.send_event("after", 1)
    wait_until(lambda: events == [1], 5, "the event after the cancels")
    assert [m for m in out.refresh() if m["type"] == "response"] == [out.response_to(request_id)]


def test_events_reach_handlers_once_with_payload_and_message(harness):
    problems = []
    peer = harness.backend(on_error=problems.append)
    logs = []
    everything = []
    peer.on_event("frontend_log", lambda payload, message: logs.append((payload, message["id"])))
    peer.on_event("*", lambda payload, message: everything.append(message["method"]))

    @peer.on_event("frontend_log")
    def broken(payload, message):
        raise RuntimeError("a raising event handler is reported, not fatal")

    harness.serve(peer)
    front = harness.reference_frontend()
    front.send_event("frontend_log", {"line": "one"})
    front.send_event("other", [1, 2])
    front.send_event("frontend_log", {"line": "two"})
    wait_until(lambda: len(everything) == 3, 5, "three events")
    assert [payload for payload, _ in logs] == [{"line": "one"}, {"line": "two"}]
    assert everything == ["frontend_log", "other", "frontend_log"]
    assert len(problems) == 2 and "frontend_log" in str(problems[0])


def test_backend_ready_and_shutdown_payloads(harness):
    peer = harness.backend()
    peer.handle("zeta", lambda params, ctx: None)
    peer.handle("alpha", lambda params, ctx: None)
    out = harness.backend_log()
    assert out.events() == []  # announced on start, when the handlers are known
    harness.serve(peer)
    ready = out.wait_event("backend_ready")
    assert ready["payload"] == {
        "available_methods": ["alpha", "zeta"],
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    peer.handle("beta", lambda params, ctx: None)  # a method added later is announced again
    again = out.wait_event("backend_ready", lambda m: m["id"] != ready["id"])
    assert again["payload"]["available_methods"] == ["alpha", "beta", "zeta"]
    peer.close()
    shutdown = out.wait_event("backend_shutdown")
    assert shutdown["payload"] == {"pid": os.getpid()}
    assert out.refresh()[-1] == shutdown


def test_frontend_peer_announces_frontend_ready_and_shutdown(harness):
    peer = harness.frontend()
    out = harness.frontend_log()
    peer.poll()
    assert out.wait_event("frontend_ready")["payload"] == {
        "available_methods": [],
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    peer.close()
    assert out.wait_event("frontend_shutdown")["payload"] == {"pid": os.getpid()}


def test_request_to_a_backend_written_with_the_reference_api_only(harness):
    """The reference recv() repeats same-millisecond messages, so this backend answers some
    requests twice; each request() still gets its own answer, the extra ones are dropped."""
    back = harness.reference_backend()
    stop = threading.Event()

    def backend_loop():
        while not stop.is_set():
            for message in back.recv():
                if message["type"] == "request":
                    if message["method"] == "square":
                        back.send_response(message["id"], message["payload"] * message["payload"])
                    elif message["method"] == "slow":
                        back.send_event(
                            "task.progress", {"progressToken": message["id"], "progress": 1, "total": 2}
                        )
                        back.send_response(message["id"], "slow done")
                    else:
                        back.send_error(message["id"], "no method %s" % message["method"])
            time.sleep(0.002)

    thread = threading.Thread(target=backend_loop)
    thread.start()
    try:
        peer = harness.frontend()
        results = {}

        def call(n):
            results[n] = peer.request("square", n, timeout=10)

        callers = [threading.Thread(target=call, args=(n,)) for n in range(20)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        assert results == dict((n, n * n) for n in range(20))
        updates = []
        assert peer.request("slow", None, timeout=10, on_progress=updates.append) == "slow done"
        assert updates == [{"progress": 1, "total": 2}]
        with pytest.raises(RemoteError) as raised:
            peer.request("cube", 3, timeout=10)
        assert raised.value.method == "cube"
        assert raised.value.remote_message == "no method cube"
        assert raised.value.request_id in str(raised.value)
        assert peer.dropped_responses >= 0
    finally:
        stop.set()
        thread.join()


def test_request_timeout_raises_and_tells_the_other_side_to_cancel(harness):
    harness.reference_backend()  # a backend that never answers
    peer = harness.frontend()
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as raised:
        peer.request("render", {"frame": 1}, timeout=0.2)
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 2.0
    error = raised.value
    assert isinstance(error, TimeoutError)
    assert error.method == "render" and error.timeout == 0.2
    assert "render" in str(error) and error.request_id in str(error)
    cancel = harness.frontend_log().wait_event("task.cancel")
    assert cancel["payload"] == {"requestId": error.request_id, "reason": "timeout"}
