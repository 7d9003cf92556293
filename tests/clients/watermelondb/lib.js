'use strict'
// Real-client harness: WatermelonDB 0.28.0 + LokiJS (in memory) under plain Node 20, no Babel.
//
// Exports:
//   appSchemaFor(version), migrationsFor(version), modelClasses
//   makeDatabase({ schema, migrations, name, persistence })      → Promise<Database>
//   reopenDatabase(db, { schema, migrations })                    → Promise<Database>  ("app upgrade")
//   login(baseUrl, { username, password, deviceId })              → Promise<access token>
//   sync(db, { baseUrl, token, schemaVersion, onRequest, ... })   → Promise<SyncLog>
//   syncUntilNoConflict(db, opts, { maxAttempts })                → Promise<{ log, attempts, errors }>
//   SyncHttpError, PushResponseLostError, watermelonLogs, rawOf, dirtyState
//   uuidv5(name, namespace), answerId(inspectionId, itemCode), ANSWER_ID_NAMESPACE

const crypto = require('node:crypto')
const zlib = require('node:zlib')
const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize } = require('@nozbe/watermelondb/sync')
const {
  schemaMigrations,
  createTable,
  addColumns,
} = require('@nozbe/watermelondb/Schema/migrations')
const { setGenerator } = require('@nozbe/watermelondb/utils/common/randomId')
const wmLogger = require('@nozbe/watermelondb/utils/common/logger').default
// LokiJS is WatermelonDB's own dependency ("lokijs": "npm:@nozbe/lokijs@1.5.12-wmelon6"); resolve it
// from WatermelonDB's location so we get the very same module instance WatermelonDB uses.
const { LokiMemoryAdapter } = require(
  require.resolve('lokijs', {
    paths: [require('node:path').dirname(require.resolve('@nozbe/watermelondb'))],
  }),
)

const { TABLES, CURRENT_VERSION, tablesAtVersion, wmColumn } = require('./schema')

// The project's ids are UUIDs; use them for records created on the device too. WatermelonDB's
// default is 16 chars [a-zA-Z0-9]; its sync docs allow `-`, `_`, `.` in custom ids.
setGenerator(() => crypto.randomUUID())

// Answers get a deterministic id, UUIDv5(ANSWER_ID_NAMESPACE, `${inspection_id}:${item_code}`), so
// that two devices answering the same item offline write the SAME record (a 409 and a per-column
// merge) instead of two records (the second one refused as `duplicate_answer`). The namespace is
// the RFC 4122 URL namespace, as documented by the server (src/sync/mod.rs, table `answers`).
const ANSWER_ID_NAMESPACE = '6ba7b811-9dad-11d1-80b4-00c04fd430c8'

/** RFC 4122 version-5 (SHA-1, name-based) UUID. */
function uuidv5(name, namespace) {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex')
  if (ns.length !== 16) throw new Error(`uuidv5: bad namespace ${namespace}`)
  const b = crypto.createHash('sha1').update(ns).update(String(name), 'utf8').digest().subarray(0, 16)
  b[6] = (b[6] & 0x0f) | 0x50 // version 5
  b[8] = (b[8] & 0x3f) | 0x80 // RFC 4122 variant
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

const answerId = (inspectionId, itemCode) => uuidv5(`${inspectionId}:${itemCode}`, ANSWER_ID_NAMESPACE)

// ---------------------------------------------------------------------------------------------
// WatermelonDB's console output (e.g. "[Sync] Server wants client to create record ... but it
// already exists locally") is captured so tests can assert on it. Set FOODCHECK_WMDB_VERBOSE=1
// to also print it.
const watermelonLogs = []
for (const level of ['debug', 'log', 'warn', 'error']) {
  wmLogger[level] = (...messages) => {
    const text = messages
      .map((m) => (m instanceof Error ? m.message : typeof m === 'string' ? m : safeJson(m)))
      .join(' ')
    watermelonLogs.push({ level, text })
    if (process.env.FOODCHECK_WMDB_VERBOSE) console[level === 'debug' ? 'log' : level]('[🍉]', text)
  }
}
function safeJson(v) {
  try {
    return JSON.stringify(v)
  } catch (_) {
    return String(v)
  }
}

// ---------------------------------------------------------------------------------------------
// Schema and migrations

function appSchemaFor(version = CURRENT_VERSION) {
  const tables = tablesAtVersion(version)
  return appSchema({
    version,
    tables: Object.entries(tables).map(([name, t]) =>
      tableSchema({ name, columns: t.columns.map(wmColumn) }),
    ),
  })
}

// Migrations whose maxVersion equals `version` (WatermelonDB requires maxVersion === schema.version):
// for each version, the tables it creates and the columns it adds to older tables, exactly as
// the server's `sync-doc` prints them (schema-doc.test.js).
function migrationsFor(version = CURRENT_VERSION) {
  const migrations = []
  for (let v = 2; v <= version; v++) {
    const steps = []
    for (const [name, t] of Object.entries(TABLES)) {
      const since = t.sinceVersion || 1
      if (since === v) {
        // The table as version v has it: later columns come by their own addColumns.
        const columns = t.columns.filter((c) => (c.sinceVersion || 1) <= v).map(wmColumn)
        steps.push(createTable({ name, columns }))
      } else if (since < v) {
        const columns = t.columns.filter((c) => c.sinceVersion === v).map(wmColumn)
        if (columns.length) steps.push(addColumns({ table: name, columns }))
      }
    }
    migrations.push({ toVersion: v, steps })
  }
  return schemaMigrations({ migrations })
}

// ---------------------------------------------------------------------------------------------
// Models without decorators: `@field` syntax is a SyntaxError in Node 20 (no transpiler), so each
// column gets a plain camelCase getter/setter over Model#_getRaw / Model#_setRaw. _setRaw marks
// the column in `_changed` and flips `_status` to 'updated' exactly like @field does (it is what
// @field's descriptor calls, see node_modules/@nozbe/watermelondb/decorators/field/index.js).

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase())

function defineModel(table) {
  const className = camel(`_${table}`).replace(/s$/, '')
  const cls = { [className]: class extends Model {} }[className]
  cls.table = table
  for (const col of TABLES[table].columns) {
    Object.defineProperty(cls.prototype, camel(col.name), {
      configurable: true,
      enumerable: true,
      get() {
        return this._getRaw(col.name)
      },
      set(value) {
        this._setRaw(col.name, value)
      },
    })
  }
  return cls
}

const modelClassesByTable = Object.fromEntries(Object.keys(TABLES).map((t) => [t, defineModel(t)]))

// ---------------------------------------------------------------------------------------------
// Database

/**
 * Creates a WatermelonDB Database on LokiJS, in memory, under plain Node.
 *
 * `persistence` is a Loki persistence adapter (default: a fresh LokiMemoryAdapter). Keep it to
 * "restart the app" later with reopenDatabase().
 */
async function makeDatabase({ schema, migrations, name, persistence } = {}) {
  schema = schema || appSchemaFor(CURRENT_VERSION)
  migrations = migrations || migrationsFor(schema.version)
  const dbName = name || `foodcheck-${crypto.randomUUID()}`
  const lokiPersistence = persistence || new LokiMemoryAdapter()
  let setUpError = null
  const adapter = new LokiJSAdapter({
    schema,
    migrations,
    dbName,
    // Both flags are mandatory in 0.28 (invariant in adapters/lokijs/index.js). No worker under
    // Node. The IndexedDB flag is never read because we hand Loki a persistence adapter below;
    // `true` only avoids the "useIncrementalIndexedDB: false is deprecated" warning.
    useWebWorker: false,
    useIncrementalIndexedDB: true,
    // Without autosave:false Loki starts a 500 ms setInterval and node --test never exits.
    extraLokiOptions: { autosave: false },
    // Internal test hook of 0.28 (adapters/lokijs/worker/lokiExtensions.js getLokiAdapter): used
    // as Loki's persistence adapter as is, skipping the IndexedDB probe.
    _testLokiAdapter: lokiPersistence,
    onSetUpError: (error) => {
      setUpError = error
    },
  })
  const modelClasses = Object.keys(schema.tables).map((t) => modelClassesByTable[t])
  const db = new Database({ adapter, modelClasses })
  // adapter set-up (open Loki, migrate) is queued before any other adapter call: wait for it
  await db.adapter.getLocal('__foodcheck_ready')
  if (setUpError) throw setUpError
  db.foodcheck = { dbName, persistence: lokiPersistence, schema, migrations }
  return db
}

/** Saves Loki to its memory persistence, closes it and opens the same data with a new schema. */
async function reopenDatabase(db, { schema, migrations } = {}) {
  const loki = db.adapter.underlyingAdapter._driver.loki
  await new Promise((resolve, reject) =>
    loki.saveDatabase((err) => (err ? reject(err) : resolve())),
  )
  await new Promise((resolve) => loki.close(resolve))
  return makeDatabase({
    schema: schema || db.foodcheck.schema,
    migrations: migrations || (schema ? migrationsFor(schema.version) : db.foodcheck.migrations),
    name: db.foodcheck.dbName,
    persistence: db.foodcheck.persistence,
  })
}

/** Local raw record (including _status/_changed), or null. Deleted-but-unsynced records too. */
async function rawOf(db, table, id) {
  const found = await db.adapter.underlyingAdapter._driver.loki.getCollection(table).by('id', id)
  if (!found) return null
  const { $loki, meta, ...raw } = found // Loki bookkeeping
  return raw
}

/** Ids of records that are not 'synced' locally, per table: { table: { created, updated, deleted } } */
async function dirtyState(db) {
  const out = {}
  for (const table of Object.keys(db.schema.tables)) {
    const docs = db.adapter.underlyingAdapter._driver.loki.getCollection(table).data
    const st = { created: [], updated: [], deleted: [] }
    for (const d of docs) if (st[d._status]) st[d._status].push(d.id)
    if (st.created.length + st.updated.length + st.deleted.length) out[table] = st
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// HTTP

class SyncHttpError extends Error {
  constructor(method, url, status, body) {
    const code = body && body.error && body.error.code
    super(`${method} ${url} → HTTP ${status}${code ? ` (${code})` : ''}`)
    this.name = 'SyncHttpError'
    this.status = status
    this.body = body
    this.code = code || null
    this.isConflict = status === 409
  }
}

class PushResponseLostError extends Error {
  constructor(status) {
    super(`simulated: push reached the server (HTTP ${status}) but the response was lost`)
    this.name = 'PushResponseLostError'
    this.serverStatus = status
  }
}

/**
 * One JSON request with Node's fetch (undici), which decodes gzip/br/deflate answers by itself.
 *   acceptEncoding   sets Accept-Encoding (default: fetch's own, `gzip, deflate` over http)
 *   gzipBody         gzips the JSON body (node:zlib) and sends `Content-Encoding: gzip`
 * onRequest also gets the codings and sizes: requestEncoding, requestJsonBytes, requestWireBytes,
 * responseEncoding (the answer's Content-Encoding, e.g. 'gzip', or null), responseBytes (the
 * answer's length once decoded) and vary.
 */
async function httpJson(method, url, { token, body, onRequest, acceptEncoding, gzipBody = false } = {}) {
  const headers = { accept: 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  if (acceptEncoding !== undefined) headers['accept-encoding'] = acceptEncoding
  let payload
  let requestJsonBytes = 0
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = Buffer.from(JSON.stringify(body), 'utf8')
    requestJsonBytes = payload.length
    if (gzipBody) {
      headers['content-encoding'] = 'gzip'
      payload = zlib.gzipSync(payload)
    }
  }
  const res = await fetch(url, { method, headers, body: payload })
  const responseEncoding = res.headers.get('content-encoding')
  const vary = res.headers.get('vary')
  const text = await res.text()
  let json = null
  if (text) {
    try {
      json = JSON.parse(text)
    } catch (_) {
      json = { _nonJson: text }
    }
  }
  if (onRequest) {
    await onRequest({
      method,
      url,
      requestBody: body,
      status: res.status,
      responseBody: json,
      requestEncoding: gzipBody ? 'gzip' : null,
      requestJsonBytes,
      requestWireBytes: payload ? payload.length : 0,
      responseEncoding,
      responseBytes: Buffer.byteLength(text, 'utf8'),
      vary,
    })
  }
  return { status: res.status, ok: res.ok, body: json, responseEncoding, vary }
}

async function login(baseUrl, { username, password, deviceId }) {
  const url = `${baseUrl}/api/v1/auth/login`
  const res = await httpJson('POST', url, {
    body: { username, password, device_id: deviceId },
  })
  if (!res.ok) throw new SyncHttpError('POST', url, res.status, res.body)
  return res.body.access_token
}

// ---------------------------------------------------------------------------------------------
// Sync

/**
 * One WatermelonDB synchronize() against `${baseUrl}/api/v1/sync`.
 *
 * Options:
 *   baseUrl, token                      required
 *   schemaVersion                       optional sanity check: must equal db.schema.version
 *   migrationsEnabledAtVersion          default 1 (migration syncs on from the very first version)
 *   onRequest({method,url,requestBody,status,responseBody})  observe every HTTP exchange
 *   beforePush({changes,lastPulledAt})  async hook between pull and push (used to interleave
 *                                       another device's sync and provoke a 409)
 *   simulatePushResponseLost            true: the POST reaches the server and is applied, then
 *                                       pushChanges throws PushResponseLostError
 *   sendCreatedAsUpdated, conflictResolver   passed to synchronize()
 *   acceptEncoding                      the pull's Accept-Encoding (default: fetch's own)
 *   gzipPush                            true: the push body is gzipped, `Content-Encoding: gzip`
 * Resolves to WatermelonDB's SyncLog; rejects with SyncHttpError / PushResponseLostError / ...
 */
async function sync(db, opts) {
  const {
    baseUrl,
    token,
    schemaVersion,
    onRequest,
    beforePush,
    simulatePushResponseLost = false,
    migrationsEnabledAtVersion = 1,
    sendCreatedAsUpdated = false,
    conflictResolver,
    acceptEncoding,
    gzipPush = false,
  } = opts
  if (!baseUrl) throw new Error('sync: baseUrl is required')
  if (schemaVersion !== undefined && schemaVersion !== db.schema.version) {
    throw new Error(`sync: schemaVersion ${schemaVersion} ≠ database schema ${db.schema.version}`)
  }
  const endpoint = `${baseUrl}/api/v1/sync`
  const log = {}

  await synchronize({
    database: db,
    migrationsEnabledAtVersion,
    sendCreatedAsUpdated,
    conflictResolver,
    log,
    // lastPulledAt: null on first sync, else the `timestamp` of the last successful pull.
    // migration: null, or { from, tables, columns: [{ table, columns }] }.
    pullChanges: async ({ lastPulledAt, schemaVersion: version, migration }) => {
      const qs = new URLSearchParams({
        last_pulled_at: lastPulledAt == null ? 'null' : String(lastPulledAt),
        schema_version: String(version),
        migration: JSON.stringify(migration ?? null),
      })
      const url = `${endpoint}?${qs}`
      const res = await httpJson('GET', url, { token, onRequest, acceptEncoding })
      if (!res.ok) throw new SyncHttpError('GET', url, res.status, res.body)
      const { changes, timestamp, experimentalStrategy, ...rest } = res.body || {}
      const result = { changes, timestamp, ...rest }
      if (experimentalStrategy !== undefined) result.experimentalStrategy = experimentalStrategy
      return result
    },
    // lastPulledAt here is the `timestamp` returned by the pull of this same synchronize() call.
    pushChanges: async ({ changes, lastPulledAt }) => {
      if (beforePush) await beforePush({ changes, lastPulledAt })
      const url = `${endpoint}?last_pulled_at=${lastPulledAt}`
      const res = await httpJson('POST', url, { token, body: { changes }, onRequest, gzipBody: gzipPush })
      if (simulatePushResponseLost) throw new PushResponseLostError(res.status)
      if (!res.ok) throw new SyncHttpError('POST', url, res.status, res.body)
      const rejected = res.body && res.body.experimentalRejectedIds
      return rejected ? { experimentalRejectedIds: rejected } : {}
    },
  })
  return log
}

/**
 * Calls sync() again after a 409 (every attempt pulls first, so conflicts are merged per column
 * by WatermelonDB before the next push). Other errors are thrown.
 */
async function syncUntilNoConflict(db, opts, { maxAttempts = 3 } = {}) {
  const errors = []
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    try {
      const log = await sync(db, attempt === 1 ? opts : { ...opts, beforePush: undefined })
      return { log, attempts: attempt, errors }
    } catch (err) {
      if (!(err instanceof SyncHttpError && err.isConflict) || attempt === maxAttempts) throw err
      errors.push(err)
    }
  }
  throw new Error('unreachable')
}

module.exports = {
  appSchemaFor,
  migrationsFor,
  modelClasses: modelClassesByTable,
  makeDatabase,
  reopenDatabase,
  rawOf,
  dirtyState,
  login,
  sync,
  syncUntilNoConflict,
  httpJson,
  SyncHttpError,
  PushResponseLostError,
  watermelonLogs,
  LokiMemoryAdapter,
  uuidv5,
  answerId,
  ANSWER_ID_NAMESPACE,
}
