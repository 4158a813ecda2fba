#!/usr/bin/env python3
"""The reference ipckit peer (PyPI ipckit==0.1.12) as a CLI for interop tests.

Every subcommand prints one JSON object per line on stdout, prints
{"ready": true} once its channel is open, and exits 0 on success. An
exception prints {"error": "<Type>: <text>"} and exits 1.

The reference reader delivers messages that share a millisecond again and
again (see NOTES.md), so `serve` and `recv` handle and print each message id
once and report the repeats as "duplicates" in their closing "done" line.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import ipckit

OUTBOX = {
    "backend": "backend_to_frontend.json",
    "frontend": "frontend_to_backend.json",
}


def emit(obj):
    print(json.dumps(obj), flush=True)


def open_channel(args):
    channel = getattr(ipckit.FileChannel, args.role)(args.dir)
    emit({"ready": True})
    return channel


def fresh(messages, seen):
    """The messages whose id is not in seen; adds their ids to it."""
    new = [m for m in messages if m["id"] not in seen]
    seen.update(m["id"] for m in new)
    return new


def answer(channel, request):
    """Answer one request; returns False if it asked the server to stop."""
    rid, params = request["id"], request["payload"]
    method = request.get("method")
    if method == "echo":
        channel.send_response(rid, params)
    elif method == "add":
        channel.send_response(rid, params["a"] + params["b"])
    elif method == "fail":
        channel.send_error(rid, "failed: " + str(params))
    elif method == "shutdown":
        channel.send_response(rid, {"ok": True})
        return False
    elif method == "emit":
        channel.send_event(params["name"], params.get("payload"))
        channel.send_response(rid, True)
    else:
        channel.send_error(rid, f"unknown method: {method}")
    return True


def serve(args):
    channel = open_channel(args)
    seen, handled, duplicates = set(), 0, 0
    last_seen = time.monotonic()
    running = True
    while running and (args.max is None or handled < args.max):
        batch = channel.recv()
        new = fresh(batch, seen)
        duplicates += len(batch) - len(new)
        if not new:
            if (time.monotonic() - last_seen) * 1000 >= args.idle_exit_ms:
                break
            time.sleep(args.poll_ms / 1000)
            continue
        last_seen = time.monotonic()
        for msg in new:
            emit({"received": msg})
            if msg["type"] != "request":
                continue
            handled += 1
            running = answer(channel, msg)
            if not running or handled == args.max:
                break
    emit({"done": handled, "duplicates": duplicates})


def client(args):
    channel = open_channel(args)
    for _ in range(args.count):
        start = time.perf_counter()
        rid = channel.send_request(args.method, args.params)
        response = channel.wait_response(rid, args.timeout_ms)
        rtt_ms = (time.perf_counter() - start) * 1000
        emit({"response": response, "rtt_ms": rtt_ms})


def send(args):
    if args.kind in ("request", "event") and args.method is None:
        sys.exit(f"send --kind {args.kind} needs --method")
    if args.kind in ("response", "error") and args.reply_to is None:
        sys.exit(f"send --kind {args.kind} needs --reply-to")
    params = args.params
    if args.kind == "error" and not isinstance(params, str):
        params = json.dumps(params)
    channel = open_channel(args)
    for n in range(args.count):
        if args.pause_every and n and n % args.pause_every == 0:
            time.sleep(args.pause_ms / 1000)
        if args.kind == "request":
            sent = channel.send_request(args.method, params)
        elif args.kind == "event":
            sent = channel.send_event(args.method, params)
        elif args.kind == "response":
            sent = channel.send_response(args.reply_to, params)
        else:
            sent = channel.send_error(args.reply_to, params)
        emit({"sent": sent})


def recv(args):
    channel = open_channel(args)
    seen, duplicates = set(), 0
    deadline = time.monotonic() + args.timeout_ms / 1000
    while args.expect is None or len(seen) < args.expect:
        if time.monotonic() >= deadline:
            break
        batch = channel.recv()
        new = fresh(batch, seen)
        duplicates += len(batch) - len(new)
        for msg in new:
            emit({"received": msg})
        if not new:
            time.sleep(args.poll_ms / 1000)
    emit({"done": len(seen), "duplicates": duplicates})
    if args.expect is not None and len(seen) < args.expect:
        sys.exit(1)


def dump(args):
    emit({"messages": open_channel(args).recv()})


def write_fixture(args):
    with tempfile.TemporaryDirectory(prefix="ipckit-fixture-") as tmp:
        args.dir = args.dir or tmp
        channel = open_channel(args)
        rid = channel.send_request("plain", {"b": "x", "a": 1})
        channel.send_request("unicode \u2713\U0001F600", {
            "text": "h\u00e9llo \u2713 \u65e5\u672c \U0001F600\U0001F44D",
            "controls": "\u0001\t\n\r\b\f\u001f\u007f\"\\/",
            "separators": "\u2028\u2029",
            "keys": {"b": 1, "a": 2, "B": 3, "": 4, "\u00e9": 5,
                     "\uff01": 6, "\U0001F600": 7},
        })
        channel.send_request("nested", {
            "z": [{"y": [{"x": [], "w": {}, "v": "bottom"}], "a": 1}],
            "b": [1, 2.5, "s", True, False, None],
        })
        channel.send_request("numbers", {
            "ints": [0, -1, 2**63 - 1, -2**63, 2**64 - 1],
            "floats": [0.1, 1e308, 1e-7, -0.0, 123.456],
        })
        channel.send_event("float-forms", [
            1.0, 1e15, 1e16, 1e21, 2.5e-5, 5e-324, 1.7976931348623157e308,
        ])
        channel.send_response(rid, {"ok": True, "none": None,
                                    "list": [], "obj": {}})
        channel.send_error(rid, "failed: boom")
        channel.send_event("null-payload", None)
        shutil.copyfile(os.path.join(args.dir, OUTBOX[args.role]), args.out)
    with open(args.out, encoding="utf-8") as fixture:
        emit({"ids": [m["id"] for m in json.load(fixture)]})


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help, dir_required=True):
        p = sub.add_parser(name, help=help)
        p.add_argument("--dir", required=dir_required,
                       help="channel directory" if dir_required
                       else "channel directory (default: a temporary one)")
        p.add_argument("--role", required=True, choices=OUTBOX)
        p.set_defaults(func=func)
        return p

    p = command("serve", serve, "answer requests")
    p.add_argument("--poll-ms", type=float, default=1)
    p.add_argument("--max", type=int, help="stop after this many requests")
    p.add_argument("--idle-exit-ms", type=float, default=30000)

    p = command("client", client, "send requests and wait for the responses")
    p.add_argument("--method", required=True)
    p.add_argument("--params", type=json.loads, default="null")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout-ms", type=int, default=5000)

    p = command("send", send, "send messages as fast as possible")
    p.add_argument("--kind", required=True,
                   choices=["request", "event", "response", "error"])
    p.add_argument("--method", help="request method or event name")
    p.add_argument("--params", type=json.loads, default="null",
                   help="payload as JSON; for --kind error the error text "
                        "(a JSON string is used as is)")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--reply-to", help="request id (response, error)")
    p.add_argument("--pause-every", type=int, default=0,
                   help="pause after every N messages (bursts a busy reader can follow)")
    p.add_argument("--pause-ms", type=float, default=20)

    p = command("recv", recv,
                "print new messages; exit 1 if fewer than --expect")
    p.add_argument("--expect", type=int)
    p.add_argument("--timeout-ms", type=float, default=5000)
    p.add_argument("--poll-ms", type=float, default=1)

    command("dump", dump, "print the result of one recv()")

    p = command("write-fixture", write_fixture,
                "copy the outbox bytes of a fixed message set to --out",
                dir_required=False)
    p.add_argument("--out", required=True)
    return parser.parse_args()


def main():
    args = parse_args()
    try:
        args.func(args)
    except Exception as exc:  # reported to the test as a JSON line
        emit({"error": f"{type(exc).__name__}: {exc}"})
        sys.exit(1)


if __name__ == "__main__":
    main()
