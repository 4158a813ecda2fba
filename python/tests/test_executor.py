"""The pluggable executor: handlers on a fake "main thread" (queued, or blocking like Maya's
executeInMainThreadWithResult), everything on one thread driven by a host timer, the default
pool keeping polling alive during a long handler."""

import os
import sys
import threading
import time
import types
import warnings

import pytest

from conftest import wait_until
from ipckit_peer import MainThreadQueue


class FakeMainThread(object):
    """A thread that runs queued calls one by one, like a DCC's main thread."""

    def __init__(self):
        self.queue = MainThreadQueue()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="fake-main")
        self.thread.daemon = True
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.queue.run_pending(timeout=0.05)

    def execute_with_result(self, job):
        """Blocks the caller until the main thread ran ``job`` (executeInMainThreadWithResult)."""
        done = threading.Event()
        box = []

        def wrapped():
            try:
                box.append(job())
            finally:
                done.set()

        self.queue(wrapped)
        done.wait()
        return box[0] if box else None

    def close(self):
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def main_thread():
    fake = FakeMainThread()
    yield fake
    fake.close()


def test_handlers_run_on_the_executor_thread_queued(main_thread, harness):
    peer = harness.backend(executor=main_thread.queue)
    ran_on = []

    @peer.handle("where")
    def where(params, ctx):
        ran_on.append(threading.current_thread().name)
        return "main"

    harness.serve(peer)
    front = harness.reference_frontend()
    out = harness.backend_log()
    ids = [front.send_request("where", None) for _ in range(3)]
    for request_id in ids:
        assert out.wait_response(request_id)["payload"] == "main"
    assert ran_on == ["fake-main"] * 3


def test_a_blocking_main_thread_executor_still_sees_cancellation(main_thread, harness):
    peer = harness.backend(executor=main_thread.execute_with_result)
    noticed = []

    @peer.handle("bake")
    def bake(params, ctx):
        assert threading.current_thread().name == "fake-main"
        ctx.progress(0)
        while not ctx.cancelled:  # the serve thread is blocked in the executor meanwhile
            time.sleep(0.001)
        noticed.append(time.monotonic())
        return "stopped"

    harness.serve(peer, poll_interval=0.005)
    front = harness.reference_frontend()
    out = harness.backend_log()
    request_id = front.send_request("bake", None)
    out.wait_event("task.progress")
    front.send_event("task.cancel", {"requestId": request_id})
    sent = time.monotonic()
    wait_until(lambda: noticed, 5, "the cancel")
    assert noticed[0] - sent <= 0.005 + 0.1
    assert out.wait_response(request_id)["payload"] == "stopped"


def test_host_timer_mode_everything_on_one_thread(harness):
    """No serve thread: the host calls poll() from its timer, handlers run inline."""
    peer = harness.backend(executor=lambda job: job())
    events = []
    peer.on_event("log", lambda payload, msg: events.append(threading.current_thread().name))
    cancel_seen = []

    @peer.handle("long")
    def long_task(params, ctx):
        ctx.progress(1)
        cancel_seen.append(ctx.sleep(10))  # nobody else polls: ctx reads the inbox itself
        return "done"

    front = harness.reference_frontend()
    out = harness.backend_log()
    request_id = front.send_request("long", None)
    front.send_event("log", "before")

    def canceller():
        out.wait_event("task.progress")
        front.send_event("task.cancel", {"requestId": request_id, "reason": "stop"})

    thread = threading.Thread(target=canceller)
    thread.start()
    me = threading.current_thread().name
    def host_timer_tick():
        peer.poll()
        return out.response_to(request_id)

    wait_until(host_timer_tick, 10, "the request to finish")
    thread.join()
    assert cancel_seen == [True]
    assert events == [me]
    assert out.response_to(request_id)["payload"] == "done"


def test_the_default_pool_keeps_polling_while_a_handler_runs(harness):
    peer = harness.backend()
    release = threading.Event()
    events = []
    peer.handle("block", lambda params, ctx: release.wait(10) and "released")
    peer.handle("quick", lambda params, ctx: "quick")
    peer.on_event("e", lambda payload, msg: events.append(payload))
    harness.serve(peer)
    front = harness.reference_frontend()
    out = harness.backend_log()
    blocked = front.send_request("block", None)
    quick = front.send_request("quick", None)
    front.send_event("e", 1)
    assert out.wait_response(quick)["payload"] == "quick"
    wait_until(lambda: events == [1], 5, "the event")
    assert out.response_to(blocked) is None
    release.set()
    assert out.wait_response(blocked)["payload"] == "released"


def test_a_cancel_that_arrives_before_the_handler_starts_skips_it(main_thread, harness):
    hold = threading.Event()
    peer = harness.backend(executor=main_thread.queue)
    ran = []
    main_thread.queue(lambda: hold.wait(10))  # the main thread is busy
    peer.handle("job", lambda params, ctx: ran.append(params))
    harness.serve(peer)
    front = harness.reference_frontend()
    out = harness.backend_log()
    request_id = front.send_request("job", 1)
    front.send_event("task.cancel", {"requestId": request_id, "reason": "changed my mind"})
    wait_until(lambda: peer._tasks.get(request_id) and peer._tasks[request_id]._cancel.is_set(), 5, "the cancel")
    hold.set()
    response = out.wait_response(request_id)
    assert response["error"] == "cancelled before it started: changed my mind"
    assert ran == []


def test_a_concurrent_futures_executor_is_accepted(harness):
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mine")
    try:
        peer = harness.backend(executor=pool)
        peer.handle("where", lambda params, ctx: threading.current_thread().name.startswith("mine"))
        harness.serve(peer)
        front = harness.reference_frontend()
        assert harness.backend_log().wait_response(front.send_request("where", None))["payload"] is True
    finally:
        pool.shutdown()


def test_a_peer_without_an_executor_inside_a_host_warns(harness, monkeypatch):
    monkeypatch.setitem(sys.modules, "bpy", types.ModuleType("bpy"))
    with pytest.warns(RuntimeWarning, match="inside Blender"):
        harness.backend()
    # With an executor (the host's main thread), nothing to warn about.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        harness.backend(executor=lambda job: job())


def test_ctrl_c_ends_a_backend_whose_handler_never_looks_at_cancelled(harness):
    import signal
    import subprocess

    script = (
        "import sys, time, ipckit_peer\n"
        "peer = ipckit_peer.Peer.backend(sys.argv[1])\n"
        "def stuck(params, ctx):\n"
        "    print('started', flush=True)\n"
        "    time.sleep(3600)\n"
        "peer.handle('stuck', stuck)\n"
        "try:\n"
        "    peer.serve()\n"
        "except KeyboardInterrupt:\n"
        "    pass\n"
        "finally:\n"
        "    peer.close()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, harness.dir], stdout=subprocess.PIPE)
    try:
        wait_until(lambda: os.path.exists(os.path.join(harness.dir, "frontend_to_backend.json")))
        harness.reference_frontend().send_request("stuck", None)
        assert child.stdout.readline().strip() == b"started"
        child.send_signal(signal.SIGINT)
        # It ends now, not when the handler would have (an hour from now).
        assert child.wait(timeout=20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
