"""An ipckit backend in Python, with the reference package from PyPI (ipckit==0.1.12).

Serves a few methods to a frontend (examples/node-frontend/frontend.js, an Electron app, or
`npx ipckit send`) and emits events:

    ping                 -> "pong"
    add {"a": 1, "b": 2} -> 3
    info                 -> {"python": "3.11.7", "pid": 1234, "uptime_s": 1.5}
    count {"to": 5}      -> emits a "progress" event per step, then answers {"counted": 5}
    fail                 -> an error response
    shutdown             -> {"ok": true}, then the backend exits

Every 2 seconds it also emits a "heartbeat" event. Usage: python backend.py <channel-dir>
"""
import collections
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version

import ipckit

HEARTBEAT_S = 2.0


class Backend:
    def __init__(self, directory):
        self.channel = ipckit.FileChannel.backend(directory)
        self.started = time.monotonic()
        self.running = True
        # The reference reader returns messages that share a millisecond more than once:
        # remember recent ids and handle each request once.
        self.seen = collections.deque(maxlen=1000)
        self.seen_set = set()

    def fresh(self, message):
        if message["id"] in self.seen_set:
            return False
        if len(self.seen) == self.seen.maxlen:
            self.seen_set.discard(self.seen[0])
        self.seen.append(message["id"])
        self.seen_set.add(message["id"])
        return True

    def answer(self, request):
        method, params, rid = request.get("method"), request.get("payload"), request["id"]
        print(f"backend: <- {method} {params!r}", flush=True)
        if method == "ping":
            self.channel.send_response(rid, "pong")
        elif method == "add":
            self.channel.send_response(rid, params["a"] + params["b"])
        elif method == "info":
            self.channel.send_response(rid, {
                "python": platform.python_version(),
                "pid": os.getpid(),
                "uptime_s": round(time.monotonic() - self.started, 3),
            })
        elif method == "count":
            to = int((params or {}).get("to", 3))
            for step in range(1, to + 1):
                self.channel.send_event("progress", {"step": step, "of": to})
                time.sleep(0.05)
            self.channel.send_response(rid, {"counted": to})
        elif method == "fail":
            self.channel.send_error(rid, "this method always fails")
        elif method == "shutdown":
            self.channel.send_response(rid, {"ok": True})
            self.running = False
        else:
            self.channel.send_error(rid, f"unknown method: {method}")

    def serve(self):
        next_heartbeat = time.monotonic() + HEARTBEAT_S
        while self.running:
            messages = self.channel.recv()
            for message in messages:
                if not self.fresh(message):
                    continue
                if message["type"] == "request":
                    try:
                        self.answer(message)
                    except Exception as error:  # a bad request must not stop the backend
                        self.channel.send_error(message["id"], f"{type(error).__name__}: {error}")
                elif message["type"] == "event":
                    print(f"backend: event {message.get('method')} {message.get('payload')!r}", flush=True)
            if time.monotonic() >= next_heartbeat:
                self.channel.send_event("heartbeat", {"uptime_s": round(time.monotonic() - self.started, 1)})
                next_heartbeat += HEARTBEAT_S
            if not messages:
                time.sleep(0.005)


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "ipckit-example")
    backend = Backend(directory)
    print(f"backend: serving on {directory} (ipckit {version('ipckit')}); Ctrl-C stops", flush=True)
    try:
        backend.serve()
    except KeyboardInterrupt:
        pass
    print("backend: stopped", flush=True)


if __name__ == "__main__":
    main()
