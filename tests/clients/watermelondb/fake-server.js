'use strict'
// In-memory FAKE of the foodcheck sync endpoint. It is NOT the product. The real-server
// scenarios (sync.test.js) no longer use it; only fake-only.test.js does, for WatermelonDB
// behaviour that needs server states the real API cannot produce on demand (a deliberately
// wrong `created` classification, a replacement pull). One user, no team scoping, no refusal
// codes besides an unknown task. Plain node:http, no dependencies.
//
//   POST /api/v1/auth/login          {username, password, device_id} → {access_token, ...}
//   GET  /api/v1/sync?last_pulled_at=<n|null>&schema_version=<v>&migration=<json|null>
//                                    → {changes, timestamp[, experimentalStrategy]}
//   POST /api/v1/sync?last_pulled_at=<n>   body {changes}
//                                    → 200 {} | 200 {experimentalRejectedIds} | 409 conflict
//
// Test-control API (what the scenarios need to arrange/inspect server state; a real server would
// expose it only in a test build, or the harness maps it to real endpoints):
//   POST   /__test__/reset
//   PUT    /__test__/records/:table/:id   body: columns → server-side create-or-merge (bumps cursor)
//   DELETE /__test__/records/:table/:id   → server-side delete (tombstone)
//   DELETE /__test__/records/:table/:id?purge=1 → hard delete, no tombstone (replacement scenario)
//   GET    /__test__/records/:table       → {records: [{id, ...columns}], tombstones: [id]}
//   POST   /__test__/next-pull-strategy   body {strategy: 'replacement'} → next pull is a full
//                                          data set with experimentalStrategy
//
// Semantics (the protocol the real server is expected to implement, see README.md):
//   * one monotonic integer cursor for the whole database, starting at 1; every mutating
//     transaction (a push that changes something, a server-side edit) takes cursor+1 and stamps
//     the rows it touches; a pull answers `timestamp` = current cursor (always ≥ 1).
//   * rows keep created_seq, modified_seq and, once deleted, deleted_seq (tombstone).
//   * pull with last_pulled_at=null (first sync): all live rows as `created`, no `deleted`.
//     Otherwise: created_seq > lpa and not created by the requesting device → created;
//     else modified_seq > lpa → updated; deleted_seq > lpa → id in deleted. (A device's own
//     pushes come back to it as `updated`: sending them as `created` would make WatermelonDB
//     resurrect records the user deleted in between, see README.)
//   * push: all-or-nothing. 409 if any pushed row (created, updated or deleted) was modified or
//     deleted after last_pulled_at — unless the pushed values equal the stored ones (idempotent
//     replay). created-but-exists → update; updated-but-missing → create; deleted-but-missing →
//     ignored; updated/created-but-tombstoned → 409.
//   * writes to read-only tables and to server-only columns are ignored.
//   * inspections whose task_id is not a live task are refused per record
//     (experimentalRejectedIds) and not stored.

const http = require('node:http')
const crypto = require('node:crypto')
const { TABLES, CURRENT_VERSION, tablesAtVersion } = require('./schema')

const ID_RE = /^[A-Za-z0-9._-]{1,64}$/

function defaultFor(col) {
  if (col.isOptional) return null
  return col.type === 'string' ? '' : col.type === 'number' ? 0 : false
}

function sanitize(col, value) {
  if (value === undefined || value === null) return defaultFor(col)
  if (col.type === 'string') return typeof value === 'string' ? value : String(value)
  if (col.type === 'number') {
    const n = Number(value)
    return Number.isFinite(n) ? n : defaultFor(col)
  }
  return value === true || value === 1 || value === 'true'
}

function writableColumns(table) {
  return TABLES[table].columns.filter((c) => !c.serverOnly)
}

class HttpError extends Error {
  constructor(status, code, message, details) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
  }
}

function createFakeServer({
  users = [{ username: 'inspector1', password: 'inspector1-pass', user_id: 'u-inspector1' }],
  controlApi = true,
  // 'per-device' (correct): a row goes in `created` only if created after last_pulled_at AND not
  //   created by the requesting device (its own pushes come back as `updated`).
  // 'naive' (wrong, kept to pin the failure in a test): created_seq > last_pulled_at → `created`.
  createdClassification = 'per-device',
} = {}) {
  const state = {
    cursor: 1,
    tables: new Map(Object.keys(TABLES).map((t) => [t, new Map()])),
    tokens: new Map(), // token → { user, deviceId }
    nextPullStrategy: null,
    requests: [],
  }

  const reset = () => {
    state.cursor = 1
    for (const m of state.tables.values()) m.clear()
    state.nextPullStrategy = null
    state.requests = []
  }

  // ---- storage helpers ----
  const bump = () => ++state.cursor

  function serverUpsert(table, id, values, seq, deviceId = null) {
    const rows = state.tables.get(table)
    const existing = rows.get(id)
    if (existing && existing.deletedSeq == null) {
      for (const col of TABLES[table].columns) {
        if (col.name in values) existing.cols[col.name] = sanitize(col, values[col.name])
      }
      existing.modifiedSeq = seq
    } else {
      const cols = {}
      for (const col of TABLES[table].columns) cols[col.name] = sanitize(col, values[col.name])
      rows.set(id, { cols, createdSeq: seq, modifiedSeq: seq, deletedSeq: null, createdBy: deviceId })
    }
  }

  function serverDelete(table, id, seq) {
    const row = state.tables.get(table).get(id)
    if (!row || row.deletedSeq != null) return false
    row.deletedSeq = seq
    row.modifiedSeq = seq
    return true
  }

  function serialize(table, id, row, visibleColumns) {
    const out = { id }
    for (const col of visibleColumns) out[col.name] = row.cols[col.name]
    return out
  }

  // ---- protocol ----
  function parseLastPulledAt(raw, { allowNull }) {
    if (allowNull && (raw == null || raw === '' || raw === 'null' || raw === '0')) return null
    if (!/^\d+$/.test(raw || '')) {
      throw new HttpError(400, 'invalid_query', `last_pulled_at must be an integer${allowNull ? ' or null' : ''}`)
    }
    const n = Number(raw)
    if (n > state.cursor) {
      throw new HttpError(400, 'invalid_query', 'last_pulled_at is ahead of the server cursor')
    }
    return n
  }

  function parseMigration(raw) {
    if (raw == null || raw === '' || raw === 'null') return null
    let m
    try {
      m = JSON.parse(raw)
    } catch (_) {
      throw new HttpError(400, 'invalid_query', 'migration is not JSON')
    }
    if (m === null) return null
    const ok =
      m &&
      typeof m === 'object' &&
      Number.isInteger(m.from) &&
      Array.isArray(m.tables) &&
      m.tables.every((t) => typeof t === 'string') &&
      Array.isArray(m.columns) &&
      m.columns.every(
        (c) =>
          c && typeof c.table === 'string' && Array.isArray(c.columns) &&
          c.columns.every((x) => typeof x === 'string'),
      )
    if (!ok) throw new HttpError(400, 'invalid_query', 'migration has the wrong shape')
    return m
  }

  function pull(query, session) {
    const lpa = parseLastPulledAt(query.get('last_pulled_at'), { allowNull: true })
    const version = Number(query.get('schema_version'))
    if (!Number.isInteger(version) || version < 1 || version > CURRENT_VERSION) {
      throw new HttpError(400, 'unsupported_schema_version', `schema_version must be 1..${CURRENT_VERSION}`)
    }
    const migration = parseMigration(query.get('migration'))
    const strategy = state.nextPullStrategy
    state.nextPullStrategy = null
    const visible = tablesAtVersion(version) // whitelist: only tables/columns the client knows

    const changes = {}
    for (const [table, { columns }] of Object.entries(visible)) {
      const created = []
      const updated = []
      const deleted = []
      const seen = new Set()
      const migratedTable = migration && lpa !== null && migration.tables.includes(table)
      const addedCols =
        migration && lpa !== null
          ? (migration.columns.find((c) => c.table === table)?.columns || []).filter((name) =>
              columns.some((c) => c.name === name),
            )
          : []
      for (const [id, row] of state.tables.get(table)) {
        if (row.deletedSeq != null) {
          if (lpa !== null && row.deletedSeq > lpa && strategy !== 'replacement') deleted.push(id)
          continue
        }
        const rec = serialize(table, id, row, columns)
        const newToDevice =
          row.createdSeq > lpa &&
          (createdClassification === 'naive' || row.createdBy !== session.deviceId)
        if (lpa === null || migratedTable || newToDevice) {
          created.push(rec)
          seen.add(id)
        } else if (row.modifiedSeq > lpa || strategy === 'replacement') {
          // includes the echo of this device's own pushes: harmless as `updated`
          updated.push(rec)
          seen.add(id)
        } else if (
          addedCols.some((name) => {
            const col = columns.find((c) => c.name === name)
            return row.cols[name] !== defaultFor(col)
          })
        ) {
          updated.push(rec)
          seen.add(id)
        }
      }
      changes[table] = { created, updated, deleted }
    }
    const body = { changes, timestamp: state.cursor }
    if (strategy) body.experimentalStrategy = strategy
    return body
  }

  function push(query, body, session) {
    const lpa = parseLastPulledAt(query.get('last_pulled_at'), { allowNull: false })
    if (!body || typeof body !== 'object' || !body.changes || typeof body.changes !== 'object') {
      throw new HttpError(422, 'invalid_body', 'body must be {"changes": {...}}')
    }
    const ops = [] // planned mutations, applied only if the whole push is accepted
    const conflicts = []
    const rejected = {}
    const ignored = []

    for (const [table, set] of Object.entries(body.changes)) {
      if (!TABLES[table]) throw new HttpError(422, 'invalid_body', `unknown table ${table}`)
      const { created = [], updated = [], deleted = [] } = set || {}
      if (![created, updated, deleted].every(Array.isArray)) {
        throw new HttpError(422, 'invalid_body', `changes.${table} must have created/updated/deleted arrays`)
      }
      if (TABLES[table].readOnly) {
        if (created.length + updated.length + deleted.length) ignored.push(table)
        continue
      }
      const rows = state.tables.get(table)
      const writable = writableColumns(table)

      for (const [kind, raws] of [['created', created], ['updated', updated]]) {
        for (const raw of raws) {
          if (!raw || typeof raw !== 'object' || typeof raw.id !== 'string' || !ID_RE.test(raw.id)) {
            throw new HttpError(422, 'invalid_body', `bad record id in ${table}.${kind}`)
          }
          // `_status` and `_changed` are ignored, as are unknown and server-only columns.
          const values = {}
          for (const col of writable) if (col.name in raw) values[col.name] = sanitize(col, raw[col.name])

          if (table === 'inspections') {
            const task = state.tables.get('tasks').get(values.task_id)
            if (!task || task.deletedSeq != null) {
              ;(rejected[table] = rejected[table] || []).push(raw.id)
              continue
            }
          }

          const row = rows.get(raw.id)
          if (row && row.deletedSeq != null) {
            conflicts.push({ table, id: raw.id, reason: 'deleted_on_server' })
            continue
          }
          if (row && row.modifiedSeq > lpa) {
            const same = Object.entries(values).every(([k, v]) => row.cols[k] === v)
            if (same) continue // idempotent replay of an already-applied push
            conflicts.push({ table, id: raw.id, reason: 'modified_on_server' })
            continue
          }
          ops.push(() => serverUpsert(table, raw.id, values, seq, session.deviceId))
        }
      }
      for (const id of deleted) {
        if (typeof id !== 'string' || !ID_RE.test(id)) {
          throw new HttpError(422, 'invalid_body', `bad id in ${table}.deleted`)
        }
        const row = rows.get(id)
        if (!row || row.deletedSeq != null) continue // already gone: ignore
        if (row.modifiedSeq > lpa) {
          conflicts.push({ table, id, reason: 'modified_on_server' })
          continue
        }
        ops.push(() => serverDelete(table, id, seq))
      }
    }

    if (conflicts.length) {
      throw new HttpError(409, 'sync_conflict', 'records changed on the server after last_pulled_at; pull and push again', {
        conflicts,
      })
    }
    let seq = null
    if (ops.length) {
      seq = bump()
      for (const op of ops) op()
    }
    const out = {}
    if (Object.keys(rejected).length) out.experimentalRejectedIds = rejected
    return out
  }

  // ---- HTTP plumbing ----
  function auth(req) {
    const h = req.headers.authorization || ''
    const m = /^Bearer (.+)$/.exec(h)
    const session = m && state.tokens.get(m[1])
    if (!session) throw new HttpError(401, 'unauthorized', 'missing or unknown bearer token')
    return session
  }

  async function readJson(req) {
    const chunks = []
    for await (const c of req) chunks.push(c)
    const text = Buffer.concat(chunks).toString('utf8')
    if (!text) return undefined
    try {
      return JSON.parse(text)
    } catch (_) {
      throw new HttpError(422, 'invalid_body', 'body is not JSON')
    }
  }

  async function route(req, url) {
    const { pathname, searchParams } = url
    if (req.method === 'POST' && pathname === '/api/v1/auth/login') {
      const body = (await readJson(req)) || {}
      const user = users.find(
        (u) => u.username.toLowerCase() === String(body.username || '').toLowerCase() && u.password === body.password,
      )
      if (!user) throw new HttpError(401, 'invalid_credentials', 'wrong username or password')
      if (!body.device_id) throw new HttpError(422, 'invalid_body', 'device_id is required')
      for (const [t, s] of state.tokens) {
        if (s.user === user && s.deviceId === body.device_id) state.tokens.delete(t)
      }
      const token = crypto.randomBytes(24).toString('hex')
      state.tokens.set(token, { user, deviceId: body.device_id })
      return [200, { access_token: token, refresh_token: crypto.randomBytes(24).toString('hex'), token_type: 'Bearer', expires_in: 3600, refresh_expires_in: 86400 }]
    }
    if (pathname === '/api/v1/sync') {
      const session = auth(req)
      if (req.method === 'GET') return [200, pull(searchParams, session)]
      if (req.method === 'POST') return [200, push(searchParams, await readJson(req), session)]
      throw new HttpError(405, 'method_not_allowed', 'GET or POST')
    }
    if (controlApi && pathname.startsWith('/__test__/')) {
      const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent) // ['__test__', ...]
      if (req.method === 'POST' && parts[1] === 'reset') {
        reset()
        return [200, { cursor: state.cursor }]
      }
      if (req.method === 'POST' && parts[1] === 'next-pull-strategy') {
        state.nextPullStrategy = ((await readJson(req)) || {}).strategy || null
        return [200, {}]
      }
      if (parts[1] === 'records' && TABLES[parts[2]]) {
        const table = parts[2]
        if (req.method === 'GET' && parts.length === 3) {
          const records = []
          const tombstones = []
          for (const [id, row] of state.tables.get(table)) {
            if (row.deletedSeq != null) tombstones.push(id)
            else records.push({ id, ...row.cols })
          }
          return [200, { records, tombstones, cursor: state.cursor }]
        }
        if (req.method === 'PUT' && parts.length === 4 && ID_RE.test(parts[3])) {
          serverUpsert(table, parts[3], (await readJson(req)) || {}, bump())
          return [200, { cursor: state.cursor }]
        }
        if (req.method === 'DELETE' && parts.length === 4) {
          if (searchParams.get('purge') === '1') {
            // hard delete WITHOUT tombstone: incremental pulls can no longer tell clients about
            // it; only a replacement pull (experimentalStrategy) removes it from devices
            state.tables.get(table).delete(parts[3])
            return [200, { cursor: state.cursor }]
          }
          const seq = state.cursor + 1
          if (serverDelete(table, parts[3], seq)) state.cursor = seq
          return [200, { cursor: state.cursor }]
        }
      }
    }
    throw new HttpError(404, 'not_found', `${req.method} ${pathname}`)
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://fake')
    let status
    let body
    try {
      ;[status, body] = await route(req, url)
    } catch (err) {
      if (!(err instanceof HttpError)) {
        console.error('[fake-server]', err)
        err = new HttpError(500, 'internal', String(err && err.message))
      }
      status = err.status
      body = { error: { code: err.code, message: err.message } }
      if (err.details) body.error.details = err.details
    }
    state.requests.push({ method: req.method, path: url.pathname, query: url.search, status })
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })

  return {
    state,
    reset,
    /** Starts listening on 127.0.0.1 (port 0 = any free port); resolves to the base URL. */
    listen(port = 0) {
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, '127.0.0.1', () => {
          const { port: p } = server.address()
          resolve(`http://127.0.0.1:${p}`)
        })
      })
    },
    close() {
      server.closeAllConnections?.()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

module.exports = { createFakeServer }

// `node fake-server.js [port]` runs it standalone (handy for poking at it with curl).
if (require.main === module) {
  const srv = createFakeServer()
  srv.listen(Number(process.argv[2] || 0)).then((url) => console.log(`fake foodcheck sync server on ${url}`))
}
