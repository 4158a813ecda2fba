#!/usr/bin/env bash
# Sets up what the network-share suite (__test__/shares, jest.shares.config.js) needs: Debian's
# `bindfs` (one directory seen through two FUSE mounts, as two machines see a share: 1 s attribute
# cache, no inotify events across mounts), FUSE itself, and `unshare -u` (a peer with another host
# name). Installs bindfs with apt-get when missing, then proves that two mounts of one directory work
# and unmounts them. The suite mounts its own pairs (and unmounts them in teardown).
# Exit 3: this machine cannot (not root, no /dev/fuse, no apt-get); the reason is printed. Under
# CI=true that is exit 1: the stage must always run, never be skipped.
set -euo pipefail

fail() {
    echo "setup-shares: $1" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
    exit "${2:-1}"
}

if ! command -v bindfs >/dev/null 2>&1; then
    echo "setup-shares: installing bindfs with apt-get" >&2
    command -v apt-get >/dev/null 2>&1 || fail "bindfs is missing and there is no apt-get to install it" 3
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo -n true >/dev/null 2>&1 || fail "bindfs is missing, and only root can install it (apt-get install -y bindfs)" 3
        as_root=(sudo -n)
    fi
    "${as_root[@]}" apt-get update -qq >&2 || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq bindfs >&2 || fail "apt-get install bindfs failed"
fi
[ -e /dev/fuse ] || fail "/dev/fuse is missing: FUSE mounts cannot work here" 3
command -v fusermount >/dev/null 2>&1 || command -v fusermount3 >/dev/null 2>&1 || fail "fusermount is missing (package fuse3)" 3

base=$(mktemp -d)
cleanup() {
    for m in A B; do mountpoint -q "$base/$m" 2>/dev/null && { fusermount -u "$base/$m" 2>/dev/null || umount -l "$base/$m"; }; done
    rm -rf "$base"
}
trap cleanup EXIT
mkdir -p "$base/backing" "$base/A" "$base/B"
bindfs "$base/backing" "$base/A" || fail "bindfs could not mount a directory (FUSE refused; are we root?)" 3
bindfs "$base/backing" "$base/B" || fail "bindfs could not mount a second view of the directory" 3
echo probe >"$base/A/probe"
[ "$(cat "$base/B/probe")" = probe ] || fail "the two bindfs mounts do not show the same directory"
unshare -u true 2>/dev/null || fail "unshare -u (a peer with another host name) is not permitted here" 3
echo "setup-shares: bindfs $(bindfs --version 2>&1 | head -n 1 | awk '{print $NF}'), two mounts of one directory work" >&2
