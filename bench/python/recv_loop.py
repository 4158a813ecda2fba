"""A reference reader that does not acknowledge: recv() on the backend end of --dir in a
--poll-ms loop, as a Python backend would. Counts the distinct events named 'burst' (the reference
repeats messages that share a millisecond, so ids are deduplicated) and prints
"done {json}" when the 'burst.end' marker arrives. Prints "ready" first; runs until stdin closes."""
import json
import time

import ipckit

from benchlib import Fresh, parse_args, stop_on_stdin_close


def main():
    args = parse_args(("--poll-ms", float, 1.0))
    channel = ipckit.FileChannel.backend(args.dir)
    stop = stop_on_stdin_close()
    fresh = Fresh("event")
    received = 0
    recvs = 0
    print("ready", flush=True)
    while not stop.is_set():
        recvs += 1
        for msg in fresh(channel.recv()):
            if msg.get("method") == "burst":
                received += 1
            elif msg.get("method") == "burst.end":
                print("done " + json.dumps({"received": received, "expected": msg["payload"]["count"],
                                            "recvCalls": recvs}), flush=True)
        time.sleep(args.poll_ms / 1000)


if __name__ == "__main__":
    main()
