#!/usr/bin/env bash
# Cross-compiles the addon for Windows x64 with MinGW: ipckit.win32-x64-gnu.node in the repo root,
# which lib/native.js loads on Windows when no MSVC binary is present. Published Windows binaries
# stay MSVC (built on Windows runners by the release workflow); this one is for testing under Wine.
# Extra arguments go to `napi build` (e.g. none for release, or drop --release by passing --profile dev).
set -euo pipefail
cd "$(dirname "$0")/.."

# Only the build tools (mingw-w64, the rustup target, the libnode stub); quick when all are there.
env_file=$(bash scripts/setup-windows.sh --build | tail -n 1)
# shellcheck source=/dev/null
source "$env_file"

# --no-js: keep the generated binding.js (it is made by the Linux build and is the same for all
# targets). The type definitions are always generated; send them into target/ so neither
# binding.d.ts nor the hand-written index.d.ts is touched.
npx napi build --platform --release --target x86_64-pc-windows-gnu --no-js \
    --dts target/x86_64-pc-windows-gnu/binding.d.ts "$@"
ls -l ipckit.win32-x64-gnu.node
