"""Contention on one outbox, for the event-loop block benchmark (bench/cases/lock-block.js).

--mode hold    create <stem>.lock in --dir exclusively with this process's PID (as the reference
               writer does), keep it --hold-ms, remove it, wait --gap-ms, again.
--mode hammer  send --size byte events in a loop with the reference writer into the outbox of
               --role (the same outbox as ours), so the lock is taken for every 300 KB-message
               read-modify-replace.
--request-every-ms N  also send an `echo` request every N ms as the reference frontend (into the
               other file), for a Node backend whose replies meet the contention.
Prints "ready" once contending, runs until stdin closes, then prints one JSON line of counts.
"""
import argparse
import json
import os
import sys
import threading
import time

import ipckit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--stem", required=True, help="outbox file name without .json")
    parser.add_argument("--mode", choices=["hold", "hammer"], default="hold")
    parser.add_argument("--hold-ms", type=float, default=500)
    parser.add_argument("--gap-ms", type=float, default=50)
    parser.add_argument("--size", type=int, default=300 * 1024)
    parser.add_argument("--request-every-ms", type=float, default=0)
    args = parser.parse_args()

    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    requester = ipckit.FileChannel.frontend(args.dir) if args.request_every_ms > 0 else None
    counts = {"holds": 0, "sends": 0, "requests": 0, "waitedForLock": 0, "lockTimeouts": 0}
    last_request = [0.0]

    def maybe_request():
        now = time.perf_counter()
        if requester is not None and (now - last_request[0]) * 1000 >= args.request_every_ms:
            last_request[0] = now
            requester.send_request("echo", {"n": counts["requests"]})
            counts["requests"] += 1

    lock_path = os.path.join(args.dir, args.stem + ".lock")
    if args.mode == "hammer":
        role = "backend" if args.stem.startswith("backend") else "frontend"
        writer = getattr(ipckit.FileChannel, role)(args.dir)
        payload = {"data": "x" * max(0, args.size - len('{"data":""}'))}
        print("ready", flush=True)
        while not stop.is_set():
            try:
                writer.send_event("hammer", payload)
            except OSError as error:
                # The reference gives up on the lock after ~500 ms (PROTOCOL.md), and a write of
                # this outbox (100 x 300 KB) can hold it about that long: counted, not fatal.
                if "timed out" not in str(error).lower():
                    raise
                counts["lockTimeouts"] += 1
                continue
            counts["sends"] += 1
            maybe_request()
    else:
        print("ready", flush=True)
        while not stop.is_set():
            try:
                fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                counts["waitedForLock"] += 1
                time.sleep(0.001)
                continue
            os.write(fd, ("%d\n" % os.getpid()).encode())
            os.close(fd)
            counts["holds"] += 1
            end = time.perf_counter() + args.hold_ms / 1000
            while time.perf_counter() < end and not stop.is_set():
                maybe_request()
                time.sleep(0.005)
            os.unlink(lock_path)
            gap_end = time.perf_counter() + args.gap_ms / 1000
            while time.perf_counter() < gap_end and not stop.is_set():
                maybe_request()
                time.sleep(0.005)
    print("@@result " + json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
