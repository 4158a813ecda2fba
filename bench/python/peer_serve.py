"""ipckit_peer backend for the companion benchmark: Peer.backend + handle("echo") + serve().

Uses the companion from this repository's python/ directory (not an installed copy), so the
benchmark measures the tree it runs in; IPCKIT_BENCH_PEER_PATH names another directory holding an
ipckit_peer package instead (to measure an older copy: before/after comparisons). Prints "ready wake_mode=<mode>" once serving and
"wake_mode=<mode>" when stdin closes (the mode may change while it runs: a watcher that dies falls
back to polling), then closes the peer and exits. --poll-interval is serve()'s argument.
"""
import argparse
import os
import sys
import threading

sys.path.insert(
    0,
    os.environ.get("IPCKIT_BENCH_PEER_PATH")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"),
)

from ipckit_peer import Peer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--poll-interval", type=float, default=0.005)
    args = parser.parse_args()

    peer = Peer.backend(args.dir, on_error=lambda error: print("peer error: %s" % error, file=sys.stderr))
    peer.handle("echo", lambda params, ctx: params)

    def wake_mode():
        # Before the watcher existed the companion always polled.
        return getattr(peer, "wake_mode", "poll")

    def watch_stdin():
        sys.stdin.read()
        mode = wake_mode()
        peer.close()  # first: a parent that is gone (stdout closed too) must not leave us serving
        try:
            print("wake_mode=%s" % mode, flush=True)
        except OSError:
            pass

    threading.Thread(target=watch_stdin, daemon=True).start()
    peer.start()
    print("ready wake_mode=%s" % wake_mode(), flush=True)
    peer.serve(poll_interval=args.poll_interval)


if __name__ == "__main__":
    main()
