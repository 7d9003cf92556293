'use strict'
// The harness's app schema (schema.js) is the server's: the WatermelonDB `appSchema` and
// migrations that `foodcheck sync-doc` prints (api-spec/sync.md, "paste into the app") are
// evaluated with WatermelonDB's own functions and compared with appSchemaFor(LATEST_VERSION)
// and migrationsFor(LATEST_VERSION). Needs no server: the document comes from the binary when
// FOODCHECK_TEST_BIN is set (run-sync-tests.sh sets it), else from the committed
// api-spec/sync.md (which a cargo test keeps equal to what `sync-doc` prints).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const lib = require('./lib')
const { LATEST_VERSION } = require('./schema')

function syncDoc() {
  const bin = process.env.FOODCHECK_TEST_BIN
  if (bin) {
    // From an empty directory: no configuration file of the caller's may leak in.
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'foodcheck-sync-doc-'))
    try {
      return { from: `${bin} sync-doc`, text: execFileSync(bin, ['sync-doc'], { cwd, encoding: 'utf8' }) }
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true })
    }
  }
  const file = path.join(__dirname, '..', '..', '..', 'api-spec', 'sync.md')
  return { from: file, text: fs.readFileSync(file, 'utf8') }
}

/** The ```js block after `heading`, evaluated as the app would import it. */
function evalBlock(text, heading) {
  const at = text.indexOf(heading)
  assert.ok(at >= 0, `no "${heading}" section`)
  const m = /```js\n([\s\S]*?)```/.exec(text.slice(at))
  assert.ok(m, `no js block after "${heading}"`)
  const source = m[1]
    .replace(/^import \{([^}]*)\} from '([^']+)'$/gm, (_, names, mod) => `const {${names}} = require('${mod}')`)
    .replace(/^export default /m, 'module.exports = ')
  const module = { exports: {} }
  // eslint-disable-next-line no-new-func
  new Function('require', 'module', source)(require, module)
  return module.exports
}

test('schema.js is the server\'s schema: the appSchema and migrations of `foodcheck sync-doc`', () => {
  const { from, text } = syncDoc()
  const schema = evalBlock(text, '## WatermelonDB `appSchema`')
  assert.equal(schema.version, LATEST_VERSION, `${from}: schema version`)
  const ours = lib.appSchemaFor(LATEST_VERSION)
  assert.deepEqual(Object.keys(ours.tables), Object.keys(schema.tables), `${from}: the tables, in order`)
  for (const name of Object.keys(schema.tables)) {
    assert.deepEqual(ours.tables[name], schema.tables[name], `${from}: table ${name}`)
  }
  assert.deepEqual(ours, schema)
  const migrations = evalBlock(text, '## WatermelonDB migrations')
  assert.deepEqual(lib.migrationsFor(LATEST_VERSION), migrations, `${from}: the migrations`)
})
