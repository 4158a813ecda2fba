#!/usr/bin/env bash
# Create (once) a Python venv holding the reference peer ipckit==0.1.12 from PyPI.
# The venv goes to ${IPCKIT_PEER_VENV:-<repo>/.peer-venv}; the last line of stdout
# is the path of its python interpreter.
set -euo pipefail

VERSION="0.1.12"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${IPCKIT_PEER_VENV:-$REPO/.peer-venv}"
PY="$VENV/bin/python"

fail() {
    echo "setup-python-peer: $*" >&2
    exit 1
}

has_peer() {
    [ -x "$PY" ] && "$PY" -c "
import sys
from importlib.metadata import version
import ipckit
sys.exit(version('ipckit') != '$VERSION')
" >/dev/null 2>&1
}

if ! has_peer; then
    command -v python3 >/dev/null 2>&1 || fail "python3 not found on PATH"
    if [ ! -x "$PY" ]; then
        python3 -m venv "$VENV" >&2 ||
            fail "cannot create venv at $VENV (on Debian: apt-get install python3-venv)"
    fi
    "$PY" -m pip install -q --disable-pip-version-check "ipckit==$VERSION" >&2 ||
        fail "pip could not install ipckit==$VERSION into $VENV"
    has_peer || fail "ipckit==$VERSION still not importable from $PY"
fi

echo "$PY"
