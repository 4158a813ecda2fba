"""A reference reader that does not acknowledge: recv() on the backend end of --dir in a
--poll-ms loop, as a Python backend would. Counts the distinct events named 'burst' (the reference
repeats messages that share a millisecond, so ids are deduplicated) and prints
"done {json}" when the 'burst.end' marker arrives. Prints "ready" first; runs until stdin closes."""
import argparse
import json
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
    received = 0
    recvs = 0
    print("ready", flush=True)
    while not stop.is_set():
        recvs += 1
        for msg in channel.recv():
            if msg["id"] in seen or msg["type"] != "event":
                continue
            seen.add(msg["id"])
            if msg.get("method") == "burst":
                received += 1
            elif msg.get("method") == "burst.end":
                print("done " + json.dumps({"received": received, "expected": msg["payload"]["count"],
                                            "recvCalls": recvs}), flush=True)
        time.sleep(args.poll_ms / 1000)


if __name__ == "__main__":
    main()
