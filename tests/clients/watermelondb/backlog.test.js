'use strict'
// Sync at the edges with a real WatermelonDB 0.28.0 client (issue 9, items 4 and 6):
//   B1. a long offline backlog: WatermelonDB sends every unsynced record in ONE push (about
//       10 MB: 200 inspections with 30 answers carrying long notes, 400 photo records); the
//       server takes it whole, and the device ends with nothing unsynced. (The record count of a
//       week, 33,000, is pushed by tests/api/sync_edge.rs: LokiJS needs minutes to mark that
//       many records synced, which is the client's cost, not the protocol's.)
//   B2. an inspection recorded 5 km from the shop comes back to the device with
//       server_flags = ["outside_radius"], one on site with none.
// Same environment as sync.test.js (FOODCHECK_URL, FOODCHECK_ADMIN_USERNAME/PASSWORD); run by
// ../run-sync-tests.sh.

const { describe, test, before } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')

const lib = require('./lib')
const { RealServer } = require('./real-server')

const BASE_URL = process.env.FOODCHECK_URL ? process.env.FOODCHECK_URL.replace(/\/+$/, '') : null
const SKIP = BASE_URL ? false : 'needs a real server: run ../run-sync-tests.sh, or set FOODCHECK_URL'

// All 30 items of the 2016 checklist.
const ITEMS = ['1.1', '2.1', '2.2', '2.3', '3.1', '3.2', '4.1', '4.2', '4.3', '4.4', '5.1', '5.2', '5.3', '5.4',
  '6.1', '6.2', '6.3', '7.1', '7.2', '7.3', '7.4', '7.5', '7.6', '8.1', '8.2', '8.3', '8.4', '9.1', '9.2', '9.3']

let world

async function newDevice(label, who = 'a') {
  const person = world.inspectors[who]
  const deviceId = `wmdb-${label}-${crypto.randomUUID()}`
  const token = await lib.login(BASE_URL, { username: person.username, password: person.password, deviceId })
  const db = await lib.makeDatabase({ schema: lib.appSchemaFor(), migrations: lib.migrationsFor(), name: deviceId })
  const requests = []
  return {
    db,
    requests,
    sync: () => lib.sync(db, { baseUrl: BASE_URL, token, onRequest: (r) => requests.push(r) }),
  }
}

function inspectionFields(seed, lng, lat) {
  return (r) => {
    r.taskId = seed.taskId
    r.establishmentId = seed.establishmentId
    r.startedAt = 1750000000000
    r.lng = lng
    r.lat = lat
    r.gpsAccuracyM = 8.5
    r.crs = 'gcj02'
    r.team = JSON.stringify(seed.team)
    r.representativeSigned = false
    r.representativeRefused = false
    r.submitted = false
  }
}

describe('sync edges with WatermelonDB 0.28.0 against the real server', { skip: SKIP }, () => {
  before(async () => {
    world = new RealServer(BASE_URL, {
      adminUsername: process.env.FOODCHECK_ADMIN_USERNAME,
      adminPassword: process.env.FOODCHECK_ADMIN_PASSWORD,
    })
    await world.setUp()
  })

  test('B1. a 10 MB offline backlog (200 inspections × 30 answers with notes + 400 photo records) is one push', async () => {
    const seed = await world.seedTask()
    const dev = await newDevice('backlog')
    await dev.sync() // the task, its establishment and checklist
    const note = '冷藏柜温度记录完整，操作人员持健康证上岗；现场检查未发现过期食品。'.repeat(16)
    const inspections = dev.db.get('inspections')
    const answers = dev.db.get('answers')
    const photos = dev.db.get('photos')
    await dev.db.write(async () => {
      const batch = []
      for (let n = 0; n < 200; n++) {
        const insp = inspections.prepareCreate(inspectionFields(seed, 116.3971, 39.9081))
        batch.push(insp)
        for (const item of ITEMS) {
          batch.push(answers.prepareCreate((a) => {
            a._raw.id = lib.answerId(insp.id, item)
            a.inspectionId = insp.id
            a.itemCode = item
            a.status = 'pass'
            a.note = note
          }))
        }
        for (let k = 0; k < 2; k++) {
          batch.push(photos.prepareCreate((p) => {
            p.inspectionId = insp.id
            p.itemCode = '3.1'
            p.sha256 = crypto.createHash('sha256').update(`${insp.id}:${k}`).digest('hex')
            p.byteSize = 2000000
            p.takenAt = 1750000000000
          }))
        }
      }
      await dev.db.batch(batch)
    })
    assert.equal(await hasUnsyncedChanges({ database: dev.db }), true)

    const before = dev.requests.length
    await dev.sync()
    const posts = dev.requests.slice(before).filter((r) => r.method === 'POST')
    assert.equal(posts.length, 1, 'WatermelonDB sends the whole backlog in one push')
    const push = posts[0]
    assert.equal(push.status, 200, JSON.stringify(push.responseBody).slice(0, 500))
    assert.deepEqual(push.responseBody, {})
    const size = Buffer.byteLength(JSON.stringify({ changes: push.requestBody.changes }))
    const records = ['inspections', 'answers', 'photos']
      .map((t) => push.requestBody.changes[t].created.length)
      .reduce((a, b) => a + b, 0)
    assert.ok(size > 9_000_000, `the push was only ${size} bytes`)
    assert.equal(records, 6600)
    assert.equal(await hasUnsyncedChanges({ database: dev.db }), false, 'nothing left unsynced')

    const onServer = await world.inspectionsOfTask(seed.taskId)
    assert.equal(onServer.length, 200)
    assert.equal(onServer.reduce((n, i) => n + i.answers.length, 0), 6000)
    assert.equal(onServer.reduce((n, i) => n + i.photos.length, 0), 400)
  })

  test('B2. an inspection 5 km from the shop comes back with server_flags ["outside_radius"]', async () => {
    const seed = await world.seedTask() // the shop is at GCJ-02 (116.397, 39.908)
    const dev = await newDevice('geofence')
    await dev.sync()
    const far = await dev.db.write(() =>
      dev.db.get('inspections').create(inspectionFields(seed, 116.397, 39.908 + 5000 / 111195)))
    const near = await dev.db.write(() =>
      dev.db.get('inspections').create(inspectionFields(seed, 116.3971, 39.9081)))
    await dev.sync() // push
    await dev.sync() // the server's flags come back
    assert.equal((await dev.db.get('inspections').find(far.id)).serverFlags, '["outside_radius"]')
    assert.equal((await dev.db.get('inspections').find(near.id)).serverFlags, null)
    const reviewed = await world.inspection(seed.taskId, far.id)
    assert.deepEqual(reviewed.flags, ['outside_radius'])
    // A teammate's device receives the flag too.
    const b = await newDevice('geofence-b', 'b')
    await b.sync()
    assert.equal((await b.db.get('inspections').find(far.id)).serverFlags, '["outside_radius"]')
  })
})
