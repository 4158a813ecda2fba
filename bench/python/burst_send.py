"""The reference's synchronous send_event loop for the burst benchmark: the frontend end of --dir;
prints "ready", waits for a line on stdin, sends --count events of --size bytes of JSON named
'burst' and one 'burst.end' marker, prints one JSON line with its own send time, and exits."""
import json
import sys
import time

import ipckit

from benchlib import make_payload, parse_args


def main():
    args = parse_args(("--count", int, 10000), ("--size", int, 1024))
    channel = ipckit.FileChannel.frontend(args.dir)
    payload = make_payload(args.size)
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    for _ in range(args.count):
        channel.send_event("burst", payload)
    channel.send_event("burst.end", {"count": args.count})
    seconds = time.perf_counter() - t0
    print("@@result " + json.dumps({"sent": args.count, "sendSeconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
