"""The reference's synchronous send_event loop for the burst benchmark: the frontend end of --dir;
prints "ready", waits for a line on stdin, sends --count events of --size bytes of JSON named
'burst' and one 'burst.end' marker, prints one JSON line with its own send time, and exits."""
import argparse
import json
import sys
import time

import ipckit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()

    channel = ipckit.FileChannel.frontend(args.dir)
    overhead = len('{"data":""}')
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    payload = {"data": (alphabet * (args.size // len(alphabet) + 1))[: max(0, args.size - overhead)]}
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
