"""Reference idle recv(): the inbox in --dir holds 100 x 1 KB messages; the first recv() drains
them, then recv() is timed while nothing new arrives. Prints one JSON line."""
import json
import time

import ipckit

from benchlib import parse_args


def main():
    args = parse_args(("--duration-ms", float, 1000))
    channel = ipckit.FileChannel.frontend(args.dir)
    f0 = time.perf_counter()
    first = len(channel.recv())
    first_us = (time.perf_counter() - f0) * 1e6
    calls = non_empty = 0
    t0 = time.perf_counter()
    t1 = t0
    while (t1 - t0) * 1000 < args.duration_ms:
        for _ in range(20):
            if channel.recv():
                non_empty += 1
        calls += 20
        t1 = time.perf_counter()
    print(json.dumps({"first": first, "firstRecvUs": first_us, "calls": calls, "nonEmpty": non_empty,
                      "usPerCall": (t1 - t0) * 1e6 / calls}), flush=True)


if __name__ == "__main__":
    main()
