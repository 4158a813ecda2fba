"""The Blender backend of __test__/blender/blender.test.js: an ipckit_peer backend serving on
Blender's main thread under `blender -b`, doing real bpy work.

    blender -b --factory-startup --python-exit-code 1 --python backend.py -- <channel dir> [<options JSON>]

Options: {"events": N} sends N events (`filler`) after announcing itself, before serving.
Prints JSON lines on stdout: {"ready": true, "pid"}, then {"started": <request id>, "method",
"pid"} as each handler starts, {"cancel_seen": <request id>, "reason"} when a handler saw its
cancellation, {"stopped": true} after peer.close().
"""

import json
import os
import signal
import sys
import threading
import time

import bpy
from ipckit_peer import Peer

argv = sys.argv[sys.argv.index("--") + 1 :]
channel_dir = argv[0]
options = json.loads(argv[1]) if len(argv) > 1 else {}


def emit(**fields):
    print(json.dumps(fields), flush=True)


# Handlers run inline, on the main thread: under -b, timers never fire and Blender quits when this
# script returns, so serve() keeps the main thread here and the executor runs each job at once.
peer = Peer.backend(channel_dir, executor=lambda job: job())


def handler(method):
    def register(fn):
        def run(params, ctx):
            emit(started=ctx.id, method=method, pid=os.getpid())
            return fn(params or {}, ctx)

        peer.handle(method, run)
        return fn

    return register


@handler("scene")
def scene(params, ctx):
    return {
        "objects": sorted(o.name for o in bpy.data.objects),
        "main_thread": threading.current_thread() is threading.main_thread(),
        "pid": os.getpid(),
    }


@handler("add_cube")
def add_cube(params, ctx):
    bpy.ops.mesh.primitive_cube_add(size=params.get("size", 1.0), location=params.get("location", (0, 0, 0)))
    return len(bpy.data.objects)


@handler("render")
def render(params, ctx):
    """Workbench renders, `frames` of them at `size` x `size`; progress after each."""
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = params.get("size", 64)
    scene.render.resolution_percentage = 100
    frames = params.get("frames", 3)
    for frame in range(1, frames + 1):
        if ctx.cancelled:
            emit(cancel_seen=ctx.id, reason=ctx.cancel_reason)
            return {"cancelled_at": frame}
        scene.frame_set(frame)
        bpy.ops.render.render()
        ctx.progress(frame, total=frames, message="frame %d" % frame)
    return {"frames": frames, "size": scene.render.resolution_x}


@handler("wait_cancel")
def wait_cancel(params, ctx):
    """Runs until cancelled (checking ctx.cancelled), then says so: an event and a line."""
    ctx.progress(0)
    deadline = time.monotonic() + params.get("max_seconds", 60)
    while not ctx.cancelled:
        if time.monotonic() > deadline:
            return {"cancelled": False}
        time.sleep(0.005)
    emit(cancel_seen=ctx.id, reason=ctx.cancel_reason)
    peer.send_event("cancel_seen", {"requestId": ctx.id, "reason": ctx.cancel_reason})
    return {"cancelled": True}


@handler("progress_burst")
def progress_burst(params, ctx):
    for i in range(1, params["count"] + 1):
        ctx.progress(i, total=params["count"])
    return params["count"]


# SIGTERM stops the loop through `finally`, so backend_shutdown is sent (without this handler
# SIGTERM ends Blender at once, and under -b SIGINT does not reach `finally` either).
signal.signal(signal.SIGTERM, signal.default_int_handler)
try:
    peer.start()
    for i in range(options.get("events", 0)):
        peer.send_event("filler", {"n": i})
    emit(ready=True, pid=os.getpid())
    peer.serve()
except KeyboardInterrupt:
    pass
finally:
    peer.close()
    emit(stopped=True)
