#!/usr/bin/env bash
# The Windows stage: sets up what is missing (scripts/setup-windows.sh), cross-builds the addon
# (scripts/build-windows.sh), then under Wine runs the Rust core's `cargo test` and the jest suites
# that need no Python (jest.windows.config.js, with __test__/windows/) on the official node.exe.
# Python on Windows cannot run here, so interop with the reference peer is tested on Linux only.
#
# Ends with "N passed, N failed". With IPCKIT_REPORT_DIR set (scripts/test-all.sh), also writes
# "passed failed" to $IPCKIT_REPORT_DIR/windows.counts and the failed test names to
# $IPCKIT_REPORT_DIR/windows.failures. Exit codes: 0 all passed, 1 something failed, 3 the stage did
# not run because this machine cannot install its tools (never under CI=true: that is a failure).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# Logs stay after the run (target/ is ignored by git), for a look at what failed.
work=${CARGO_TARGET_DIR:-target}/windows-test-logs
rm -rf "$work" && mkdir -p "$work"
failures="$work/failures.txt"
: >"$failures"
passed=0
failed=0
status=0
# count_cargo, count_jest
# shellcheck source=scripts/test-counts.sh
source scripts/test-counts.sh

finish() {
  if [ -n "${IPCKIT_REPORT_DIR:-}" ]; then
    echo "$passed $failed" >"$IPCKIT_REPORT_DIR/windows.counts"
    cp "$failures" "$IPCKIT_REPORT_DIR/windows.failures"
  fi
  echo "(logs: $work)"
  if [ -s "$failures" ]; then
    echo "== windows: failed"
    cat "$failures"
  fi
  [ "$failed" -eq 0 ] || status=1
  echo "$passed passed, $failed failed"
  exit $status
}
# A step that could not run counts as one failure.
broken() {
  echo "$1"
  echo "windows: $1" >>"$failures"
  failed=$((failed + 1))
  status=1
  finish
}

echo "-- setup"
env_file=$(bash scripts/setup-windows.sh)
rc=$?
env_file=$(tail -n 1 <<<"$env_file")
if [ "$rc" -eq 3 ]; then
  exit 3 # setup-windows.sh said why on stderr
fi
[ "$rc" -eq 0 ] || broken "setup failed (exit $rc; scripts/setup-windows.sh said why above)"
# shellcheck source=/dev/null
source "$env_file"

echo "-- build (x86_64-pc-windows-gnu, release)"
bash scripts/build-windows.sh >"$work/build.log" 2>&1 || {
  tail -n 40 "$work/build.log"
  broken "build failed"
}
tail -n 1 "$work/build.log"

echo "-- cargo test under Wine"
# Test binaries run through Wine; their output goes to a file (Wine console programs and Unix pipes
# do not always mix, see ../shared/windows-under-wine.md). A hung test must not stop the whole CI
# run: the timeout ends it, and libtest's full output (not --quiet) names each finished test and
# each test still running after 60 s.
CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine timeout -k 10 600 \
  cargo test --no-fail-fast --target x86_64-pc-windows-gnu >"$work/cargo.log" 2>&1
cargo_rc=$?
grep -E '^(test result|---- |running [0-9]|error)|has been running for over' "$work/cargo.log" | head -n 60
if [ "$cargo_rc" -eq 124 ] || [ "$cargo_rc" -eq 137 ]; then
  echo "cargo test under Wine did not end within 600 s (the tests still running are named above)"
  wineserver -k 2>/dev/null
fi
count_cargo "$work/cargo.log" "windows cargo" "$cargo_rc"
[ "$cargo_rc" -eq 0 ] || tail -n 60 "$work/cargo.log"

echo "-- jest under Wine ($(basename "$IPCKIT_WINE_NODE"))"
# Never pipe Wine node.exe's stdout or stderr (it dies with EBADF): redirect to files. The timeout
# stops a hung run so the stage still reports; jest's own per-test timeouts come first.
timeout 900 wine "$IPCKIT_WINE_NODE" node_modules/jest/bin/jest.js -c jest.windows.config.js --ci \
  --json --outputFile="$work/jest.json" >"$work/jest.out" 2>"$work/jest.err"
jest_rc=$?
tail -n 60 "$work/jest.err"
[ "$jest_rc" -eq 0 ] || status=1
[ "$jest_rc" -ne 124 ] || echo "jest under Wine timed out after 900 s"
count_jest "$work/jest.json" "windows jest"
finish
