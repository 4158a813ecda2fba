"""Reference frontend for the round-trip benchmark: send_request + wait_response, as documented.

Prints one JSON line {"samples_ms": [...]} with the round trips after the warm-up.
"""
import json
import time

import ipckit

from benchlib import parse_args


def main():
    args = parse_args(("--count", int, 100), ("--warmup", int, 5))
    channel = ipckit.FileChannel.frontend(args.dir)
    samples = []
    for i in range(args.warmup + args.count):
        start = time.perf_counter()
        rid = channel.send_request("echo", {"text": "hello", "n": 42, "seq": i})
        response = channel.wait_response(rid, 10000)
        elapsed = (time.perf_counter() - start) * 1000
        if response.get("reply_to") != rid or response["payload"]["seq"] != i:
            raise SystemExit("bad echo for %d: %r" % (i, response))
        if i >= args.warmup:
            samples.append(elapsed)
    print(json.dumps({"samples_ms": samples}), flush=True)


if __name__ == "__main__":
    main()
