"""Reference send throughput with the outbox at its 100-message cap (same work as
bench/cases/throughput.js). Prints one JSON line."""
import json
import shutil
import tempfile
import time

import ipckit

from benchlib import make_payload, parse_args


def main():
    args = parse_args(("--size", int, 1024), ("--duration-ms", float, 1000), ("--cap", int, 100), need_dir=False)

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
