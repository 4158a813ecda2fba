"""A long "render" served by ipckit_peer: progress for every frame, and it stops when cancelled.

Usage: python backend.py [channel-dir] [--frame-seconds 0.1]

Runs until Ctrl-C or SIGTERM, then says goodbye to the frontend (backend_shutdown). Pair it with
frontend.mjs in this folder (see README.md). Needs ipckit_peer: pip install ./python (from the
repository root) or pip install ./node_modules/ipckit/python (in a project that uses ipckit).
Source compatible with Python 3.7 (the Python of Maya 2022 and Blender 2.83).
"""

import argparse
import os
import signal
import sys
import tempfile

from ipckit_peer import Peer


def log(text):
    print("backend: " + text, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "dir", nargs="?", default=os.path.join(tempfile.gettempdir(), "ipckit-long-render")
    )
    parser.add_argument(
        "--frame-seconds", type=float, default=0.1, help="how long one frame takes (default 0.1)"
    )
    args = parser.parse_args()

    peer = Peer.backend(args.dir)

    @peer.handle("render")
    def render(params, ctx):
        params = params or {}
        frames = int(params.get("frames", 50))
        scene = params.get("scene", "untitled")
        log("render %s: %d frames (request %s)" % (scene, frames, ctx.id))
        for frame in range(1, frames + 1):
            # The frame's work. ctx.sleep() returns True early when the requester cancels; real
            # work checks ctx.cancelled between steps instead.
            if ctx.sleep(args.frame_seconds):
                log(
                    "render %s: cancelled at frame %d of %d (reason: %s)"
                    % (scene, frame, frames, ctx.cancel_reason)
                )
                # Still answered: the frontend stopped waiting and drops this late reply.
                return {"cancelled": True, "frames_done": frame - 1}
            ctx.progress(frame, total=frames, message="frame %d/%d" % (frame, frames))
        log("render %s: done, %d frames" % (scene, frames))
        return {"frames": frames, "output": "%s_####.exr" % scene}

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    log("serving 'render' on %s (pid %d); Ctrl-C stops" % (args.dir, os.getpid()))
    try:
        peer.serve(poll_interval=0.005)  # announces backend_ready first
    except KeyboardInterrupt:
        pass
    finally:
        peer.close()  # backend_shutdown: the frontend's pending calls fail with EPEERGONE
        log("closed")


if __name__ == "__main__":
    sys.exit(main())
