#!/usr/bin/env bash
# Runs the pytest suite of the Python companion package python/ (ipckit_peer) against the
# reference ipckit==0.1.12: installs pytest, then the package's wheel (built by
# scripts/build-python-wheel.js into a temporary directory, and installed as the README says:
# `pip install --no-index --no-deps <wheel>`, nothing written into the checkout) into the peer
# venv, then runs pytest -q.
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
WHEELS="$(mktemp -d "${TMPDIR:-/tmp}/ipckit-peer-wheel-XXXXXX")"
trap 'rm -rf "$WHEELS"' EXIT
WHEEL="$(node "$REPO/scripts/build-python-wheel.js" --out "$WHEELS" | tail -n 1)" || WHEEL=""
[ -f "$WHEEL" ] || { echo "test-python: could not build the ipckit_peer wheel" >&2; exit 1; }
# --force-reinstall: the version does not change between two runs, the code does.
"$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --force-reinstall "$WHEEL" >&2 ||
    { echo "test-python: pip could not install $WHEEL" >&2; exit 1; }

# From python/tests, so that `import ipckit_peer` finds the installed package, not the source tree.
cd "$REPO/python/tests"
"$PY" -m pytest -q -p no:cacheprovider "$@"
