"""The acknowledgement file: name, content, updates after reads, heartbeats (also while a
handler blocks the polling thread) and removal on close."""

import glob
import json
import os
import re
import socket
import threading

from conftest import wait_until


def read_ack(peer):
    with open(peer.ack_path) as handle:
        return json.load(handle)


def test_the_ack_file_is_published_on_open_with_the_reader_identity(harness):
    peer = harness.backend()
    name = os.path.basename(peer.ack_path)
    assert re.match(r"^frontend_to_backend\.[0-9a-f]{32}\.ack$", name)
    assert name == "frontend_to_backend.%s.ack" % peer.reader_id
    ack = read_ack(peer)
    assert set(ack) == {"last_id", "updated", "pid", "host", "started"}
    assert ack["last_id"] is None
    assert isinstance(ack["updated"], int) and ack["updated"] > 1600000000000
    assert ack["pid"] == os.getpid()
    assert ack["host"] == socket.gethostname()
    frontend = harness.frontend()
    assert os.path.basename(frontend.ack_path).startswith("backend_to_frontend.")
    assert frontend.reader_id != peer.reader_id


def test_the_ack_follows_the_newest_consumed_message_and_is_removed_on_close(harness):
    peer = harness.backend()
    front = harness.reference_frontend()
    harness.serve(peer)
    for n in range(5):
        front.send_event("e", n)
    newest = harness.frontend_log().refresh()[-1]["id"]
    wait_until(lambda: read_ack(peer)["last_id"] == newest, 5, "the ack to reach the newest message")
    peer.close()
    assert not os.path.exists(peer.ack_path)
    assert glob.glob(os.path.join(harness.dir, "*.ack*")) == []


def test_heartbeats_continue_while_a_handler_blocks_the_polling_thread(harness):
    release = threading.Event()
    # An inline executor: the handler runs on the polling thread and blocks it.
    peer = harness.backend(executor=lambda job: job(), heartbeat_interval=0.1)
    started = threading.Event()

    @peer.handle("block")
    def block(params, ctx):
        started.set()
        release.wait(10)
        return "released"

    harness.serve(peer)
    front = harness.reference_frontend()
    request_id = front.send_request("block", None)
    wait_until(started.is_set, 5, "the handler to start")
    first = read_ack(peer)["updated"]
    wait_until(lambda: read_ack(peer)["updated"] > first, 5, "a heartbeat")
    second = read_ack(peer)["updated"]
    wait_until(lambda: read_ack(peer)["updated"] > second, 5, "another heartbeat")
    release.set()
    assert harness.backend_log().wait_response(request_id)["payload"] == "released"


def test_no_temporary_file_is_left_behind(harness):
    peer = harness.backend(heartbeat_interval=0.05)
    first = read_ack(peer)["updated"]
    wait_until(lambda: read_ack(peer)["updated"] > first, 5, "a heartbeat")
    assert not os.path.exists(peer.ack_path + ".tmp")
