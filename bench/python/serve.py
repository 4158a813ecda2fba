"""Reference backend for the round-trip benchmark: answers `echo` requests from a 1 ms recv() loop.

Uses ipckit==0.1.12 as a user would. The reference reader repeats messages that share a
millisecond, so requests already answered (by id) are skipped. Prints "ready", serves until
stdin closes.
"""
import argparse
import collections
import sys
import threading
import time

import ipckit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--poll-ms", type=float, default=1.0)
    args = parser.parse_args()

    channel = ipckit.FileChannel.backend(args.dir)
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    seen = set()
    order = collections.deque()
    print("ready", flush=True)
    pause = args.poll_ms / 1000
    while not stop.is_set():
        answered = False
        for msg in channel.recv():
            if msg["id"] in seen or msg["type"] != "request":
                continue
            seen.add(msg["id"])
            order.append(msg["id"])
            if len(order) > 1000:
                seen.discard(order.popleft())
            if msg.get("method") == "echo":
                channel.send_response(msg["id"], msg["payload"])
            else:
                channel.send_error(msg["id"], "unknown method: %s" % msg.get("method"))
            answered = True
        if not answered:
            time.sleep(pause)


if __name__ == "__main__":
    main()
