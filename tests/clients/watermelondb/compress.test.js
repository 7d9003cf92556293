'use strict'
// Compressed sync with a real WatermelonDB 0.28.0 client against a REAL foodcheck server (run
// ../run-sync-tests.sh, or set FOODCHECK_URL as for sync.test.js): `pullChanges` asks for gzip
// (`Accept-Encoding: gzip`; Node's fetch decodes it, as React Native's does) and `pushChanges`
// gzips the body (node:zlib, where an app would use pako) with `Content-Encoding: gzip`. The
// devices that sync compressed end with exactly the records of the devices that sync plain.
//
//   node --test compress.test.js

const { test, before } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')

const lib = require('./lib')
const { RealServer, KEY_ITEMS, GENERAL_ITEMS } = require('./real-server')

const BASE_URL = process.env.FOODCHECK_URL ? process.env.FOODCHECK_URL.replace(/\/+$/, '') : null
const SKIP = BASE_URL ? false : 'needs a real server: run ../run-sync-tests.sh, or set FOODCHECK_URL'

let world

before(async () => {
  if (SKIP) return
  world = new RealServer(BASE_URL, {
    adminUsername: process.env.FOODCHECK_ADMIN_USERNAME,
    adminPassword: process.env.FOODCHECK_ADMIN_PASSWORD,
  })
  await world.setUp()
})

/** A fresh install of inspector `who`; `compressed` devices pull gzip and push gzip. */
async function newDevice(label, who, { compressed }) {
  const person = world.inspectors[who]
  const deviceId = `wmdb-${label}-${crypto.randomUUID()}`
  const token = await lib.login(BASE_URL, { username: person.username, password: person.password, deviceId })
  const db = await lib.makeDatabase({ name: deviceId })
  const device = {
    label,
    db,
    requests: [],
    sync() {
      return lib.sync(device.db, {
        baseUrl: BASE_URL,
        token,
        onRequest: (r) => device.requests.push(r),
        // Plain: `identity` explicitly, since Node's fetch asks for gzip by default.
        acceptEncoding: compressed ? 'gzip' : 'identity',
        gzipPush: compressed,
      })
    },
  }
  return device
}

/** Every record of every table, without WatermelonDB's local bookkeeping, sorted by id. */
async function records(db) {
  const out = {}
  for (const table of Object.keys(db.schema.tables)) {
    const docs = db.adapter.underlyingAdapter._driver.loki.getCollection(table).data
    out[table] = docs
      .map(({ $loki, meta, _status, _changed, ...raw }) => raw)
      .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
  }
  return out
}

function assertCodings(device, since, { compressed }) {
  const exchanges = device.requests.slice(since)
  assert.ok(exchanges.length > 0)
  for (const x of exchanges) {
    const what = `[${device.label}] ${x.method} → ${x.status} ${JSON.stringify(x.responseBody).slice(0, 300)}`
    assert.equal(x.status, 200, what)
    if (x.method === 'GET') {
      // The pull answers in the coding asked for, and says the answer varies with it; answers
      // under 1 KiB (an incremental pull with nothing new) are not worth compressing.
      const big = x.responseBytes >= 1024
      assert.equal(x.responseEncoding, compressed && big ? 'gzip' : null, `${what} (${x.responseBytes} bytes)`)
      if (big) assert.match(x.vary || '', /accept-encoding/i, what)
    } else {
      assert.equal(x.requestEncoding, compressed ? 'gzip' : null, what)
      if (compressed) {
        assert.ok(x.requestWireBytes * 3 < x.requestJsonBytes,
          `${what}: ${x.requestWireBytes} bytes gzipped of ${x.requestJsonBytes}`)
      }
      assert.deepEqual(x.responseBody, {}, what)
    }
  }
  // How many pulls were big enough to be compressed.
  return exchanges.filter((x) => x.method === 'GET' && x.responseBytes >= 1024).length
}

test('gzip pulls and gzip pushes: the same records as plain sync, on the server and on every device', { skip: SKIP }, async () => {
  const seed = await world.seedTask()
  const a = await newDevice('gzip-a', 'a', { compressed: true })
  const b = await newDevice('plain-b', 'b', { compressed: false })
  let na = a.requests.length
  let nb = b.requests.length
  await a.sync()
  await b.sync()
  // First pulls carry the task, its establishment and checklist version: several KiB.
  assert.equal(assertCodings(a, na, { compressed: true }), 1)
  assert.equal(assertCodings(b, nb, { compressed: false }), 1)

  // A fills in an inspection offline: every item of the table answered, some with notes.
  const items = [...KEY_ITEMS, ...GENERAL_ITEMS]
  const inspection = await a.db.write(() =>
    a.db.get('inspections').create((r) => {
      r.taskId = seed.taskId
      r.establishmentId = seed.establishmentId
      r.startedAt = 1750000000000
      r.lng = 116.3971
      r.lat = 39.9081
      r.gpsAccuracyM = 8.5
      r.crs = 'gcj02'
      r.team = JSON.stringify(seed.team)
      r.representativeName = '王老板'
      r.representativeSigned = true
      r.representativeRefused = false
      r.otherFindings = '冷藏柜温度计缺失'
      r.submitted = false
    }),
  )
  await a.db.write(() =>
    Promise.all(
      items.map((itemCode, i) =>
        a.db.get('answers').create((ans) => {
          ans._raw.id = lib.answerId(inspection.id, itemCode)
          ans.inspectionId = inspection.id
          ans.itemCode = itemCode
          ans.status = i % 6 === 5 ? 'fail' : 'pass'
          if (i % 4 === 0) ans.note = `第${i + 1}项：后厨地面有积水，已要求当场整改。`
        }),
      ),
    ),
  )
  na = a.requests.length
  await a.sync()
  assertCodings(a, na, { compressed: true })
  assert.ok(a.requests.slice(na).some((x) => x.method === 'POST'), 'the gzip device pushed')

  // The server stored what the gzip push said.
  const stored = await world.inspection(seed.taskId, inspection.id)
  assert.ok(stored, 'inspection stored')
  assert.equal(stored.other_findings, '冷藏柜温度计缺失')
  assert.equal(stored.answers.length, items.length)
  for (const [i, itemCode] of items.entries()) {
    const ans = stored.answers.find((x) => x.item_code === itemCode)
    assert.equal(ans.status, i % 6 === 5 ? 'fail' : 'pass', itemCode)
  }

  // The plain device pulls it; it edits an answer and pushes plain; the gzip device pulls that.
  nb = b.requests.length
  await b.sync()
  const answer = await b.db.get('answers').find(lib.answerId(inspection.id, items[0]))
  await b.db.write(() => answer.update((r) => { r.note = '已整改，复核通过' }))
  await b.sync()
  assertCodings(b, nb, { compressed: false })
  na = a.requests.length
  await a.sync()
  assertCodings(a, na, { compressed: true })
  assert.deepEqual(await records(a.db), await records(b.db), 'gzip and plain devices hold the same records')
  const edited = await a.db.get('answers').find(lib.answerId(inspection.id, items[0]))
  assert.equal(edited.note, '已整改，复核通过')

  // Fresh installs, one gzip and one plain: their first pulls give identical databases.
  const c = await newDevice('gzip-c', 'a', { compressed: true })
  const d = await newDevice('plain-d', 'b', { compressed: false })
  await c.sync()
  await d.sync()
  assert.equal(assertCodings(c, 0, { compressed: true }), 1)
  assert.equal(assertCodings(d, 0, { compressed: false }), 1)
  const fresh = await records(c.db)
  assert.ok(fresh.answers.some((x) => x.inspection_id === inspection.id && x.note === '已整改，复核通过'))
  assert.deepEqual(fresh, await records(d.db), 'first pulls, gzip and plain, hold the same records')
  assert.deepEqual(fresh, await records(a.db), 'a fresh gzip install holds what the long-lived device holds')
})
