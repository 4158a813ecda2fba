#!/usr/bin/env bash
# Runs the pytest suite of the Python companion package python/ (ipckit_peer) against the
# reference ipckit==0.1.12: installs pytest and the package itself (a path install, as
# `pip install ./node_modules/ipckit/python` does) into the peer venv, then runs pytest -q.
# The python is $IPCKIT_PEER_PYTHON, else the one scripts/setup-python-peer.sh prints.
# The last line of the output is pytest's summary ("N passed in ...", "N failed, N passed in ...").
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${IPCKIT_PEER_PYTHON:-}"
if [ -z "$PY" ]; then
    PY="$(bash "$REPO/scripts/setup-python-peer.sh" | tail -n 1)"
fi

"$PY" -m pip install -q --disable-pip-version-check pytest >&2 ||
    { echo "test-python: pip could not install pytest into $PY's environment" >&2; exit 1; }
"$PY" -m pip install -q --disable-pip-version-check "$REPO/python" >&2 ||
    { echo "test-python: pip could not install $REPO/python" >&2; exit 1; }

# From python/tests, so that `import ipckit_peer` finds the installed package, not the source tree.
cd "$REPO/python/tests"
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
