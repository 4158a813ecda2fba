# shellcheck shell=bash disable=SC2154,SC2034 # sets and reads the caller's passed/failed/status/failures
# Counting shared by scripts/test-all.sh and scripts/test-windows.sh (sourced, not run): each function
# adds one run's results to the caller's $passed and $failed, sets status=1 on a failure, and
# appends the names of failed tests to the file $failures, prefixed with a label.

# count_cargo LOG [LABEL] [EXIT_CODE]: the output of `cargo test`. A run that failed without any
# failed test (it did not compile, or a test binary crashed) counts as one failure.
count_cargo() {
  local log=$1 label=${2:-cargo} rc=${3:-0} p f
  read -r p f < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    END { print p + 0, f + 0 }' "$log")
  passed=$((passed + p))
  failed=$((failed + f))
  sed -n "s/^---- \(.*\) stdout ----\$/$label: \1/p" "$log" >>"$failures"
  if [ "$rc" -ne 0 ]; then
    status=1
    if [ "$f" -eq 0 ]; then
      failed=$((failed + 1))
      echo "$label: cargo test failed before reporting a failed test (exit $rc; see its output above)" >>"$failures"
    fi
  fi
}

# count_jest JSON [LABEL]: a jest --json report. A skipped test is not a pass; under CI it is a failure.
count_jest() {
  local json=$1 label=${2:-jest} jp jf jskip
  if [ ! -s "$json" ]; then
    echo "$label produced no report"
    echo "$label: no report" >>"$failures"
    failed=$((failed + 1))
    status=1
    return
  fi
  read -r jp jf jskip < <(node -e '
    const r = require(require("path").resolve(process.argv[1]));
    console.log(r.numPassedTests, r.numFailedTests + r.numRuntimeErrorTestSuites, r.numPendingTests + r.numTodoTests)
  ' "$json")
  node -e '
    const [json, label] = process.argv.slice(1);
    const r = require(require("path").resolve(json));
    for (const s of r.testResults) {
      const file = s.name.split(/[\\/]/).pop();
      if (s.status === "failed" && s.assertionResults.every((a) => a.status !== "failed"))
        console.log(label + ": " + s.name + ": " + String(s.message).split("\n").find((l) => l.trim()))
      for (const a of s.assertionResults)
        if (a.status === "failed") console.log(label + ": " + a.fullName + " (" + file + ")")
    }
  ' "$json" "$label" >>"$failures"
  if [ -z "$jf" ]; then
    echo "$label: unreadable report $json" >>"$failures"
    failed=$((failed + 1))
    status=1
    return
  fi
  passed=$((passed + jp))
  failed=$((failed + jf))
  [ "$jf" -eq 0 ] || status=1
  if [ "${CI:-}" = "true" ] && [ "$jskip" -gt 0 ]; then
    echo "$jskip $label tests were skipped under CI"
    failed=$((failed + jskip))
    status=1
  fi
}
