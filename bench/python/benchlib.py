"""What the reference-peer benchmark scripts share: their arguments, the end of a run (stdin
closing), the payload of a given JSON size, and the reference reader's repeated messages."""
import argparse
import collections
import sys
import threading

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def parse_args(*options, need_dir=True):
    """Parses --dir (unless need_dir is False) and `options`: (flag, type, default) tuples."""
    parser = argparse.ArgumentParser()
    if need_dir:
        parser.add_argument("--dir", required=True)
    for flag, kind, default in options:
        parser.add_argument(flag, type=kind, default=default)
    return parser.parse_args()


def stop_on_stdin_close():
    """An Event set once stdin closes (the runner's way of ending a peer)."""
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    return stop


def make_payload(size):
    """{"data": "..."} whose compact JSON is `size` bytes."""
    overhead = len('{"data":""}')
    return {"data": (ALPHABET * (size // len(ALPHABET) + 1))[: max(0, size - overhead)]}


class Fresh:
    """Filters recv()'s messages to the ones of `kind` not seen before: the reference reader repeats
    messages that share a millisecond. Remembers the last `keep` ids (all when None)."""

    def __init__(self, kind, keep=None):
        self.kind = kind
        self.keep = keep
        self.seen = set()
        self.order = collections.deque()

    def __call__(self, messages):
        for msg in messages:
            if msg["id"] in self.seen or msg["type"] != self.kind:
                continue
            self.seen.add(msg["id"])
            if self.keep is not None:
                self.order.append(msg["id"])
                if len(self.order) > self.keep:
                    self.seen.discard(self.order.popleft())
            yield msg
