"""ipckit_peer: a Python end of the ipckit JSON file channel, built on the reference ``ipckit``.

    from ipckit_peer import Peer

    peer = Peer.backend(channel_dir)

    @peer.handle("render")
    def render(params, ctx):
        for frame in range(params["frames"]):
            if ctx.cancelled:
                return {"cancelled": True}
            ctx.progress(frame + 1, total=params["frames"])
        return {"done": True}

    peer.serve(poll_interval=0.005)

See README.md for the executor (Maya, Blender) and PROTOCOL-EXTENSIONS.md for the wire format.
"""

import sys as _sys

try:
    from ._peer import CANCEL_EVENT, PROGRESS_EVENT, Context, Peer
except ImportError as _error:
    # Without the reference ipckit, only `python -m ipckit_peer` (sys.argv[0] is "-m" while Python
    # imports the package it is about to run) gets the package: __main__ reports what is missing.
    if (getattr(_error, "name", None) or "").split(".")[0] != "ipckit" or _sys.argv[:1] != ["-m"]:
        raise
from .errors import InboxProblem, PeerClosed, PeerError, RemoteError, RequestError, RequestTimeout, WatchProblem
from .executors import MainThreadQueue, ThreadPool

__version__ = "0.1.0"

__all__ = [
    "Peer",
    "Context",
    "MainThreadQueue",
    "ThreadPool",
    "PeerError",
    "PeerClosed",
    "RequestError",
    "RemoteError",
    "RequestTimeout",
    "InboxProblem",
    "WatchProblem",
    "PROGRESS_EVENT",
    "CANCEL_EVENT",
    "__version__",
]
