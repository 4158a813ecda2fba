#!/usr/bin/env bash
# Runs the jest suite under every maintained Node.js major that package.json "engines" allows,
# with Node binaries installed from the npm registry (the node-<os>-<arch> packages, which ship
# the official build as bin/node), then prints a pass/fail line per version.
#
# Usage: bash scripts/test-node-versions.sh [jest args...]
#   NODE_MAJORS="20 22 24 26"  the majors to test (default below)
#   IPCKIT_NODE_CACHE=<dir>    where the binaries are kept
#                              (default ${XDG_CACHE_HOME:-$HOME/.cache}/ipckit-node-versions)
#
# The addon must be built first (npm run build): a Node-API addon built once loads in every
# Node version, which is what this checks. The Python interop tests use the venv of
# scripts/setup-python-peer.sh, as in scripts/test-all.sh.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
# Maintained majors on 2026-11: 22 (maintenance LTS), 24 (LTS), 26 (current/LTS). 20 reached
# end of life on 2026-04-30 but engines says ">= 20", so it stays tested until engines drops it.
MAJORS="${NODE_MAJORS:-20 22 24 26}"
CACHE="${IPCKIT_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipckit-node-versions}"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  MINGW* | MSYS* | CYGWIN*) os=win ;;
  *) echo "test-node-versions: unsupported OS $(uname -s)" >&2; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "test-node-versions: unsupported CPU $(uname -m)" >&2; exit 2 ;;
esac
PKG="node-$os-$arch"
if [ "$os" = linux ] && ! ldd --version 2>&1 | grep -qiE 'glibc|gnu libc'; then
  echo "test-node-versions: the $PKG packages are glibc builds; this system has another libc" >&2
  exit 2
fi

ls "$REPO"/ipckit.*.node >/dev/null 2>&1 || {
  echo "test-node-versions: no built addon: run 'npm run build' first" >&2
  exit 2
}
[ -f "$REPO/node_modules/jest/bin/jest.js" ] || {
  echo "test-node-versions: jest is not installed: run 'npm ci' first" >&2
  exit 2
}

# Does engines allow this major? (">= 20" etc.; checked with npm's own semver.)
engines_allow() {
  node -e '
    const semver = require(require.resolve("semver", { paths: [process.argv[3]] }))
    const range = require(process.argv[2]).engines?.node ?? "*"
    process.exit(semver.satisfies(process.argv[1] + ".0.0", range) ? 0 : 1)
  ' "$1" "$REPO/package.json" "$REPO" 2>/dev/null && return 0
  [ -d "$REPO/node_modules/semver" ] && return 1
  node -e '
    // Fallback without semver: only ">= N" ranges.
    const m = /^>=\s*(\d+)/.exec(require(process.argv[2]).engines?.node ?? ">=0")
    process.exit(!m || Number(process.argv[1]) >= Number(m[1]) ? 0 : 1)
  ' "$1" "$REPO/package.json"
}

# The newest published version of $PKG for a major.
latest_of_major() {
  npm view "$PKG@$1" version --json 2>/dev/null | node -e '
    let v = JSON.parse(require("fs").readFileSync(0, "utf8") || "null")
    if (v === null) process.exit(1)
    if (!Array.isArray(v)) v = [v]
    const key = (s) => s.split(".").map(Number)
    v.sort((a, b) => { const x = key(a), y = key(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] })
    console.log(v[v.length - 1])
  '
}

# Installs (once) $PKG@version into the cache; prints the path of its node binary.
install_node() {
  local version=$1 dir="$CACHE/$PKG-$1" exe=bin/node
  [ "$os" = win ] && exe=node.exe
  if [ ! -x "$dir/$exe" ]; then
    mkdir -p "$CACHE/tarballs" "$dir.partial" || return 1
    echo "   installing $PKG@$version from npm into $dir" >&2
    local tarball
    tarball=$(cd "$CACHE/tarballs" && npm pack "$PKG@$version" --json 2>/dev/null |
      node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8"))[0].filename)') || return 1
    tar -xzf "$CACHE/tarballs/$tarball" -C "$dir.partial" --strip-components=1 "package/$exe" || return 1
    rm -f "$CACHE/tarballs/$tarball"
    rm -rf "$dir" && mv "$dir.partial" "$dir" || return 1
  fi
  echo "$dir/$exe"
}

if peer_python=$(bash scripts/setup-python-peer.sh 2>/dev/null | tail -n 1); then
  export IPCKIT_PEER_PYTHON="$peer_python"
else
  echo "test-node-versions: python peer setup failed: the interop tests will fail" >&2
fi

results=()
status=0
for major in $MAJORS; do
  if ! engines_allow "$major"; then
    results+=("node $major: skipped (outside engines)")
    continue
  fi
  echo "== node $major"
  version=$(latest_of_major "$major") || {
    results+=("node $major: FAIL (no $PKG@$major on the npm registry)")
    status=1
    continue
  }
  node_bin=$(install_node "$version") || {
    results+=("node $major: FAIL (could not install $PKG@$version)")
    status=1
    continue
  }
  actual=$("$node_bin" --version)
  report=$(mktemp)
  start=$SECONDS
  # The version's bin directory goes first on PATH so that tests spawning `node` use it too.
  PATH="$(dirname "$node_bin"):$PATH" "$node_bin" "$REPO/node_modules/jest/bin/jest.js" --ci \
    --json --outputFile="$report" "$@" 2>&1 | tail -n 25
  code=${PIPESTATUS[0]}
  # shellcheck disable=SC2016 # JavaScript, not shell, in single quotes
  counts=$(node -e '
    try {
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
      console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped, ` +
        `${r.numFailedTestSuites} of ${r.numTotalTestSuites} suites failed`)
    } catch { console.log("no jest report") }
  ' "$report")
  rm -f "$report"
  if [ "$code" -eq 0 ]; then
    results+=("node $actual: PASS ($counts, $((SECONDS - start)) s)")
  else
    results+=("node $actual: FAIL ($counts, exit $code, $((SECONDS - start)) s)")
    status=1
  fi
done

echo
echo "== summary ($PKG, binaries in $CACHE)"
for line in "${results[@]}"; do echo "  $line"; done
exit $status
