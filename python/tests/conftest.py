"""Shared fixtures: channel directories, peers that are always closed, serving threads, and a
reader of a message file that remembers every message once (by id), in file order."""

import json
import os
import threading
import time

import ipckit
import pytest

from ipckit_peer import Peer

BACKEND_OUTBOX = "backend_to_frontend.json"
FRONTEND_OUTBOX = "frontend_to_backend.json"


def wait_until(condition, timeout=10.0, what="the condition"):
    """Polls ``condition`` until it returns something truthy; returns that. Fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(0.001)


class FileLog(object):
    """Every message that has appeared in one message file, each once, in order of appearance."""

    def __init__(self, path):
        self.path = path
        self.messages = []
        self._ids = set()

    def refresh(self):
        try:
            with open(self.path, "rb") as handle:
                snapshot = json.loads(handle.read().decode("utf-8") or "[]")
        except (OSError, ValueError):
            return self.messages
        for message in snapshot:
            if message["id"] not in self._ids:
                self._ids.add(message["id"])
                self.messages.append(message)
        return self.messages

    def events(self, name=None):
        return [
            m for m in self.refresh() if m["type"] == "event" and (name is None or m["method"] == name)
        ]

    def response_to(self, request_id):
        for message in self.refresh():
            if message["type"] == "response" and message["reply_to"] == request_id:
                return message
        return None

    def wait_response(self, request_id, timeout=10.0):
        return wait_until(lambda: self.response_to(request_id), timeout, "the response to %s" % request_id)

    def wait_event(self, name, predicate=lambda m: True, timeout=10.0):
        return wait_until(
            lambda: next((m for m in self.events(name) if predicate(m)), None), timeout, "event %s" % name
        )


class Harness(object):
    def __init__(self, tmp_path):
        self.dir = str(tmp_path / "chan")
        self.peers = []
        self.threads = []

    def backend(self, **options):
        peer = Peer.backend(self.dir, **options)
        self.peers.append(peer)
        return peer

    def frontend(self, **options):
        peer = Peer.frontend(self.dir, **options)
        self.peers.append(peer)
        return peer

    def reference_frontend(self):
        return ipckit.FileChannel.frontend(self.dir)

    def reference_backend(self):
        return ipckit.FileChannel.backend(self.dir)

    def serve(self, peer, poll_interval=0.005):
        """Runs peer.serve() on a thread until the peer is closed (at the latest by cleanup)."""
        errors = []

        def run():
            try:
                peer.serve(poll_interval=poll_interval)
            except BaseException as error:  # pragma: no cover - reported by cleanup
                errors.append(error)

        thread = threading.Thread(target=run, name="serve-%s" % peer.role)
        thread.daemon = True
        thread.start()
        self.threads.append((thread, errors))
        return thread

    def log(self, name):
        return FileLog(os.path.join(self.dir, name))

    def backend_log(self):
        """What the backend wrote (the frontend's inbox)."""
        return self.log(BACKEND_OUTBOX)

    def frontend_log(self):
        """What the frontend wrote (the backend's inbox)."""
        return self.log(FRONTEND_OUTBOX)

    def cleanup(self):
        for peer in self.peers:
            peer.close()
        for thread, errors in self.threads:
            thread.join(10)
            assert not thread.is_alive(), "a serve() thread did not end after close()"
            assert not errors, errors


@pytest.fixture
def harness(tmp_path):
    h = Harness(tmp_path)
    yield h
    h.cleanup()
