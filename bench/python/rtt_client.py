"""Reference frontend for the round-trip benchmark: send_request + wait_response, as documented.

Prints one JSON line {"samples_ms": [...]} with the round trips after the warm-up.
"""
import argparse
import json
import time

import ipckit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

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
