#!/usr/bin/env bash
# Sets up Blender as a real DCC host for __test__/blender (jest.blender.config.js):
#   1. Debian's `blender` and `xvfb` (and python3-venv), installed with apt when missing;
#   2. a venv made from the Python Blender runs on (/usr/bin/python3, which is "externally
#      managed", PEP 668: pip refuses to install into it), holding ipckit==0.1.12 and ipckit_peer,
#      installed the way docs/dcc.md tells users (the ipckit_peer wheel, built fresh).
# The venv goes to ${IPCKIT_BLENDER_VENV:-<repo>/.blender-venv}. The last line of stdout is its
# site-packages directory: start Blender with PYTHONPATH set to it.
# Exit 3: Blender is missing and this machine cannot install it (neither root nor password-less
# sudo, or no apt-get); the reason is printed. Any other failure: exit 1, with a message.
set -euo pipefail

VERSION="0.1.12"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${IPCKIT_BLENDER_VENV:-$REPO/.blender-venv}"
# The interpreter Blender embeds (Debian's build links the system libpython3).
SYSTEM_PY="${IPCKIT_BLENDER_SYSTEM_PYTHON:-/usr/bin/python3}"

# fail MESSAGE [EXIT_CODE]
fail() {
    echo "setup-blender: $1" >&2
    exit "${2:-1}"
}

missing=()
command -v blender >/dev/null 2>&1 || missing+=(blender)
command -v xvfb-run >/dev/null 2>&1 || missing+=(xvfb)
if [ -x "$SYSTEM_PY" ] && ! "$SYSTEM_PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup-blender: installing ${missing[*]} with apt-get" >&2
    command -v apt-get >/dev/null 2>&1 || fail "${missing[*]} missing, and there is no apt-get to install them" 3
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        # A CI runner's user usually has password-less sudo.
        sudo -n true >/dev/null 2>&1 ||
            fail "${missing[*]} missing, and only root can install them (apt-get install -y ${missing[*]})" 3
        as_root=(sudo -n)
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || fail "apt-get update failed"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
        fail "apt-get install ${missing[*]} failed"
    command -v blender >/dev/null 2>&1 || fail "blender still not on PATH after apt-get install"
fi
blender --version >/dev/null 2>&1 || fail "blender is installed but does not run: $(blender --version 2>&1 | tail -n 3)"

# Which Python does this Blender embed? Its minor version must match the venv's.
blender_py=$(blender -b --factory-startup --python-expr \
    'import sys; print("IPCKIT_PY %d.%d %s" % (sys.version_info[:2] + (sys.prefix,)))' 2>/dev/null |
    sed -n 's/^IPCKIT_PY //p')
[ -n "$blender_py" ] || fail "cannot ask Blender for its Python version"
read -r blender_version blender_prefix <<<"$blender_py"
[ -x "$SYSTEM_PY" ] || fail "$SYSTEM_PY (the Python Blender embeds, prefix $blender_prefix) does not exist"
system_version=$("$SYSTEM_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$system_version" = "$blender_version" ] ||
    fail "Blender embeds Python $blender_version but $SYSTEM_PY is $system_version: set IPCKIT_BLENDER_SYSTEM_PYTHON"

PY="$VENV/bin/python"
if [ ! -x "$PY" ] || [ "$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$blender_version" ]; then
    rm -rf "$VENV"
    "$SYSTEM_PY" -m venv "$VENV" >&2 || fail "cannot create a venv at $VENV from $SYSTEM_PY (apt-get install python3-venv)"
fi
pip_install() {
    "$PY" -m pip install -q --disable-pip-version-check "$@" >&2
}
pip_install "ipckit==$VERSION" || fail "pip could not install ipckit==$VERSION into $VENV"

# ipckit_peer: a wheel built now from python/ (into a temporary directory) by
# scripts/build-python-wheel.js, the wheel `npm pack` ships in python/dist/; without that script, a
# path install from a temporary copy of python/. Neither writes into the checkout.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -f "$REPO/scripts/build-python-wheel.js" ]; then
    wheel=$(node "$REPO/scripts/build-python-wheel.js" --out "$work/dist" | tail -n 1) ||
        fail "scripts/build-python-wheel.js could not build the ipckit_peer wheel"
    pip_install --force-reinstall --no-deps "$wheel" || fail "pip could not install $wheel"
    echo "setup-blender: ipckit_peer from $(basename "$wheel")" >&2
else
    mkdir -p "$work/src" && cp -r "$REPO/python/." "$work/src/"
    rm -rf "$work/src/build" "$work/src/dist" "$work/src"/*.egg-info
    pip_install --force-reinstall --no-deps "$work/src" || fail "pip could not install ipckit_peer from a copy of python/"
    echo "setup-blender: ipckit_peer from a copy of python/" >&2
fi

site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# The proof: Blender itself imports both, with PYTHONPATH as the tests and docs set it.
probe=$(PYTHONPATH="$site" blender -b --factory-startup --python-exit-code 1 --python-expr \
    'import ipckit, ipckit_peer; print("IPCKIT_OK", ipckit.FileChannel.__name__, ipckit_peer.__file__)' 2>&1) ||
    fail "Blender cannot import ipckit and ipckit_peer from $site: $(echo "$probe" | tail -n 5)"
echo "$probe" | grep -q '^IPCKIT_OK ' || fail "Blender did not run the import probe: $(echo "$probe" | tail -n 5)"
echo "$site"
