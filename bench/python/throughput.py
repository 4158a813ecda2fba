"""Reference send throughput with the outbox at its 100-message cap (same work as
bench/cases/throughput.js). Prints one JSON line."""
import argparse
import json
import shutil
import tempfile
import time

import ipckit


def make_payload(size):
    overhead = len('{"data":""}')
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    data = (alphabet * (size // len(alphabet) + 1))[: max(0, size - overhead)]
    return {"data": data}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--duration-ms", type=float, default=1000)
    parser.add_argument("--cap", type=int, default=100)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="ipckit-bench-tput-py-")
    try:
        channel = ipckit.FileChannel.frontend(tmp)
        payload = make_payload(args.size)
        for _ in range(args.cap):
            channel.send_event("fill", payload)
        warm_end = time.perf_counter() + min(0.2, args.duration_ms / 5000)
        while time.perf_counter() < warm_end:
            channel.send_event("warm", payload)
        sent = 0
        t0 = time.perf_counter()
        t1 = t0
        while (t1 - t0) * 1000 < args.duration_ms:
            for _ in range(5):
                channel.send_event("bench", payload)
            sent += 5
            t1 = time.perf_counter()
        seconds = t1 - t0
        print("@@result " + json.dumps({"impl": "python", "size": args.size, "sent": sent, "seconds": seconds,
                          "perSecond": sent / seconds, "usPerSend": seconds * 1e6 / sent}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
