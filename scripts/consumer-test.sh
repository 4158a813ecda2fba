#!/usr/bin/env bash
# Consumer test: the package as a user gets it from npm.
#
#   1. checks the tarball's file list (npm pack --dry-run --json): everything needed is there,
#      including the .node for this platform, and nothing else (no tests, build output, ...);
#   2. packs it, installs the tarball into a fresh temporary project with no dev dependencies;
#   3. require('ipckit') (CommonJS), import { FileChannel } from 'ipckit' (ESM), each doing a
#      real frontend/backend round trip, and the `ipckit` command from node_modules/.bin;
#   4. tsc --noEmit --strict on a small usage.ts (module/moduleResolution node16), with the
#      TypeScript of this repository's node_modules;
#   5. the Python companion as the README installs it into a host's Python: the wheel shipped in
#      node_modules/ipckit/python/dist/ installed with `pip install --no-index --no-deps --target`
#      by /usr/bin/python3 (Debian's is "externally managed", PEP 668; else python3), the reference
#      ipckit into the same directory from a downloaded wheel (--no-index --find-links), then
#      `python -m ipckit_peer` with PYTHONPATH set to it (first without ipckit: it must fail);
#      nothing may be written into node_modules/ipckit/python (made read-only).
#      The ipckit wheel comes from PyPI (pip download), or from $IPCKIT_WHEELHOUSE when set
#      (a directory holding ipckit-0.1.12-*.whl: then no network at all).
#
# Usage: bash scripts/consumer-test.sh [package-dir]   (default: this repository)
# KEEP_TMP=1 keeps the temporary directory for a look afterwards. Exits non-zero on any failure.
# Outside CI, a machine with no Python (with pip) skips step 5 with a warning; under CI=true it fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG_DIR="$(cd "${1:-$REPO}" && pwd)"
TSC="$REPO/node_modules/typescript/bin/tsc"
TYPE_ROOTS="$REPO/node_modules/@types"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ipckit-consumer-XXXXXX")"
STEP=""

cleanup() {
  # Step 5 makes the installed python/ folder read-only; rm -rf needs it writable again.
  [ ! -d "$WORK/app/node_modules/ipckit/python" ] || chmod -R u+w "$WORK/app/node_modules/ipckit/python" 2>/dev/null || true
  if [ "${KEEP_TMP:-}" = "1" ]; then echo "consumer: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "consumer: FAILED at step: $STEP" >&2' ERR

step() {
  STEP="$1"
  echo "== consumer: $1"
}

fail() {
  echo "consumer: FAILED at step: $STEP: $*" >&2
  exit 1
}

export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

step "check the tarball's file list (npm pack --dry-run --json; its prepack builds the Python wheel)"
# The addon file napi-rs names for this machine: ipckit.<platform>-<arch>[-gnu|-musl|-msvc].node
# shellcheck disable=SC2016 # JavaScript, not shell, in single quotes
NODE_FILE="$(node -e '
  let abi = ""
  if (process.platform === "linux") abi = process.report.getReport().header.glibcVersionRuntime ? "-gnu" : "-musl"
  else if (process.platform === "win32") abi = "-msvc"
  console.log(`ipckit.${process.platform}-${process.arch}${abi}.node`)
')"
[ -f "$PKG_DIR/$NODE_FILE" ] || fail "$PKG_DIR/$NODE_FILE is not built: run 'npm run build' first"
# Not --ignore-scripts: the prepack script (scripts/build-python-wheel.js) builds
# python/dist/ipckit_peer-<version>-py3-none-any.whl, which the tarball must hold.
(cd "$PKG_DIR" && npm pack --dry-run --json 2>"$WORK/prepack.log") >"$WORK/dry-run.json" || {
  cat "$WORK/prepack.log" >&2
  fail "npm pack --dry-run failed (or its prepack script: the Python wheel's build)"
}
sed -n 's/^build-python-wheel: /   prepack: /p' "$WORK/prepack.log"
node - "$WORK/dry-run.json" "$NODE_FILE" "$PKG_DIR/package.json" <<'EOF'
const fs = require('node:fs')
const [report, nodeFile, pkgPath] = process.argv.slice(2)
const files = JSON.parse(fs.readFileSync(report, 'utf8'))[0].files.map((f) => f.path.replace(/\\/g, '/'))
const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'))
// A package that ships Cargo.toml builds from source when no prebuilt binary matches
// (scripts/install.js): then the Rust sources are needed too, and nothing else of src/.
const sourceBuild = files.includes('Cargo.toml')

const required = ['package.json', 'README.md', 'LICENSE', 'index.js', 'index.mjs', 'index.d.ts',
  'binding.js', 'binding.d.ts', nodeFile, ...Object.values(typeof pkg.bin === 'string' ? { ipckit: pkg.bin } : pkg.bin ?? {}).map((p) => p.replace(/^\.\//, ''))]
if (sourceBuild) required.push('Cargo.lock', 'src/lib.rs')
const forbidden = [/^src\//, /^target\//, /^__test__\//, /^node_modules\//, /^bench\//, /^fuzz\//,
  /^\.peer-venv\//, /^\.ci\//, /^\.github\//, /^examples\//, /^npm\//, /^artifacts\//, /\.tgz$/,
  /(^|\/)\.env/, /^jest\.config/, /^package-lock\.json$/,
  /^python\/(build|tests)\//, /\.egg-info(\/|$)/, /__pycache__/, /\.pyc$/]
const allowed = [/^package\.json$/, /^[A-Z][A-Z0-9_-]*(\.md)?$/, /^[A-Za-z0-9_-]+\.md$/,
  /^index\.(js|mjs|d\.ts|d\.mts)$/, /^binding\.(js|d\.ts)$/, /^ipckit\.[a-z0-9-]+\.node$/,
  /^bin\/[^/]+\.js$/, /^lib\/.+\.(js|cjs|mjs|d\.ts|d\.mts|json)$/,
  // The Python companion package: its sources, without tests, and its wheel (built by prepack).
  /^python\/(pyproject\.toml|README\.md|ipckit_peer\/[a-z0-9_]+\.py)$/, /^python\/dist\/ipckit_peer-[^/]+-py3-none-any\.whl$/]
if (sourceBuild) allowed.push(/^src\/.+\.rs$/, /^build\.rs$/, /^Cargo\.(toml|lock)$/, /^scripts\/install\.js$/)

const problems = []
for (const file of required) if (!files.includes(file)) problems.push(`missing: ${file}`)
const wheels = files.filter((file) => /^python\/dist\/.+\.whl$/.test(file))
if (wheels.length !== 1) problems.push(`expected one python/dist/ipckit_peer-*.whl, found: ${wheels.join(', ') || 'none'}`)
for (const file of files) {
  const sourceFile = sourceBuild && (/^src\/.+\.rs$/.test(file))
  if (!sourceFile && forbidden.some((re) => re.test(file))) problems.push(`must not be packed: ${file}`)
  else if (!allowed.some((re) => re.test(file))) problems.push(`unexpected: ${file}`)
}
const size = JSON.parse(fs.readFileSync(report, 'utf8'))[0]
console.log(`   ${files.length} files, ${(size.size / 1024).toFixed(0)} KiB packed, ${(size.unpackedSize / 1024).toFixed(0)} KiB unpacked` +
  (sourceBuild ? ' (with the Rust sources for the build-from-source fallback)' : ''))
console.log(files.map((f) => `     ${f}`).join('\n'))
if (problems.length) {
  console.error(`the tarball's file list is wrong (package.json "files"):\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
EOF

step "npm pack"
# --ignore-scripts: the dry run's prepack has just built the wheel.
TARBALL="$(cd "$PKG_DIR" && npm pack --json --ignore-scripts --pack-destination "$WORK" 2>/dev/null |
  node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8"))[0].filename)')"
TARBALL="$WORK/$(basename "$TARBALL")"
[ -f "$TARBALL" ] || fail "npm pack did not produce $TARBALL"
echo "   $TARBALL ($(wc -c <"$TARBALL") bytes)"

step "install the tarball into a fresh project (--omit=dev)"
APP="$WORK/app"
mkdir -p "$APP"
cd "$APP"
npm init -y >/dev/null
npm install --omit=dev --no-audit --no-fund "$TARBALL" >"$WORK/install.log" 2>&1 || {
  cat "$WORK/install.log"
  fail "npm install of the tarball failed"
}
[ -f "node_modules/ipckit/$NODE_FILE" ] || fail "node_modules/ipckit/$NODE_FILE was not installed"
[ ! -e node_modules/ipckit/target ] || fail "the install built from source although a prebuilt binary was packed"
# No dependencies: node_modules holds ipckit alone (and .bin, .package-lock.json).
others="$(find node_modules -mindepth 1 -maxdepth 1 ! -name ipckit ! -name .bin ! -name .package-lock.json)"
[ -z "$others" ] || fail "unexpected packages installed with ipckit: $others"
echo "   installed ipckit@$(node -p 'require("ipckit/package.json").version') and nothing else"

CHANNEL="$WORK/channel"

step "CommonJS: require('ipckit') and a frontend/backend round trip"
node -e '
  const assert = require("node:assert")
  const { FileChannel, MAX_PAYLOAD_DEPTH } = require("ipckit")
  assert.strictEqual(typeof MAX_PAYLOAD_DEPTH, "number")
  assert.ok(require.resolve("ipckit").includes("node_modules"), "resolved outside node_modules")
  const dir = process.argv[1]
  const backend = FileChannel.backend(dir).serve({ add: ({ a, b }) => a + b, fail: () => { throw new Error("nope") } })
  const frontend = FileChannel.frontend(dir)
  ;(async () => {
    assert.strictEqual(await frontend.request("add", { a: 2, b: 40 }, { timeoutMs: 5000 }), 42)
    await assert.rejects(frontend.request("fail", null, { timeoutMs: 5000 }), { code: "EREMOTE", message: /nope/ })
    // (The backend'"'"'s handlers announce themselves first: a backend_ready event.)
    const event = new Promise((resolve) => frontend.on("event", (m) => m.method === "done" && resolve(m)))
    backend.sendEvent("done", { ok: true })
    assert.deepStrictEqual((await event).payload, { ok: true })
    frontend.close()
    backend.close()
    console.log("   require: round trip, error response and event OK")
  })().catch((error) => { console.error(error); process.exit(1) })
' "$CHANNEL-cjs"

step "ESM: import { FileChannel } from 'ipckit' and a round trip"
cat >"$APP/esm-test.mjs" <<'EOF'
import assert from 'node:assert'
import ipckit, { FileChannel, MAX_PAYLOAD_DEPTH } from 'ipckit'

assert.strictEqual(ipckit.FileChannel, FileChannel, 'default and named exports differ')
assert.strictEqual(typeof MAX_PAYLOAD_DEPTH, 'number')
const dir = process.argv[2]
const backend = FileChannel.backend(dir).serve({ echo: (params) => params })
const frontend = FileChannel.frontend(dir)
const payload = { text: 'héllo ✓', list: [1, 2, 3] }
assert.deepStrictEqual(await frontend.request('echo', payload, { timeoutMs: 5000 }), payload)
frontend.close()
backend.close()
console.log('   import: round trip OK')
EOF
node "$APP/esm-test.mjs" "$CHANNEL-esm"

step "the ipckit command from node_modules/.bin"
[ -x node_modules/.bin/ipckit ] || fail "node_modules/.bin/ipckit is missing"
VERSION="$(node_modules/.bin/ipckit --version)"
[ "$VERSION" = "$(node -p 'require("ipckit/package.json").version')" ] || fail "ipckit --version printed '$VERSION'"
node -e '
  const { FileChannel } = require("ipckit")
  const backend = FileChannel.backend(process.argv[1]).serve({ ping: (p) => ({ pong: p }) })
  const { execFile } = require("node:child_process")
  execFile("node_modules/.bin/ipckit", ["send", process.argv[1], "ping", "7", "--compact"], (error, stdout, stderr) => {
    backend.close()
    if (error || stdout !== "{\"pong\":7}\n") { console.error("ipckit send:", error, stdout, stderr); process.exit(1) }
    console.log("   ipckit --version and ipckit send OK")
  })
' "$CHANNEL-bin"

step "TypeScript: tsc --noEmit --strict (module and moduleResolution node16)"
[ -f "$TSC" ] || fail "no TypeScript at $TSC: run npm install in $REPO"
cat >"$APP/usage.ts" <<'EOF'
import { FileChannel, MAX_PAYLOAD_DEPTH } from 'ipckit'
import type { ChannelMessage, ChannelOptions, IpcError, JsonValue } from 'ipckit'

const options: ChannelOptions = { maxMessages: 100, lockTimeoutMs: 500, staleLockMs: 5000 }
const depth: number = MAX_PAYLOAD_DEPTH

export async function usage(dir: string): Promise<number> {
  const backend = FileChannel.backend(dir, options)
  backend.serve({ add: (params: { a: number; b: number }) => params.a + params.b })
  backend.handle('echo', (params: JsonValue, message: ChannelMessage) => (message.id ? params : null))

  const frontend: FileChannel = FileChannel.frontend(dir)
  const role: 'frontend' | 'backend' = frontend.role
  const sum = await frontend.request<number>('add', { a: 1, b: 2 }, { timeoutMs: 1000 })

  const id: string = frontend.sendRequest('echo', [1, 'two', { three: 3 }])
  const response: ChannelMessage = await frontend.waitResponse(id, 1000)
  const replyTo: string | undefined = response.replyTo
  const error: string | undefined = response.error

  frontend.on('event', (message) => {
    const name: string | undefined = message.method
    console.log(name, message.payload, replyTo, error, role, depth)
  })
  frontend.on('error', (problem: IpcError) => console.error(problem.code))
  const received: ChannelMessage[] = frontend.recv()
  const one: ChannelMessage | null = frontend.recvOne()

  const controller = new AbortController()
  for await (const message of frontend.messages({ signal: controller.signal })) {
    const type: 'request' | 'response' | 'event' = message.type
    console.log(type)
    break
  }

  // @ts-expect-error the role is read-only
  frontend.role = 'backend'
  // @ts-expect-error options are numbers
  FileChannel.frontend(dir, { maxMessages: 'many' })
  // @ts-expect-error a method name is a string
  frontend.sendRequest(42)

  frontend.close()
  backend.close()
  return sum + received.length + (one ? 1 : 0)
}
EOF
cat >"$APP/tsconfig.json" <<EOF
{
  "compilerOptions": {
    "target": "es2022",
    "lib": ["es2022"],
    "module": "node16",
    "moduleResolution": "node16",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false,
    "types": ["node"],
    "typeRoots": ["$TYPE_ROOTS"]
  },
  "files": ["usage.ts"]
}
EOF
node "$TSC" --noEmit --strict -p "$APP/tsconfig.json" || fail "tsc found errors in usage.ts or in ipckit's types"
echo "   tsc --noEmit --strict: no errors"

step "TypeScript, ESM (nodenext): await using, JSON payloads, typed API, ipckit/testing, EventEmitter"
cat >"$APP/modern.mts" <<'EOF'
import { once, EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  FileChannel,
  DEFAULTS,
  type RemoteError,
  type PeerGoneError,
  type PeerStatus,
  type ProgressUpdate,
  type HandlerContext,
  type ChannelStats,
  type ChannelMessage,
  type JsonValue,
} from 'ipckit'
import { createTestChannel, respond } from 'ipckit/testing'

interface Point {
  x: number
  y?: number
}
interface Api {
  add(params: { a: number; b: number }): number
  ping(): 'pong'
  render(params: { frames: number }): { frames: number }
}

export async function modern(dir: string, point: Point): Promise<number> {
  await using frontend = FileChannel.frontend(dir)
  using backend = FileChannel.backend<Api>(dir)
  backend.serve({ add: ({ a, b }) => a + b, ping: () => 'pong', render: ({ frames }) => ({ frames }) })
  // Long calls: the handler context (signal, progress, message) with typed params.
  backend.handle('render', async ({ frames }, context) => {
    const request: HandlerContext<{ frames: number }> = context
    for (let frame = 1; frame <= frames; frame++) {
      if (context.signal.aborted) break
      await sleep(10, undefined, { signal: context.signal }) // a real AbortSignal
      context.progress(frame, { total: frames, message: `frame ${frame}` })
    }
    const id: string = context.message.id + request.id
    // @ts-expect-error progress is a number
    context.progress('half')
    // @ts-expect-error total is a number
    context.progress(1, { total: 'all' })
    void id
    return { frames }
  })
  // An untyped handler: (params, message) handlers keep compiling.
  frontend.handle('legacy', (params: JsonValue, message: ChannelMessage) => (message.id ? params : null))
  frontend.handle('cancellable', (_params, { signal, progress }) => {
    progress(0)
    return new Promise<string>((resolve) => signal.addEventListener('abort', () => resolve('stopped')))
  })
  const emitter: EventEmitter = frontend
  frontend.setMaxListeners(20).prependListener('event', (message) => message.payload)
  const names: Array<string | symbol> = frontend.eventNames()
  const closed = once(frontend, 'close')

  frontend.sendEvent('point', point)
  frontend.sendEvent('when', { at: new Date() })
  // @ts-expect-error a function is not JSON
  frontend.sendEvent('bad', () => 1)
  // @ts-expect-error a BigInt is not JSON
  frontend.sendEvent('bad', 10n)
  // @ts-expect-error nested: a function inside an object
  frontend.sendRequest('bad', { callback: () => 1 })
  // @ts-expect-error a symbol is not JSON
  await frontend.request('bad', { s: Symbol('x') })

  const typed = FileChannel.frontend<Api>(dir)
  // Presence: wait for the backend, follow it.
  const status: PeerStatus = await typed.ready({ timeoutMs: 5000, signal: AbortSignal.timeout(10000) })
  const methods: string[] | undefined = status.methods
  typed.on('peer', (peer) => {
    const state: 'unknown' | 'ready' | 'gone' = peer.state
    console.log(state, peer.pid, peer.host)
  })
  typed.once('peer', (peer: PeerStatus) => peer.state).off('peer', console.log)
  const now: 'unknown' | 'ready' | 'gone' = typed.peer.state
  // @ts-expect-error presence is read-only
  typed.peer = status
  // Progress, idle timeout and cancellation.
  const controller = new AbortController()
  const updates: ProgressUpdate[] = []
  const rendered: { frames: number } = await typed.request(
    'render',
    { frames: 3 },
    {
      timeoutMs: 60_000,
      idleTimeoutMs: 5_000,
      signal: controller.signal,
      onProgress: ({ progress, total, message }) => {
        updates.push({ progress, total, message })
        if (total !== undefined && progress >= total) controller.abort('enough')
      },
    },
  )
  // @ts-expect-error onProgress gets an update object
  await typed.request('render', { frames: 1 }, { onProgress: (n: number) => n })
  try {
    await typed.request('ping', undefined, { idleTimeoutMs: 100 })
  } catch (error) {
    if ((error as PeerGoneError).code === 'EPEERGONE') console.log((error as PeerGoneError).peer.state)
  }
  const stats: ChannelStats = typed.stats
  const dropped: number = stats.droppedResponses + stats.droppedProgress
  void [methods, now, rendered, dropped]
  const sum: number = await typed.request('add', { a: 1, b: 2 })
  const pong: 'pong' = await typed.request('ping')
  // @ts-expect-error wrong params type
  await typed.request('add', { a: 'one', b: 2 })
  // @ts-expect-error unknown method
  await typed.request('nope')
  typed.close()

  try {
    await frontend.request<number>('add', { a: 1, b: 2 }, { timeoutMs: DEFAULTS.timeoutMs })
  } catch (error) {
    const remote = error as RemoteError
    console.log(remote.method, remote.requestId, remote.remoteCode, remote.remoteData)
  }

  await using kit = createTestChannel({
    handlers: { slow: respond.after(10, 'done'), bad: respond.error('no', { code: 'E' }) },
  })
  const done: string = await kit.channel.request<string>('slow')
  await kit.backend.waitForRequest('slow')
  void [emitter, names, closed, pong, done]
  return sum
}
EOF
cat >"$APP/tsconfig.modern.json" <<EOF
{
  "compilerOptions": {
    "target": "es2022",
    "lib": ["es2022", "esnext.disposable"],
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false,
    "types": ["node"],
    "typeRoots": ["$TYPE_ROOTS"]
  },
  "files": ["modern.mts"]
}
EOF
node "$TSC" --noEmit --strict -p "$APP/tsconfig.modern.json" || fail "tsc found errors in modern.mts (await using, payload types, typed API, testing)"
echo "   tsc --noEmit --strict (nodenext, await using, @ts-expect-error on wrong payloads): no errors"

step "@arethetypeswrong/cli on the tarball"
ATTW="$REPO/node_modules/.bin/attw"
[ -x "$ATTW" ] || fail "no @arethetypeswrong/cli at $ATTW: run npm install in $REPO"
"$ATTW" "$TARBALL" || fail "@arethetypeswrong/cli found problems in the package's types"

step "Python: the shipped ipckit_peer wheel into a host's Python (pip --no-index --no-deps --target)"
# The interpreter a DCC host on Debian uses (Blender runs on /usr/bin/python3), else python3.
PY=""
for candidate in /usr/bin/python3 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -m pip --version >/dev/null 2>&1; then
    PY="$(command -v "$candidate")"
    break
  fi
done
if [ -z "$PY" ]; then
  [ "${CI:-}" != "true" ] || fail "no python3 with pip on this machine (CI=true: this step may not be skipped)"
  echo "   WARNING: SKIPPED: no python3 with pip here, so the Python wheel was not installed" >&2
  echo "consumer: all steps passed (but the Python step was SKIPPED)"
  exit 0
fi
PYDIR="node_modules/ipckit/python"
shopt -s nullglob
wheels=("$PYDIR"/dist/ipckit_peer-*-py3-none-any.whl)
shopt -u nullglob
[ "${#wheels[@]}" -eq 1 ] || fail "expected one wheel in $PYDIR/dist, found ${#wheels[@]}"
WHEEL="$APP/${wheels[0]}"
PEER_VERSION="$(basename "$WHEEL" | cut -d- -f2)"
echo "   $PY: Python $("$PY" -c 'import sys; print(sys.version.split()[0])'), $("$PY" -m pip --version | cut -d' ' -f1-2)$(
  [ -f "$("$PY" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED" ] && echo ', externally managed (PEP 668)')"
# What the installed package holds, to compare afterwards; and read-only, as in a system-wide or
# packaged (asar-unpacked, Program Files) install. (Root ignores the mode: the listing still tells.)
list_pydir() { find "$APP/$PYDIR" -printf '%P %y %s %T@\n' | LC_ALL=C sort; }
list_pydir >"$WORK/python-before.txt"
chmod -R a-w "$APP/$PYDIR"
export PYTHONNOUSERSITE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PYTHONPATH PYTHONHOME PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_TARGET PIP_USER
# One directory for both packages, as the README does; the host gets it on PYTHONPATH.
TARGET="$WORK/host-site"
(cd "$WORK" && "$PY" -m pip install -q --no-index --no-deps --target "$TARGET" "$WHEEL") >"$WORK/pip-peer.log" 2>&1 || {
  cat "$WORK/pip-peer.log" >&2
  fail "pip install --no-index --no-deps --target of $(basename "$WHEEL") failed"
}
[ -f "$TARGET/ipckit_peer/__main__.py" ] || fail "the wheel did not install ipckit_peer/__main__.py into $TARGET"
echo "   installed $(basename "$WHEEL") into a --target directory, offline (--no-index)"

# Without the reference ipckit: the check says so and fails.
out="$(cd "$WORK" && PYTHONPATH="$TARGET" "$PY" -m ipckit_peer 2>&1)" && code=0 || code=$?
if [ "$code" -ne 1 ] || ! grep -q "^ipckit: cannot import" <<<"$out"; then
  echo "$out" >&2
  fail "python -m ipckit_peer without ipckit: exit $code, expected 1 and 'ipckit: cannot import'"
fi
echo "   python -m ipckit_peer without ipckit: exit 1, 'ipckit: cannot import'"

# The reference ipckit (a native wheel, for this Python and platform), the way the README says for
# a machine without network: a downloaded wheel, installed with --no-index --find-links.
WHEELHOUSE="${IPCKIT_WHEELHOUSE:-$WORK/wheelhouse}"
if [ -z "${IPCKIT_WHEELHOUSE:-}" ]; then
  (cd "$WORK" && "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELHOUSE" "ipckit==0.1.12") \
    >"$WORK/pip-download.log" 2>&1 || {
    cat "$WORK/pip-download.log" >&2
    fail "pip download ipckit==0.1.12 failed (no network? set IPCKIT_WHEELHOUSE to a directory holding its wheel)"
  }
fi
(cd "$WORK" && "$PY" -m pip install -q --no-index --find-links "$WHEELHOUSE" --target "$TARGET" "ipckit==0.1.12") \
  >"$WORK/pip-ipckit.log" 2>&1 || {
  cat "$WORK/pip-ipckit.log" >&2
  fail "pip install --no-index --find-links $WHEELHOUSE --target of ipckit==0.1.12 failed"
}
out="$(cd "$WORK" && PYTHONPATH="$TARGET" "$PY" -m ipckit_peer 2>&1)" && code=0 || code=$?
while IFS= read -r line; do echo "     $line"; done <<<"$out"
[ "$code" -eq 0 ] || fail "python -m ipckit_peer exited $code with $TARGET on PYTHONPATH"
grep -qxF "ipckit_peer $PEER_VERSION in $TARGET/ipckit_peer" <<<"$out" ||
  fail "python -m ipckit_peer did not report ipckit_peer $PEER_VERSION in $TARGET"
grep -qxF "ipckit 0.1.12 in $TARGET/ipckit" <<<"$out" || fail "python -m ipckit_peer did not report ipckit 0.1.12 in $TARGET"
[ "$(tail -n 1 <<<"$out")" = "ready" ] || fail "python -m ipckit_peer did not end with 'ready'"

chmod -R u+w "$APP/$PYDIR"
list_pydir >"$WORK/python-after.txt"
diff "$WORK/python-before.txt" "$WORK/python-after.txt" >&2 || fail "something was written into $PYDIR (diff above: before/after)"
echo "   nothing written into $PYDIR"

echo "consumer: all steps passed"
