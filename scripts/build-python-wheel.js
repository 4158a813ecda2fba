'use strict'
// Builds the pure-Python wheel of the companion package python/ (ipckit_peer) into python/dist/,
// as python/dist/ipckit_peer-<version>-py3-none-any.whl: the file a DCC host's Python installs
// with `pip install --no-index --no-deps <wheel>`, offline and without writing anywhere but the
// install target. Runs as the npm `prepack` script (so npm pack and npm publish ship a fresh
// wheel), and from scripts/consumer-test.sh and scripts/test-python.sh.
//
// The build runs on a temporary copy of the package's sources (pyproject.toml, README.md,
// ipckit_peer/*.py), so setuptools' build/ and *.egg-info never land in python/, and a stale
// build/lib there cannot leak into the wheel. `pip wheel --no-build-isolation` when the build
// Python already has setuptools>=61 (and wheel, for setuptools older than 70.1): no network then;
// otherwise pip fetches setuptools into an isolated build environment (needs PyPI).
//
// Usage: node scripts/build-python-wheel.js [--python <exe>] [--out <dir>]
// The Python is --python, else $IPCKIT_WHEEL_PYTHON, else the first of python3, python (py -3 on
// Windows) that has pip, preferring one that can build offline. Progress goes to stderr; the last
// line of stdout is the wheel's path (not as npm's prepack, where stdout is npm pack --json's), and
// the wheel is the only ipckit_peer-*.whl left in --out.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')
const source = path.join(root, 'python')

function fail(message) {
  console.error(`build-python-wheel: ${message}`)
  process.exit(1)
}

function option(name) {
  const index = process.argv.indexOf(name)
  return index === -1 ? undefined : process.argv[index + 1]
}

/** The version in pyproject.toml's [project] table, checked against ipckit_peer.__version__. */
function packageVersion() {
  const pyproject = fs.readFileSync(path.join(source, 'pyproject.toml'), 'utf8')
  const project = /^\[project\]\s*$([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(pyproject)?.[1] ?? ''
  const version = /^version\s*=\s*"([^"]+)"\s*$/m.exec(project)?.[1]
  if (!version) fail('no version = "..." in the [project] table of python/pyproject.toml')
  const init = fs.readFileSync(path.join(source, 'ipckit_peer', '__init__.py'), 'utf8')
  const declared = /^__version__\s*=\s*["']([^"']+)["']/m.exec(init)?.[1]
  if (declared !== version) {
    fail(`python/pyproject.toml says version ${version}, ipckit_peer/__init__.py says __version__ = ${declared}`)
  }
  return version
}

const PROBE = `
import json, sys
info = {"version": sys.version.split()[0], "executable": sys.executable}
try:
    from importlib.metadata import version
except ImportError:  # Python 3.7
    from pkg_resources import get_distribution
    version = lambda name: get_distribution(name).version
for name in ("pip", "setuptools", "wheel"):
    try:
        info[name] = version(name)
    except Exception:
        pass
print(json.dumps(info))
`

function probe(command) {
  const [exe, ...args] = command
  const result = spawnSync(exe, [...args, '-c', PROBE], { encoding: 'utf8' })
  if (result.status !== 0) return null
  try {
    return JSON.parse(result.stdout.trim().split('\n').pop())
  } catch {
    return null
  }
}

function findPython() {
  const chosen = option('--python') ?? process.env.IPCKIT_WHEEL_PYTHON
  if (chosen) {
    const info = probe([chosen])
    if (!info?.pip) fail(`${chosen} ${info ? 'has no pip' : 'does not run'}`)
    return { command: [chosen], info }
  }
  const candidates =
    process.platform === 'win32'
      ? [['py', '-3'], ['python'], ['python3']]
      : [['python3'], ['python'], ['/usr/bin/python3']]
  // The first Python that can build without the network, else the first with pip.
  let fallback = null
  for (const command of candidates) {
    const info = probe(command)
    if (!info?.pip) continue
    if (canBuildOffline(info)) return { command, info }
    fallback ??= { command, info }
  }
  return (
    fallback ?? fail('no Python 3 with pip found (tried python3, python, /usr/bin/python3); set IPCKIT_WHEEL_PYTHON')
  )
}

/** setuptools>=61 (PEP 621 metadata), and bdist_wheel: built in from 70.1, else the wheel package. */
function canBuildOffline(info) {
  const [major, minor] = (info.setuptools ?? '0').split('.').map((part) => parseInt(part, 10) || 0)
  if (major < 61) return false
  return Boolean(info.wheel) || major > 70 || (major === 70 && minor >= 1)
}

function copySources(dir) {
  fs.mkdirSync(path.join(dir, 'ipckit_peer'), { recursive: true })
  for (const file of ['pyproject.toml', 'README.md']) fs.copyFileSync(path.join(source, file), path.join(dir, file))
  const modules = fs.readdirSync(path.join(source, 'ipckit_peer')).filter((name) => name.endsWith('.py'))
  for (const name of modules) {
    fs.copyFileSync(path.join(source, 'ipckit_peer', name), path.join(dir, 'ipckit_peer', name))
  }
  return modules
}

function main() {
  const version = packageVersion()
  const out = path.resolve(option('--out') ?? path.join(source, 'dist'))
  const { command, info } = findPython()
  const offline = canBuildOffline(info)
  const name = `ipckit_peer-${version}-py3-none-any.whl`

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-wheel-'))
  try {
    const src = path.join(work, 'src')
    const built = path.join(work, 'out')
    const modules = copySources(src)
    // Reproducible timestamps in the zip (bdist_wheel honours SOURCE_DATE_EPOCH): the newest source.
    const newest = Math.max(
      ...fs.readdirSync(src, { recursive: true }).map((f) => fs.statSync(path.join(src, f)).mtimeMs),
    )
    const [exe, ...args] = command
    const pipArgs = ['-m', 'pip', 'wheel', '--no-deps', '--no-cache-dir', '--disable-pip-version-check', '-q']
    if (offline) pipArgs.push('--no-build-isolation')
    pipArgs.push('-w', built, src)
    console.error(
      `build-python-wheel: ${name} with ${info.executable} (Python ${info.version}, pip ${info.pip}, ` +
        (offline
          ? `setuptools ${info.setuptools}${info.wheel ? `, wheel ${info.wheel}` : ''}, no build isolation)`
          : 'setuptools from PyPI in an isolated build environment)'),
    )
    const env = {
      ...process.env,
      PYTHONDONTWRITEBYTECODE: '1',
      PIP_NO_INPUT: '1',
      SOURCE_DATE_EPOCH: String(Math.max(315532800, Math.floor(newest / 1000))),
    }
    const result = spawnSync(exe, [...args, ...pipArgs], { cwd: work, env, stdio: ['ignore', 2, 2] })
    if (result.status !== 0) {
      fail(
        `pip wheel failed (exit ${result.status ?? result.signal})` +
          (offline
            ? ''
            : `: it needs PyPI for setuptools, or install setuptools>=61 and wheel into ${info.executable}`),
      )
    }
    const wheels = fs.existsSync(built) ? fs.readdirSync(built).filter((f) => f.endsWith('.whl')) : []
    if (wheels.length !== 1 || wheels[0] !== name) {
      fail(`expected ${name}, pip built: ${wheels.join(', ') || 'nothing'}`)
    }

    // The wheel holds the package's modules and its metadata, nothing else.
    const listing = spawnSync(
      exe,
      [
        ...args,
        '-c',
        'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))',
        path.join(built, name),
      ],
      { encoding: 'utf8' },
    )
    if (listing.status !== 0) fail(`cannot list ${name}: ${listing.stderr}`)
    const files = listing.stdout.split(/\r?\n/).filter(Boolean)
    const distInfo = `ipckit_peer-${version}.dist-info/`
    const problems = []
    for (const module of modules) {
      if (!files.includes(`ipckit_peer/${module}`)) problems.push(`missing ipckit_peer/${module}`)
    }
    for (const meta of ['METADATA', 'WHEEL', 'RECORD']) {
      if (!files.includes(distInfo + meta)) problems.push(`missing ${distInfo}${meta}`)
    }
    const expected = (file) => /^ipckit_peer\/[A-Za-z0-9_]+\.py$/.test(file) || file.startsWith(distInfo)
    for (const file of files) if (!expected(file)) problems.push(`unexpected ${file}`)
    if (problems.length) fail(`${name} is wrong:\n  ${problems.join('\n  ')}`)

    fs.mkdirSync(out, { recursive: true })
    for (const old of fs.readdirSync(out)) {
      if (/^ipckit_peer-.+\.whl$/.test(old)) fs.rmSync(path.join(out, old))
    }
    fs.copyFileSync(path.join(built, name), path.join(out, name))
    console.error(`build-python-wheel: ${path.join(out, name)} (${files.length} files)`)
    // As npm's prepack, stdout is npm pack's (its --json report): the path goes to stderr alone there.
    if (process.env.npm_lifecycle_event !== 'prepack') console.log(path.join(out, name))
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
}

main()
