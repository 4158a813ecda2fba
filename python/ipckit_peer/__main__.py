"""``python -m ipckit_peer [--json]``: is ipckit_peer ready in this Python, and from where?

Prints the ipckit_peer version and directory, this Python's executable and version, and the
reference ``ipckit`` package's version and directory, or why it does not import (then also
``sys.path``). Exits 0 when both import, 1 when not. ``--json``: the same as one JSON object.
From a host's script console (no ``-m`` there): ``from ipckit_peer.__main__ import report``.
"""

import json
import os
import sys

import ipckit_peer


def _where(module):
    return os.path.dirname(os.path.abspath(module.__file__))


def report():
    """What ``python -m ipckit_peer --json`` prints, as a dict; ``report()["ok"]`` says ready."""
    info = {
        "ok": False,
        "ipckit_peer": {"version": ipckit_peer.__version__, "location": _where(ipckit_peer)},
        "python": {"executable": sys.executable, "version": sys.version.split()[0]},
        "ipckit": None,
        "sys_path": list(sys.path),
    }
    try:
        import ipckit
    except Exception as error:  # ImportError, or a native module that fails to load
        info["ipckit"] = {"error": "%s: %s" % (type(error).__name__, error)}
        return info
    info["ipckit"] = {"version": getattr(ipckit, "__version__", None), "location": _where(ipckit)}
    try:
        from ipckit_peer import _peer  # noqa: F401 -- what `from ipckit_peer import Peer` needs
    except Exception as error:
        info["ipckit_peer"]["error"] = "%s: %s" % (type(error).__name__, error)
        return info
    info["ok"] = True
    return info


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if any(arg not in ("--json",) for arg in args):
        sys.stderr.write("usage: python -m ipckit_peer [--json]\n")
        return 2
    info = report()
    if "--json" in args:
        print(json.dumps(info, indent=2))
        return 0 if info["ok"] else 1
    peer, ipckit = info["ipckit_peer"], info["ipckit"]
    print("ipckit_peer %s in %s" % (peer["version"], peer["location"]))
    print("python %s at %s" % (info["python"]["version"], info["python"]["executable"]))
    if "error" in ipckit:
        print("ipckit: cannot import (%s)" % ipckit["error"])
        print("  install the reference ipckit (PyPI: ipckit) where this Python looks; sys.path:")
        for entry in info["sys_path"]:
            print("    %s" % (entry or "''"))
    else:
        print("ipckit %s in %s" % (ipckit["version"], ipckit["location"]))
        if "error" in peer:
            print("ipckit_peer: cannot import (%s)" % peer["error"])
    print("ready" if info["ok"] else "not ready")
    return 0 if info["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
