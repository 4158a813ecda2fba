"""Reference backend for the round-trip benchmark: answers `echo` requests from a 1 ms recv() loop.

Uses ipckit==0.1.12 as a user would. The reference reader repeats messages that share a
millisecond, so requests already answered (by id) are skipped. Prints "ready", serves until
stdin closes.
"""
import time

import ipckit

from benchlib import Fresh, parse_args, stop_on_stdin_close


def main():
    args = parse_args(("--poll-ms", float, 1.0))
    channel = ipckit.FileChannel.backend(args.dir)
    stop = stop_on_stdin_close()
    fresh = Fresh("request", keep=1000)
    print("ready", flush=True)
    pause = args.poll_ms / 1000
    while not stop.is_set():
        answered = False
        for msg in fresh(channel.recv()):
            if msg.get("method") == "echo":
                channel.send_response(msg["id"], msg["payload"])
            else:
                channel.send_error(msg["id"], "unknown method: %s" % msg.get("method"))
            answered = True
        if not answered:
            time.sleep(pause)


if __name__ == "__main__":
    main()
