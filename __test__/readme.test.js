'use strict'

// The README's quick start, run exactly as written: its Node backend and frontend blocks are
// copied into .mjs files of a fresh project (ipckit linked into node_modules) and run with node.
// The README cannot rot without this test failing.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { runProcess } = require('../test-support')

const ROOT = path.join(__dirname, '..')

/** The ```js blocks of the README whose first line is `// <name>`, by name. */
function readmeBlocks() {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const blocks = {}
  for (const [, code] of text.matchAll(/```js\n([\s\S]*?)```/g)) {
    const name = /^\/\/ (\S+)\n/.exec(code)?.[1]
    if (name) blocks[name] = code
  }
  return blocks
}

let project
let backend
afterEach(() => {
  backend?.kill()
  backend = undefined
  fs.rmSync(project, { recursive: true, force: true })
})

test('the quick start runs verbatim as ES modules: the frontend prints 42 from the Node backend', async () => {
  const blocks = readmeBlocks()
  expect(Object.keys(blocks)).toEqual(expect.arrayContaining(['backend.mjs', 'frontend.mjs', 'frontend.test.js']))
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-readme-'))
  fs.mkdirSync(path.join(project, 'node_modules'))
  fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'ipckit'), 'dir')
  for (const name of ['backend.mjs', 'frontend.mjs']) fs.writeFileSync(path.join(project, name), blocks[name])

  backend = spawn(process.execPath, ['backend.mjs'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] })
  let backendErr = ''
  backend.stderr.on('data', (chunk) => (backendErr += chunk))
  // The frontend may start first: its request waits (up to 5 s) for the backend to answer.
  const run = await runProcess(process.execPath, ['frontend.mjs'], { cwd: project })
  expect(backendErr).toBe('')
  expect(run).toEqual({ code: 0, stdout: '42\n', stderr: '' })
})

test("the README's jest example passes in a project of its own", async () => {
  const code = readmeBlocks()['frontend.test.js']
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'ipckit-readme-jest-'))
  fs.mkdirSync(path.join(project, 'node_modules'))
  fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'ipckit'), 'dir')
  fs.writeFileSync(path.join(project, 'frontend.test.js'), code)
  fs.writeFileSync(path.join(project, 'package.json'), '{"name": "readme-example", "private": true}')
  const jest = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js')
  const run = await runProcess(process.execPath, [jest, '--rootDir', project, '--ci', '--json', '--watchman=false'], {
    cwd: project,
    timeoutMs: 60000,
  })
  const report = JSON.parse(run.stdout)
  expect({ passed: report.numPassedTests, failed: report.numFailedTests, code: run.code }).toEqual({
    passed: 3,
    failed: 0,
    code: 0,
  })
}, 90000)
