'use strict'
// Sync scenarios with a real WatermelonDB 0.28.0 client (LokiJS in memory) against a REAL
// foodcheck server. Start one with ../run-sync-tests.sh, or point at a running one:
//
//   FOODCHECK_URL             base URL, e.g. http://127.0.0.1:8080 (without it these tests are skipped)
//   FOODCHECK_ADMIN_USERNAME  an admin account (default admin)
//   FOODCHECK_ADMIN_PASSWORD  its password (default admin-password-123)
//
// Server state is arranged and inspected only through the public API (real-server.js): users,
// establishments, plans + draw → tasks, task cancellation, GET /api/v1/inspections?task_id=.
// Every run creates its own inspectors (a and b: the team of every task; outsider: in no team)
// and its own establishments, so it also runs against a server that already holds data.
//
// On a failure the message ends with the last HTTP exchanges of the scenario (method, URL,
// status, request and response bodies), which is what the server engineer needs.

const { describe, test, before } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')

const lib = require('./lib')
const { RealServer, TEMPLATE_ID, TEMPLATE_VERSION, KEY_ITEMS, GENERAL_ITEMS } = require('./real-server')

const BASE_URL = process.env.FOODCHECK_URL ? process.env.FOODCHECK_URL.replace(/\/+$/, '') : null
const SKIP = BASE_URL ? false : 'needs a real server: run ../run-sync-tests.sh, or set FOODCHECK_URL'

const uuid = () => crypto.randomUUID()
const query = (r) => Object.fromEntries(new URL(r.url).searchParams)
const ids = (list) => (list || []).map((r) => (typeof r === 'string' ? r : r.id))
const sorted = (xs) => [...xs].sort()

let world // RealServer

// ---------------------------------------------------------------------------------------------
// Failure reports: every HTTP exchange of the current scenario, the last ones appended to the
// assertion message.

let exchanges = []
// Purging tombstones needs the server's CLI on the same database (run-sync-tests.sh says where).
const PURGE_SKIP = process.env.FOODCHECK_TEST_BIN && process.env.FOODCHECK_TEST_DATA_DIR
  ? false
  : 'needs FOODCHECK_TEST_BIN and FOODCHECK_TEST_DATA_DIR (set by run-sync-tests.sh)'

/** `foodcheck sync purge-tombstones --older-than-days 0` against the server's database. */
function purgeTombstones() {
  const out = require('node:child_process').execFileSync(
    process.env.FOODCHECK_TEST_BIN,
    ['--data-dir', process.env.FOODCHECK_TEST_DATA_DIR, 'sync', 'purge-tombstones', '--older-than-days', '0'],
    { cwd: process.env.FOODCHECK_TEST_DATA_DIR, env: process.env, encoding: 'utf8' },
  )
  assert.match(out, /^\d+ tombstones purged/)
}

const CLIP = Number(process.env.FOODCHECK_CLIP) || 1500 // characters of each body in failure reports
const clip = (v, n = CLIP) => {
  const s = v === undefined ? '' : JSON.stringify(v)
  return s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s
}
function scenario(name, opts, fn) {
  if (typeof opts === 'function') [opts, fn] = [{}, opts]
  test(name, opts, async (t) => {
    exchanges = []
    try {
      await fn(t)
    } catch (err) {
      const last = exchanges.slice(-6).map((x) =>
        `  [${x.device}] ${x.method} ${x.url.replace(BASE_URL, '')} → ${x.status}\n` +
        (x.requestBody !== undefined ? `      request:  ${clip(x.requestBody)}\n` : '') +
        `      response: ${clip(x.responseBody)}`)
      if (last.length) err.message += `\n--- last sync exchanges of this scenario (${exchanges.length} in all):\n${last.join('\n')}`
      throw err
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Devices

/** A fresh app install of inspector `who` ('a', 'b', 'outsider'), logged in with its own device_id. */
async function newDevice(label, who = 'a', { version = 2 } = {}) {
  const person = world.inspectors[who]
  const deviceId = `wmdb-${label}-${uuid()}`
  const token = await lib.login(BASE_URL, { username: person.username, password: person.password, deviceId })
  const db = await lib.makeDatabase({
    schema: lib.appSchemaFor(version),
    migrations: lib.migrationsFor(version),
    name: deviceId,
  })
  const device = {
    label,
    who,
    deviceId,
    db,
    token,
    requests: [],
    async sync(opts = {}) {
      return lib.sync(device.db, {
        baseUrl: BASE_URL,
        token,
        schemaVersion: device.db.schema.version,
        onRequest: (r) => {
          device.requests.push(r)
          exchanges.push({ device: label, ...r })
        },
        ...opts,
      })
    },
    async upgrade(toVersion) {
      device.db = await lib.reopenDatabase(device.db, { schema: lib.appSchemaFor(toVersion) })
    },
    requestsSince(n) {
      return device.requests.slice(n)
    },
  }
  return device
}

async function createInspection(db, seed, fields = {}) {
  return db.write(() =>
    db.get('inspections').create((r) => {
      r.taskId = seed.taskId
      r.establishmentId = seed.establishmentId
      r.startedAt = 1750000000000
      r.lng = 116.3971
      r.lat = 39.9081
      r.gpsAccuracyM = 8.5
      r.crs = 'gcj02'
      r.team = JSON.stringify(seed.team)
      r.representativeSigned = false
      r.representativeRefused = false
      r.submitted = false
      Object.assign(r, fields)
    }),
  )
}

/** items: [[itemCode, status, note?, id?]]; ids default to lib.answerId(inspection, item). */
async function addAnswers(db, inspectionId, items) {
  return db.write(() =>
    Promise.all(
      items.map(([itemCode, status, note, id]) =>
        db.get('answers').create((a) => {
          a._raw.id = id || lib.answerId(inspectionId, itemCode)
          a.inspectionId = inspectionId
          a.itemCode = itemCode
          a.status = status
          if (note !== undefined) a.note = note
        }),
      ),
    ),
  )
}

// 3 key items + 8 general items answered pass/fail (7 general pass, 2.3 fails) and one key item
// not applicable: coverage is met; the 2016 rule gives 基本符合 (basically_compliant):
// no key item failed, general pass rate 7/8 = 87.5 %.
const FIRST_ANSWERS = [['1.1', 'pass'], ['2.3', 'fail', '冷藏温度 9℃'], ['4.2', 'not_applicable']]
const MORE_ANSWERS = [
  ['3.1', 'pass'], ['3.2', 'pass'], ['4.1', 'pass'],
  ['2.1', 'pass'], ['2.2', 'pass'], ['4.3', 'pass'], ['4.4', 'pass'], ['5.1', 'pass'], ['5.2', 'pass'],
]
const FULL_ANSWERS = [...FIRST_ANSWERS, ...MORE_ANSWERS]
const EXPECTED_RESULT = 'basically_compliant'

async function submit(db, inspectionId, fields = {}) {
  const rec = await db.get('inspections').find(inspectionId)
  await db.write(() =>
    rec.update((r) => {
      r.finishedAt = 1750003600000
      r.representativeName = r.representativeName || '王老板'
      r.representativeSigned = true
      r.declaredResult = EXPECTED_RESULT
      r.submitted = true
      Object.assign(r, fields)
    }),
  )
  return rec
}

/** Syncs and returns this sync's [GET, POST?] exchanges. */
async function syncAndGet(device, opts) {
  const n = device.requests.length
  const log = await device.sync(opts)
  const [get, post, ...rest] = device.requestsSince(n)
  assert.equal(rest.length, 0, 'one synchronize() makes at most one GET and one POST')
  assert.equal(get.method, 'GET')
  if (post) assert.equal(post.method, 'POST')
  return { get, post, log }
}

function assertPushAccepted(post, what = 'push') {
  assert.ok(post, `${what}: expected a POST`)
  assert.equal(post.status, 200, `${what}: HTTP ${post.status} ${clip(post.responseBody)}`)
  const rejected = post.responseBody && post.responseBody.experimentalRejectedIds
  assert.ok(!rejected || Object.values(rejected).every((l) => l.length === 0),
    `${what}: expected nothing refused, got ${clip(post.responseBody)}`)
}

/** Asserts the push refused exactly `expected` ({table: {id: code | [codes]}}) and nothing else. */
function assertRefused(post, expected) {
  assert.ok(post, 'expected a POST')
  assert.equal(post.status, 200, `HTTP ${post.status} ${clip(post.responseBody)}`)
  const body = post.responseBody || {}
  const wantIds = Object.fromEntries(Object.entries(expected).map(([t, m]) => [t, sorted(Object.keys(m))]))
  const gotIds = Object.fromEntries(
    Object.entries(body.experimentalRejectedIds || {}).filter(([, l]) => l.length).map(([t, l]) => [t, sorted(l)]))
  assert.deepEqual(gotIds, wantIds, `experimentalRejectedIds; response ${clip(body)}`)
  assert.ok(Array.isArray(body.rejected), `"rejected" list missing; response ${clip(body)}`)
  for (const [table, m] of Object.entries(expected)) {
    for (const [id, code] of Object.entries(m)) {
      const entry = body.rejected.find((r) => r.table === table && r.id === id)
      assert.ok(entry, `no "rejected" entry for ${table} ${id}; response ${clip(body)}`)
      const codes = Array.isArray(code) ? code : [code]
      assert.ok(codes.includes(entry.code), `${table} ${id}: code ${entry.code}, expected ${codes.join(' or ')} (${entry.message})`)
      assert.equal(typeof entry.message, 'string')
    }
  }
  assert.equal(body.rejected.length, Object.values(wantIds).flat().length, `"rejected" has extra entries: ${clip(body.rejected)}`)
}

const answerRows = (serverInspection) =>
  sorted((serverInspection.answers || []).map((x) => `${x.item_code}|${x.status}|${x.note ?? ''}|${x.id}`))
const expectedAnswerRows = (inspectionId, items) =>
  sorted(items.map(([code, status, note]) => `${code}|${status}|${note ?? ''}|${lib.answerId(inspectionId, code)}`))

async function localAnswers(db, inspectionId) {
  const recs = await db.get('answers').query().fetch()
  return recs.filter((a) => a.inspectionId === inspectionId)
}

// ---------------------------------------------------------------------------------------------

describe('foodcheck sync with WatermelonDB 0.28.0 against the real server', { skip: SKIP }, () => {
  before(async () => {
    world = new RealServer(BASE_URL, {
      adminUsername: process.env.FOODCHECK_ADMIN_USERNAME,
      adminPassword: process.env.FOODCHECK_ADMIN_PASSWORD,
    })
    await world.setUp()
  })

  scenario('1. first sync of a new device: tasks, establishments, checklist version; then a server-side edit arrives incrementally', async () => {
    const s1 = await world.seedTask()
    const s2 = await world.seedTask()
    const a = await newDevice('first-sync', 'a')

    const { get, post, log } = await syncAndGet(a)
    assert.equal(post, undefined, 'no local changes → pull only, no POST')
    assert.deepEqual(query(get), { last_pulled_at: 'null', schema_version: '2', migration: 'null' })
    assert.equal(get.status, 200)
    const { changes, timestamp } = get.responseBody
    assert.ok(Number.isInteger(timestamp) && timestamp > 0, 'timestamp must be an integer > 0')
    assert.equal(log.newLastPulledAt, timestamp)
    for (const [table, c] of Object.entries(changes)) {
      for (const rec of [...c.created, ...c.updated]) {
        assert.ok(!('_status' in rec) && !('_changed' in rec), `${table} ${rec.id}: pulled records carry no _status/_changed`)
      }
      assert.deepEqual(c.deleted, [], `${table}: a first sync sends no deletions`)
    }
    for (const s of [s1, s2]) {
      assert.ok(ids(changes.tasks.created).includes(s.taskId), `task ${s.taskId} is sent as created`)
      assert.ok(ids(changes.establishments.created).includes(s.establishmentId), 'its establishment too')
    }

    const task = await a.db.get('tasks').find(s1.taskId)
    assert.equal(task._raw._status, 'synced')
    assert.equal(task.planId, s1.planId)
    assert.equal(task.establishmentId, s1.establishmentId)
    assert.equal(task.templateId, TEMPLATE_ID)
    assert.equal(task.templateVersion, TEMPLATE_VERSION)
    assert.equal(task.dueDate, '2099-03-31')
    assert.equal(task.state, 'assigned')
    assert.deepEqual(JSON.parse(task.mustCheckItems), [])
    assert.equal(task.roundTitle, s1.task.round_title)

    const est = await a.db.get('establishments').find(s1.establishmentId)
    const body = s1.establishment.body
    assert.equal(est.signName, body.sign_name)
    assert.equal(est.licensedName, body.licensed_name)
    assert.equal(est.address, body.address)
    assert.equal(est.town, body.town)
    assert.equal(est.category, 'small_restaurant')
    assert.equal(est.riskGrade, 'C')
    assert.equal(est.lng, 116.397)
    assert.equal(est.lat, 39.908)
    assert.equal(est.crs, 'gcj02')

    const versions = (await a.db.get('checklist_versions').query().fetch())
      .filter((v) => v.templateId === TEMPLATE_ID && v.version === TEMPLATE_VERSION)
    assert.equal(versions.length, 1, 'the checklist version the tasks use arrives once')
    assert.ok(versions[0].title)
    const content = JSON.parse(versions[0].content)
    const items = (content.sections || []).flatMap((s) => s.items || [])
    assert.deepEqual(sorted(items.map((i) => i.code)), sorted([...KEY_ITEMS, ...GENERAL_ITEMS]),
      'content: sections → items of the 2016 table')
    assert.deepEqual(sorted(items.filter((i) => i.key).map((i) => i.code)), sorted(KEY_ITEMS))
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)

    // server-side changes after the pull: an establishment edited, a task cancelled
    await world.updateEstablishment(s1.establishment, { sign_name: `${body.sign_name}（新招牌）`, address: '幸福路 99 号' })
    await world.cancelTask(s2.taskId)
    const { get: get2, post: post2 } = await syncAndGet(a)
    assert.equal(post2, undefined)
    assert.deepEqual(query(get2), { last_pulled_at: String(timestamp), schema_version: '2', migration: 'null' })
    const c2 = get2.responseBody.changes
    assert.ok(get2.responseBody.timestamp > timestamp, 'the cursor moved')
    assert.ok(ids(c2.establishments.updated).includes(s1.establishmentId), 'edited establishment comes as updated')
    assert.ok(!ids(c2.establishments.created).includes(s1.establishmentId))
    assert.ok(ids(c2.tasks.updated).includes(s2.taskId), 'cancelled task comes as updated')
    assert.ok(!ids(c2.tasks.created).includes(s2.taskId))
    assert.equal((await a.db.get('establishments').find(s1.establishmentId)).signName, `${body.sign_name}（新招牌）`)
    assert.equal((await a.db.get('establishments').find(s1.establishmentId)).address, '幸福路 99 号')
    assert.equal((await a.db.get('tasks').find(s2.taskId)).state, 'cancelled')
    assert.equal((await a.db.get('tasks').find(s1.taskId)).state, 'assigned')

    // nothing changed since: nothing is sent again
    const { get: get3 } = await syncAndGet(a)
    assert.equal(query(get3).last_pulled_at, String(get2.responseBody.timestamp))
    const c3 = get3.responseBody.changes
    for (const t of Object.keys(c3)) {
      const again = [...ids(c3[t].created), ...ids(c3[t].updated), ...c3[t].deleted]
        .filter((id) => [s1.taskId, s2.taskId, s1.establishmentId, s2.establishmentId].includes(id))
      assert.deepEqual(again, [], `${t}: unchanged records are not sent again`)
    }
  })

  scenario('2. inspection done offline, pushed, then submitted: computed_result comes back, task submitted, failed items must-check next round', async () => {
    const s = await world.seedTask()
    const a = await newDevice('inspector-a', 'a')
    await a.sync()

    // offline work
    const insp = await createInspection(a.db, s, { representativeName: '王老板', businessOpinion: '无异议' })
    await addAnswers(a.db, insp.id, FIRST_ANSWERS)
    assert.equal(insp._raw._status, 'created')

    const { get, post } = await syncAndGet(a)
    assertPushAccepted(post)
    assert.deepEqual(post.responseBody, {}, 'everything applied → 200 {}')
    assert.deepEqual(query(post), { last_pulled_at: String(get.responseBody.timestamp) },
      'push carries the timestamp of the pull made by the same synchronize()')
    const { changes } = post.requestBody
    assert.deepEqual(Object.keys(changes).sort(), Object.keys(a.db.schema.tables).sort(),
      'every table of the local schema is present in the push')
    const pushed = changes.inspections.created[0]
    assert.equal(pushed.id, insp.id)
    assert.equal(pushed._status, 'created')
    assert.equal(pushed._changed, '')
    assert.equal(pushed.computed_result, null, 'server-only columns are pushed too (the server ignores them)')
    assert.deepEqual(sorted(ids(changes.answers.created)), sorted(FIRST_ANSWERS.map(([c]) => lib.answerId(insp.id, c))))
    assert.equal((await lib.rawOf(a.db, 'inspections', insp.id))._status, 'synced')
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)

    let onServer = await world.inspection(s.taskId, insp.id)
    assert.ok(onServer, 'GET /api/v1/inspections?task_id= lists the pushed inspection')
    assert.equal(onServer.task_id, s.taskId)
    assert.equal(onServer.submitted, false)
    assert.equal(onServer.computed_result ?? null, null)
    assert.deepEqual(answerRows(onServer), expectedAnswerRows(insp.id, FIRST_ANSWERS))

    // finish and submit offline
    await addAnswers(a.db, insp.id, MORE_ANSWERS)
    await submit(a.db, insp.id)
    const { post: post2 } = await syncAndGet(a)
    assertPushAccepted(post2, 'submission')
    assert.equal(post2.requestBody.changes.inspections.updated[0].submitted, true)
    assert.equal((await lib.rawOf(a.db, 'inspections', insp.id))._status, 'synced')

    onServer = await world.inspection(s.taskId, insp.id)
    assert.equal(onServer.submitted, true)
    assert.equal(onServer.computed_result, EXPECTED_RESULT)
    assert.deepEqual(answerRows(onServer), expectedAnswerRows(insp.id, FULL_ANSWERS))
    assert.equal((await world.task(s.taskId)).state, 'submitted')

    // the next pull brings the server's decision back to the device
    const { get: get3, post: post3 } = await syncAndGet(a)
    assert.equal(post3, undefined)
    const c3 = get3.responseBody.changes
    const back = c3.inspections.updated.find((r) => r.id === insp.id)
    assert.ok(back, 'the submitted inspection comes back as updated (this device created it)')
    assert.ok(!ids(c3.inspections.created).includes(insp.id))
    assert.equal(back.computed_result, EXPECTED_RESULT)
    assert.ok(ids(c3.tasks.updated).includes(s.taskId), 'the task comes back as updated')
    const local = await a.db.get('inspections').find(insp.id)
    assert.equal(local.computedResult, EXPECTED_RESULT)
    assert.equal(local.submitted, true)
    assert.equal(local._raw._status, 'synced')
    assert.equal((await a.db.get('tasks').find(s.taskId)).state, 'submitted')

    // the failed item (2.3) is a must-check item of the establishment's next round
    const next = await world.seedTask({ establishment: s.establishment })
    assert.deepEqual(next.task.must_check_items, ['2.3'], 'GET /api/v1/tasks: must_check_items of the next round')
    const { get: get4 } = await syncAndGet(a)
    assert.ok(ids(get4.responseBody.changes.tasks.created).includes(next.taskId),
      `a task drawn after the device's last pull (${next.taskId}) must arrive in the next incremental pull as created; ` +
      `GET last_pulled_at=${query(get4).last_pulled_at} → timestamp ${get4.responseBody.timestamp}, tasks ${clip(get4.responseBody.changes.tasks)}`)
    assert.deepEqual(JSON.parse((await a.db.get('tasks').find(next.taskId)).mustCheckItems), ['2.3'])
  })

  scenario('3. two devices of the same team edit the same inspection offline → 409 → pull, per-column merge, push', async () => {
    const s = await world.seedTask()
    const a = await newDevice('editor-a', 'a')
    const b = await newDevice('editor-b', 'b')
    await a.sync()
    const insp = await createInspection(a.db, s)
    const { post } = await syncAndGet(a)
    assertPushAccepted(post)
    await b.sync()
    const onA = await a.db.get('inspections').find(insp.id)
    const onB = await b.db.get('inspections').find(insp.id)
    assert.equal(onB._raw._status, 'synced')

    // both offline: different columns, plus one column edited on both
    await a.db.write(() =>
      onA.update((r) => {
        r.businessOpinion = 'A: 对检查结果无异议'
        r.representativeName = 'A 记录的负责人'
      }),
    )
    await b.db.write(() =>
      onB.update((r) => {
        r.otherFindings = 'B: 后厨有鼠迹'
        r.representativeName = 'B 记录的负责人'
      }),
    )
    assert.deepEqual(onB._raw._changed.split(',').sort(), ['other_findings', 'representative_name'])

    // B pulls, then (before B's push) A syncs (pull + push): B's push must get 409
    const nB = b.requests.length
    const nA = a.requests.length
    await assert.rejects(
      b.sync({ beforePush: () => a.sync() }),
      (err) => {
        assert.ok(err instanceof lib.SyncHttpError, `expected an HTTP error, got ${err}`)
        assert.equal(err.status, 409, `B's push: expected 409, got ${err.status} ${clip(err.body)}`)
        return true
      },
    )
    const aPost = a.requestsSince(nA).find((r) => r.method === 'POST')
    assertPushAccepted(aPost, "A's push")
    const [bGet1, bPost1] = b.requestsSince(nB)
    assert.equal(bPost1.status, 409)
    assert.equal(bPost1.responseBody.error.code, 'sync_conflict')
    const bRaw = await lib.rawOf(b.db, 'inspections', insp.id)
    assert.equal(bRaw._status, 'updated', "B's edits are still pending")
    assert.equal(bRaw.other_findings, 'B: 后厨有鼠迹')
    // nothing of B's push was applied
    const mid = await world.inspection(s.taskId, insp.id)
    if ('other_findings' in mid) assert.equal(mid.other_findings ?? null, null, "409: B's push applied nothing")

    // B syncs again: pulls A's edit, WatermelonDB merges per column (locally changed columns win)
    const { get: bGet2, post: bPost2, log } = await syncAndGet(b)
    assert.equal(query(bGet2).last_pulled_at, String(bGet1.responseBody.timestamp),
      "the retry pulls from the timestamp of the failed sync's pull")
    assert.ok(ids(bGet2.responseBody.changes.inspections.updated).includes(insp.id), "A's edit arrives as updated")
    assertPushAccepted(bPost2, "B's second push")
    const bPushed = bPost2.requestBody.changes.inspections.updated[0]
    assert.equal(bPushed.business_opinion, 'A: 对检查结果无异议', "merged: A's column")
    assert.equal(bPushed.other_findings, 'B: 后厨有鼠迹', "merged: B's column")
    assert.equal(bPushed.representative_name, 'B 记录的负责人', 'same column: the local edit wins')
    assert.equal(log.resolvedConflicts.length, 1)

    const final = await world.inspection(s.taskId, insp.id)
    for (const [col, want] of [
      ['business_opinion', 'A: 对检查结果无异议'],
      ['other_findings', 'B: 后厨有鼠迹'],
      ['representative_name', 'B 记录的负责人'],
    ]) {
      if (col in final) assert.equal(final[col], want, `server ${col}`)
    }

    await a.sync()
    const aFinal = await a.db.get('inspections').find(insp.id)
    assert.equal(aFinal.otherFindings, 'B: 后厨有鼠迹')
    assert.equal(aFinal.businessOpinion, 'A: 对检查结果无异议')
    assert.equal(aFinal.representativeName, 'B 记录的负责人')
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)
    assert.equal(await hasUnsyncedChanges({ database: b.db }), false)
    assert.equal((await world.inspectionsOfTask(s.taskId)).length, 1)
  })

  scenario('4. deleting an answer: the tombstone reaches the other device', async () => {
    const s = await world.seedTask()
    const a = await newDevice('deleter', 'a')
    const b = await newDevice('observer', 'b')
    await a.sync()
    const insp = await createInspection(a.db, s)
    const [keep, drop] = await addAnswers(a.db, insp.id, [['1.1', 'pass'], ['2.3', 'fail']])
    assertPushAccepted((await syncAndGet(a)).post)
    await b.sync()
    assert.ok(await lib.rawOf(b.db, 'answers', drop.id), 'B has the answer before the deletion')

    await a.db.write(() => drop.markAsDeleted())
    assert.deepEqual(await a.db.adapter.getDeletedRecords('answers'), [drop.id])
    const { post } = await syncAndGet(a)
    assert.deepEqual(post.requestBody.changes.answers, { created: [], updated: [], deleted: [drop.id] })
    assertPushAccepted(post)
    assert.equal(await lib.rawOf(a.db, 'answers', drop.id), null, 'pushed deletion is purged locally')
    assert.deepEqual(await a.db.adapter.getDeletedRecords('answers'), [])

    const onServer = await world.inspection(s.taskId, insp.id)
    assert.deepEqual(ids(onServer.answers), [keep.id], 'server: the answer is gone, the other one stays')

    const { get } = await syncAndGet(b)
    assert.deepEqual(get.responseBody.changes.answers.deleted, [drop.id], "B's pull carries the tombstone")
    assert.equal(await lib.rawOf(b.db, 'answers', drop.id), null)
    assert.ok(await lib.rawOf(b.db, 'answers', keep.id))

    // a device installed after the deletion never sees the answer
    const c = await newDevice('late', 'b')
    await c.sync()
    assert.deepEqual((await localAnswers(c.db, insp.id)).map((x) => x.id), [keep.id])

    // The inspector answers the item again: the deterministic id is the tombstoned one. A's
    // next pull must not carry A's own deletion back: WatermelonDB destroys any local record
    // whose id is in `deleted`, including one just created (applyRemote.js), so the new answer
    // would be lost silently, never pushed.
    const [again] = await addAnswers(a.db, insp.id, [['2.3', 'pass', '复查已整改']])
    assert.equal(again.id, drop.id)
    const { get: reGet, post: rePost } = await syncAndGet(a)
    assert.ok(!reGet.responseBody.changes.answers.deleted.includes(drop.id),
      `A's own deletion must not come back to A in answers.deleted (it destroys the re-created answer ${drop.id}): ` +
      `GET ${query(reGet).last_pulled_at ? `last_pulled_at=${query(reGet).last_pulled_at}` : ''} → answers ${clip(reGet.responseBody.changes.answers)}`)
    assert.ok(await lib.rawOf(a.db, 'answers', drop.id), 'the re-created answer survives the pull')
    assertPushAccepted(rePost, 're-creating a record under a tombstoned id')
    assert.ok(answerRows(await world.inspection(s.taskId, insp.id)).includes(`2.3|pass|复查已整改|${drop.id}`))
    const logsBefore = lib.watermelonLogs.length
    const { get: bGet } = await syncAndGet(b)
    assert.ok(ids(bGet.responseBody.changes.answers.created).includes(drop.id),
      `the re-created answer is new to B: expected in answers.created, got ${clip(bGet.responseBody.changes.answers)}`)
    assert.equal((await b.db.get('answers').find(drop.id)).status, 'pass')
    assert.deepEqual(lib.watermelonLogs.slice(logsBefore).filter((l) => l.level === 'error'), [])
  })

  scenario('4b. a teammate still at the old cursor edits an answer deleted after it → 409, nothing applied, the deletion stands', async () => {
    const s = await world.seedTask()
    const a = await newDevice('stale-deleter', 'a')
    const b = await newDevice('stale-editor', 'b')
    await a.sync()
    const insp = await createInspection(a.db, s)
    const [keep, drop] = await addAnswers(a.db, insp.id, [['1.1', 'pass'], ['2.3', 'fail']])
    assertPushAccepted((await syncAndGet(a)).post)
    await b.sync()
    const dropOnB = await b.db.get('answers').find(drop.id)

    // B edits the answer offline; A deletes it
    await b.db.write(() => dropOnB.update((r) => { r.note = 'B: 冷藏温度 12℃' }))
    await a.db.write(() => drop.markAsDeleted())

    // B pulls (nothing new yet), then A pushes the deletion, then B pushes its stale edit
    const nB = b.requests.length
    await assert.rejects(
      b.sync({ beforePush: () => a.sync() }),
      (err) => {
        assert.ok(err instanceof lib.SyncHttpError, `expected an HTTP error, got ${err}`)
        assert.equal(err.status, 409, `B's stale edit of a deleted answer: expected 409, got ${err.status} ${clip(err.body)}`)
        return true
      },
    )
    const bPost = b.requestsSince(nB).find((r) => r.method === 'POST')
    assert.equal(bPost.responseBody.error.code, 'sync_conflict')
    assert.ok(ids(bPost.requestBody.changes.answers.updated).includes(drop.id), 'B pushed its edit as updated')
    const mid = await world.inspection(s.taskId, insp.id)
    assert.deepEqual(ids(mid.answers), [keep.id], '409: the deletion stands, the answer is not back')

    // B syncs again: the tombstone arrives; whatever WatermelonDB makes of the local edit, server
    // and device end up agreeing, and nothing is lost silently on the way
    const { get: bGet2, post: bPost2 } = await syncAndGet(b)
    assert.ok(bGet2.responseBody.changes.answers.deleted.includes(drop.id), "B's next pull carries the tombstone")
    if (bPost2) assertPushAccepted(bPost2, "B's second push")
    const onServer = ids((await world.inspection(s.taskId, insp.id)).answers).includes(drop.id)
    const onDevice = (await lib.rawOf(b.db, 'answers', drop.id)) !== null
    assert.equal(onDevice, onServer, `device and server disagree on answer ${drop.id}`)
    assert.equal(await hasUnsyncedChanges({ database: b.db }), false)
  })

  scenario('5. push response lost → retry → no duplicate on the server', async () => {
    const s = await world.seedTask()
    const a = await newDevice('flaky-network', 'a')
    await a.sync()
    const insp = await createInspection(a.db, s)
    const answers = await addAnswers(a.db, insp.id, [['1.1', 'pass'], ['2.3', 'fail']])

    const n = a.requests.length
    await assert.rejects(a.sync({ simulatePushResponseLost: true }), lib.PushResponseLostError)
    const lostPost = a.requestsSince(n).find((r) => r.method === 'POST')
    assertPushAccepted(lostPost, 'the lost push (as the server answered it)')
    assert.equal((await lib.rawOf(a.db, 'inspections', insp.id))._status, 'created',
      'the client never saw the answer: records stay unsynced')

    const count = async () => {
      const list = await world.inspectionsOfTask(s.taskId)
      return { inspections: list.length, answers: list.reduce((k, i) => k + (i.answers || []).length, 0) }
    }
    assert.deepEqual(await count(), { inspections: 1, answers: 2 })

    const logsBefore = lib.watermelonLogs.length
    const { get, post } = await syncAndGet(a)
    // the pull brings back what this device pushed, as `updated` (the device created it)
    assert.ok(ids(get.responseBody.changes.inspections.updated).includes(insp.id), 'own record comes back as updated')
    assert.ok(!ids(get.responseBody.changes.inspections.created).includes(insp.id), 'not as created')
    assert.ok(!lib.watermelonLogs.slice(logsBefore).some((l) => l.level === 'error'),
      'no "[Sync] ... already exists locally" error')
    assert.deepEqual(ids(post.requestBody.changes.inspections.created), [insp.id],
      'the retry re-sends the same records as created')
    assert.deepEqual(sorted(ids(post.requestBody.changes.answers.created)), sorted(ids(answers)))
    assertPushAccepted(post, 'the retry')
    assert.deepEqual(await count(), { inspections: 1, answers: 2 })
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)

    // a byte-for-byte replay of the lost POST (e.g. an HTTP-level retry) is harmless too
    const replay = await lib.httpJson('POST', lostPost.url, { token: a.token, body: lostPost.requestBody })
    assert.equal(replay.status, 200, `identical replay must be a no-op, not a conflict: ${replay.status} ${clip(replay.body)}`)
    assert.deepEqual(await count(), { inspections: 1, answers: 2 })
  })

  scenario('6. a refused record (answer with an unknown item code) stays unsynced locally and is re-sent', async () => {
    const s = await world.seedTask()
    const a = await newDevice('refused', 'a')
    await a.sync()
    const insp = await createInspection(a.db, s)
    const [good] = await addAnswers(a.db, insp.id, [['1.1', 'pass']])
    const [bad] = await addAnswers(a.db, insp.id, [['99.9', 'pass']])

    const { post, log } = await syncAndGet(a) // resolves: a refusal is not an error for synchronize()
    assertRefused(post, { answers: { [bad.id]: 'unknown_item' } })
    assert.deepEqual(log.rejectedIds, { answers: [bad.id] })
    assert.equal((await lib.rawOf(a.db, 'inspections', insp.id))._status, 'synced', 'the rest was applied')
    assert.equal((await lib.rawOf(a.db, 'answers', good.id))._status, 'synced')
    assert.equal((await lib.rawOf(a.db, 'answers', bad.id))._status, 'created', 'the refused record is left as it was')
    assert.equal(await hasUnsyncedChanges({ database: a.db }), true)
    assert.deepEqual(await lib.dirtyState(a.db), { answers: { created: [bad.id], updated: [], deleted: [] } })
    assert.deepEqual(ids((await world.inspection(s.taskId, insp.id)).answers), [good.id])

    // the next sync re-sends it, and it is refused again
    const { post: post2 } = await syncAndGet(a)
    assert.deepEqual(ids(post2.requestBody.changes.answers.created), [bad.id])
    assert.deepEqual(post2.requestBody.changes.inspections, { created: [], updated: [], deleted: [] })
    assertRefused(post2, { answers: { [bad.id]: 'unknown_item' } })

    // the user discards it and answers the right item
    await a.db.write(() => bad.markAsDeleted())
    const [fixed] = await addAnswers(a.db, insp.id, [['2.1', 'pass']])
    const { post: post3 } = await syncAndGet(a)
    const pushed3 = post3.requestBody.changes.answers
    assert.deepEqual([ids(pushed3.created), ids(pushed3.updated), pushed3.deleted], [[fixed.id], [], [bad.id]])
    assertPushAccepted(post3, 'deleting a never-synced record is a no-op on the server')
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)
    assert.deepEqual(sorted(ids((await world.inspection(s.taskId, insp.id)).answers)), sorted([good.id, fixed.id]))
  })

  scenario('7. a second device of the same inspector sees the first one\'s work', async () => {
    const s = await world.seedTask()
    const a1 = await newDevice('phone', 'a')
    await a1.sync()
    const insp = await createInspection(a1.db, s, { representativeName: '王老板', representativeSigned: true, businessOpinion: '无异议' })
    await addAnswers(a1.db, insp.id, FIRST_ANSWERS)
    assertPushAccepted((await syncAndGet(a1)).post)

    const a2 = await newDevice('tablet', 'a')
    const { get } = await syncAndGet(a2)
    assert.ok(ids(get.responseBody.changes.inspections.created).includes(insp.id), 'another device: created')
    const got = await a2.db.get('inspections').find(insp.id)
    assert.equal(got._raw._status, 'synced')
    assert.equal(got.taskId, s.taskId)
    assert.equal(got.establishmentId, s.establishmentId)
    assert.equal(got.startedAt, 1750000000000)
    assert.equal(got.lng, 116.3971)
    assert.equal(got.gpsAccuracyM, 8.5)
    assert.equal(got.crs, 'gcj02')
    assert.equal(got.representativeName, '王老板')
    assert.equal(got.representativeSigned, true)
    assert.equal(got.representativeRefused, false)
    assert.equal(got.businessOpinion, '无异议')
    assert.equal(got.submitted, false)
    assert.deepEqual(JSON.parse(got.team), s.team)
    assert.deepEqual(
      sorted((await localAnswers(a2.db, insp.id)).map((x) => `${x.itemCode}|${x.status}|${x.note ?? ''}|${x.id}`)),
      expectedAnswerRows(insp.id, FIRST_ANSWERS),
    )
    assert.ok(await a2.db.get('tasks').find(s.taskId))
    assert.ok(await a2.db.get('establishments').find(s.establishmentId))
  })

  scenario('8. the teammate (other inspector of the team) sees the inspection and can add to it', async () => {
    const s = await world.seedTask()
    const a = await newDevice('lead', 'a')
    await a.sync()
    const insp = await createInspection(a.db, s)
    await addAnswers(a.db, insp.id, FIRST_ANSWERS)
    assertPushAccepted((await syncAndGet(a)).post)

    const b = await newDevice('teammate', 'b')
    const { get } = await syncAndGet(b)
    assert.ok(ids(get.responseBody.changes.tasks.created).includes(s.taskId))
    assert.ok(ids(get.responseBody.changes.inspections.created).includes(insp.id))
    assert.deepEqual(
      sorted((await localAnswers(b.db, insp.id)).map((x) => x.id)),
      sorted(FIRST_ANSWERS.map(([c]) => lib.answerId(insp.id, c))),
    )
    // B answers another item; A receives it
    const [extra] = await addAnswers(b.db, insp.id, [['3.1', 'pass', 'B 补充']])
    assertPushAccepted((await syncAndGet(b)).post, "teammate's push")
    const { get: aGet } = await syncAndGet(a)
    assert.ok(ids(aGet.responseBody.changes.answers.created).includes(extra.id), "B's answer reaches A as created")
    assert.equal((await a.db.get('answers').find(extra.id)).note, 'B 补充')
  })

  scenario('9. an inspector NOT in the team receives nothing of it, and cannot write to it', async () => {
    const s = await world.seedTask()
    const a = await newDevice('member', 'a')
    await a.sync()
    const insp = await createInspection(a.db, s)
    await addAnswers(a.db, insp.id, FIRST_ANSWERS)
    assertPushAccepted((await syncAndGet(a)).post)

    const o = await newDevice('outsider', 'outsider')
    const { get } = await syncAndGet(o)
    const c = get.responseBody.changes
    const everything = Object.values(c).flatMap((t) => [...ids(t.created), ...ids(t.updated)])
    for (const id of [s.taskId, s.establishmentId, insp.id, ...FIRST_ANSWERS.map(([code]) => lib.answerId(insp.id, code))]) {
      assert.ok(!everything.includes(id), `outsider must not receive ${id}`)
    }
    assert.deepEqual(ids(c.tasks.created), [], 'the outsider has no tasks at all')
    assert.equal(await o.db.get('inspections').query().fetchCount(), 0)

    // the outsider pushes an inspection of that task, and an answer to the team's inspection
    const own = await createInspection(o.db, s)
    const [intruding] = await addAnswers(o.db, insp.id, [['9.1', 'fail', 'outsider']])
    const { post } = await syncAndGet(o)
    assertRefused(post, {
      inspections: { [own.id]: 'not_your_task' },
      answers: { [intruding.id]: ['not_your_task', 'unknown_inspection'] },
    })
    const list = await world.inspectionsOfTask(s.taskId)
    assert.deepEqual(ids(list), [insp.id])
    assert.ok(!ids(list[0].answers).includes(intruding.id))
  })

  scenario('10. migration pull: a schema-1 app upgrades to schema 2 and receives photos (and server_flags)', async () => {
    const s = await world.seedTask()
    // a v2 device records an inspection with a photo, declares a result the rule does not give
    // (the server may flag that in server_flags), and submits it
    const a = await newDevice('v2-camera', 'a')
    await a.sync()
    const insp = await createInspection(a.db, s)
    await addAnswers(a.db, insp.id, FULL_ANSWERS)
    const photo = await a.db.write(() =>
      a.db.get('photos').create((p) => {
        p.inspectionId = insp.id
        p.itemCode = '2.3'
        p.sha256 = crypto.createHash('sha256').update(`photo ${insp.id}`).digest('hex')
        p.byteSize = 123456
        p.takenAt = 1750000001000
      }),
    )
    await submit(a.db, insp.id, { declaredResult: 'compliant' })
    assertPushAccepted((await syncAndGet(a)).post)
    const onServer = await world.inspection(s.taskId, insp.id)
    assert.deepEqual(ids(onServer.photos), [photo.id], 'server has the photo record')
    await a.sync() // what a v2 device holds now: the server's server_flags
    const serverFlags = (await a.db.get('inspections').find(insp.id)).serverFlags

    // an older app (schema 1) of the teammate
    const dev = await newDevice('v1-app', 'b', { version: 1 })
    const { get: get1 } = await syncAndGet(dev)
    assert.deepEqual(query(get1), { last_pulled_at: 'null', schema_version: '1', migration: 'null' })
    assert.ok(!('photos' in get1.responseBody.changes), 'no table the v1 app does not know')
    const inspV1 = get1.responseBody.changes.inspections.created.find((r) => r.id === insp.id)
    assert.ok(inspV1, 'the v1 app receives the inspection')
    assert.ok(!('server_flags' in inspV1), 'no column the v1 app does not know')
    assert.equal(await dev.db.adapter.getLocal('__watermelon_last_pulled_schema_version'), '1')

    // app update: same local data, schema 2 with its migration (create photos, add server_flags)
    await dev.upgrade(2)
    assert.equal(await dev.db.get('photos').query().fetchCount(), 0)
    const logsBefore = lib.watermelonLogs.length
    const { get: get2, post: post2 } = await syncAndGet(dev)
    assert.equal(post2, undefined)
    const q = query(get2)
    assert.equal(q.last_pulled_at, String(get1.responseBody.timestamp))
    assert.equal(q.schema_version, '2')
    assert.deepEqual(JSON.parse(q.migration), {
      from: 1,
      tables: ['photos'],
      columns: [{ table: 'inspections', columns: ['server_flags'] }],
    })
    const c2 = get2.responseBody.changes
    assert.ok(c2.photos, 'the migration pull has the photos table')
    const got = await lib.rawOf(dev.db, 'photos', photo.id)
    assert.ok(got, 'the photo is on the upgraded device')
    assert.equal(got.inspection_id, insp.id)
    assert.equal(got.item_code, '2.3')
    assert.equal(got.sha256, photo.sha256)
    assert.equal(got.byte_size, 123456)
    assert.equal(got.taken_at, 1750000001000)
    // The device cannot have any record of a table its migration just created: they must come
    // as `created`. As `updated`, WatermelonDB still creates them but logs, for each one,
    // console.error "[Sync] Server wants client to update record photos#… but it doesn't exist
    // locally. This could be a serious bug. Will create record instead." (applyRemote.js).
    const wmErrors = lib.watermelonLogs.slice(logsBefore).filter((l) => l.level === 'error').map((l) => l.text)
    assert.ok(ids(c2.photos.created).includes(photo.id),
      `every photo in scope must be in photos.created (table new to the device), though unchanged since last_pulled_at; ` +
      `photos.updated has ${clip(ids(c2.photos.updated))}; WatermelonDB logged: ${clip(wmErrors, 400)}`)
    assert.deepEqual(wmErrors, [], 'WatermelonDB logged no error while applying the migration pull')
    if (serverFlags != null) {
      assert.ok([...ids(c2.inspections.updated), ...ids(c2.inspections.created)].includes(insp.id),
        `server_flags is ${serverFlags} on the server: the migration pull must carry the inspection again`)
      assert.equal((await dev.db.get('inspections').find(insp.id)).serverFlags, serverFlags)
    }
    assert.equal(await dev.db.adapter.getLocal('__watermelon_last_pulled_schema_version'), '2')

    // afterwards: plain incremental syncs again
    const { get: get3 } = await syncAndGet(dev)
    assert.equal(query(get3).migration, 'null')
    assert.ok(!ids(get3.responseBody.changes.photos?.created).includes(photo.id))
  })

  scenario('11. refusal codes: not_your_task, task_cancelled, invalid_record (answer status), unknown_inspection, read_only (read-only table), coverage_below_minimum', async () => {
    const ok = await world.seedTask()
    const cancelled = await world.seedTask()
    const under = await world.seedTask()
    await world.cancelTask(cancelled.taskId)
    const a = await newDevice('rules', 'a')
    await a.sync()

    const good = await createInspection(a.db, ok)
    const [goodAnswer] = await addAnswers(a.db, good.id, [['1.1', 'pass']])
    const [badStatus] = await addAnswers(a.db, good.id, [['2.1', 'maybe']])
    const noTask = await createInspection(a.db, { ...ok, taskId: uuid() })
    const onCancelled = await createInspection(a.db, cancelled)
    const orphanInspection = uuid()
    const [orphan] = await addAnswers(a.db, orphanInspection, [['1.1', 'pass']])
    const undercovered = await createInspection(a.db, under, { submitted: true, declaredResult: 'compliant', representativeSigned: true })
    const task = await a.db.get('tasks').find(ok.taskId)
    await a.db.write(() => task.update((t) => { t.state = 'in_progress' }))

    const { post } = await syncAndGet(a)
    assertRefused(post, {
      inspections: {
        [noTask.id]: 'not_your_task',
        [onCancelled.id]: 'task_cancelled',
        [undercovered.id]: 'coverage_below_minimum',
      },
      answers: {
        [badStatus.id]: 'invalid_record',
        [orphan.id]: 'unknown_inspection',
      },
      tasks: { [ok.taskId]: 'read_only' },
    })
    assert.equal((await lib.rawOf(a.db, 'inspections', good.id))._status, 'synced')
    assert.equal((await lib.rawOf(a.db, 'answers', goodAnswer.id))._status, 'synced')
    assert.deepEqual(ids(await world.inspectionsOfTask(ok.taskId)), [good.id])
    assert.deepEqual(ids((await world.inspectionsOfTask(ok.taskId))[0].answers), [goodAnswer.id])
    for (const s of [cancelled, under]) {
      assert.deepEqual(await world.inspectionsOfTask(s.taskId), [], `nothing stored for task ${s.taskId}`)
    }
    assert.notEqual((await world.task(under.taskId)).state, 'submitted', 'a refused submission does not submit the task')
    const dirty = await lib.dirtyState(a.db)
    assert.deepEqual(sorted(dirty.inspections.created), sorted([noTask.id, onCancelled.id, undercovered.id]))
    assert.deepEqual(dirty.tasks.updated, [ok.taskId], 'the refused task edit stays pending locally')
  })

  scenario('11b. refusal code invalid_record for inspection values: coordinates out of range, unknown crs; a crs alias converges', async () => {
    const s1 = await world.seedTask()
    const s2 = await world.seedTask()
    const s3 = await world.seedTask()
    const a = await newDevice('bad-values', 'a')
    await a.sync()
    // one bad value per push, so that one server problem does not hide the other
    const badLat = await createInspection(a.db, s2, { lat: 139.9, lng: 416.4 })
    const { post } = await syncAndGet(a)
    assertRefused(post, { inspections: { [badLat.id]: 'invalid_record' } })
    await a.db.write(() => badLat.destroyPermanently()) // the app discards it (local only)
    const badCrs = await createInspection(a.db, s1, { crs: 'mars2000' })
    const { post: post2 } = await syncAndGet(a)
    assertRefused(post2, { inspections: { [badCrs.id]: 'invalid_record' } })
    await a.db.write(() => badCrs.destroyPermanently())
    assert.deepEqual(await world.inspectionsOfTask(s1.taskId), [])
    assert.deepEqual(await world.inspectionsOfTask(s2.taskId), [])

    // 'GCJ-02' (how SDK docs spell it): refused as invalid_record, or accepted as gcj02, in
    // which case the device must end up with the server's value
    const alias = await createInspection(a.db, s3, { crs: 'GCJ-02' })
    const { post: post3 } = await syncAndGet(a)
    assert.equal(post3.status, 200, `HTTP ${post3.status} ${clip(post3.responseBody)}`)
    if (post3.responseBody.experimentalRejectedIds) {
      assertRefused(post3, { inspections: { [alias.id]: 'invalid_record' } })
    } else {
      assert.equal((await world.inspection(s3.taskId, alias.id)).crs, 'gcj02')
      await a.sync()
      assert.equal((await lib.rawOf(a.db, 'inspections', alias.id)).crs, 'gcj02',
        'the server stored gcj02: the next pull must bring it back to the device that pushed GCJ-02')
    }
  })

  scenario('12. refusal codes: duplicate_answer, and inspection_submitted for a submitted inspection, its answers and photos', async () => {
    const s = await world.seedTask()
    const a = await newDevice('locked', 'a')
    await a.sync()
    const insp = await createInspection(a.db, s)
    await addAnswers(a.db, insp.id, FULL_ANSWERS)
    assertPushAccepted((await syncAndGet(a)).post)

    // a second answer record for an answered item, under another id
    const [dup] = await addAnswers(a.db, insp.id, [['1.1', 'fail', 'other id', uuid()]])
    const { post } = await syncAndGet(a)
    assertRefused(post, { answers: { [dup.id]: 'duplicate_answer' } })
    await a.db.write(() => dup.destroyPermanently()) // the app discards it (local only)

    await submit(a.db, insp.id)
    assertPushAccepted((await syncAndGet(a)).post, 'submission')
    await a.sync()
    assert.equal((await a.db.get('inspections').find(insp.id)).computedResult, EXPECTED_RESULT)

    // locked: editing it, adding/changing/deleting answers, adding a photo
    const rec = await a.db.get('inspections').find(insp.id)
    await a.db.write(() => rec.update((r) => { r.otherFindings = 'too late' }))
    const changed = await a.db.get('answers').find(lib.answerId(insp.id, '2.3'))
    await a.db.write(() => changed.update((x) => { x.status = 'pass' }))
    const deleted = await a.db.get('answers').find(lib.answerId(insp.id, '1.1'))
    await a.db.write(() => deleted.markAsDeleted())
    const [added] = await addAnswers(a.db, insp.id, [['9.1', 'pass']])
    const photo = await a.db.write(() =>
      a.db.get('photos').create((p) => {
        p.inspectionId = insp.id
        p.sha256 = 'b'.repeat(64)
        p.byteSize = 1000
        p.takenAt = 1750000002000
      }),
    )
    const { post: post2 } = await syncAndGet(a)
    assertRefused(post2, {
      inspections: { [insp.id]: 'inspection_submitted' },
      answers: { [changed.id]: 'inspection_submitted', [deleted.id]: 'inspection_submitted', [added.id]: 'inspection_submitted' },
      photos: { [photo.id]: 'inspection_submitted' },
    })
    const onServer = await world.inspection(s.taskId, insp.id)
    assert.equal(onServer.computed_result, EXPECTED_RESULT)
    assert.deepEqual(answerRows(onServer), expectedAnswerRows(insp.id, FULL_ANSWERS), 'answers unchanged')
    assert.deepEqual(onServer.photos || [], [])
  })

  scenario('13. whole-request errors: 401 without a token, 403 for non-inspectors, 422 for a non-UUID id', async () => {
    const url = `${BASE_URL}/api/v1/sync?last_pulled_at=null&schema_version=2&migration=null`
    const anon = await lib.httpJson('GET', url)
    assert.equal(anon.status, 401, `no token: ${anon.status} ${clip(anon.body)}`)
    assert.ok(anon.body && anon.body.error && anon.body.error.code, 'error envelope')

    const admin = await lib.httpJson('GET', url, { token: world.adminToken })
    assert.equal(admin.status, 403, `admin: ${admin.status} ${clip(admin.body)}`)

    const s = await world.seedTask()
    const a = await newDevice('bad-ids', 'a')
    await a.sync()
    const notUuid = await a.db.write(() =>
      a.db.get('inspections').create((r) => {
        r._raw.id = 'abcdefghijklmnop' // WatermelonDB's default id shape
        r.taskId = s.taskId
        r.establishmentId = s.establishmentId
        r.startedAt = 1750000000000
        r.team = JSON.stringify(s.team)
      }),
    )
    await assert.rejects(a.sync(), (err) => {
      assert.ok(err instanceof lib.SyncHttpError, String(err))
      assert.equal(err.status, 422, `non-UUID id: ${err.status} ${clip(err.body)}`)
      return true
    })
    assert.equal((await lib.rawOf(a.db, 'inspections', notUuid.id))._status, 'created')
    assert.deepEqual(await world.inspectionsOfTask(s.taskId), [], 'nothing applied')
  })

  scenario('15. review on schema 5: submitted → returned with an item comment → the device sees the comment and the unlocked inspection, fixes it offline and resubmits → approved → further local edits are refused', async () => {
    const s = await world.seedTask()
    const reviewer = await world.reviewer()
    const a = await newDevice('review-a', 'a', { version: 5 })
    const { get: first } = await syncAndGet(a)
    assert.equal(query(first).schema_version, '5')
    assert.deepEqual(first.responseBody.changes.reviews, { created: [], updated: [], deleted: [] })
    assert.equal((await a.db.get('tasks').find(s.taskId)).kind, 'inspection')
    const insp = await createInspection(a.db, s)
    await addAnswers(a.db, insp.id, FULL_ANSWERS)
    await submit(a.db, insp.id)
    assertPushAccepted((await syncAndGet(a)).post, 'submission')
    await a.sync()
    let local = await a.db.get('inspections').find(insp.id)
    assert.equal(local.reviewState, 'submitted', 'the submission waits for review')
    assert.equal(local.reviewRound, 1)
    assert.equal(local.computedResult, EXPECTED_RESULT)

    // The reviewer returns it with a general comment and one on the failed item 2.3.
    const returned = await world.review(insp.id, {
      decision: 'returned',
      comment: '请按意见复核后重新提交',
      item_comments: [{ item_code: '2.3', comment: '冷藏温度需复测并拍照' }],
      internal_note: '科内：该店去年也有同类问题',
    })
    assert.equal(returned.review_state, 'returned')
    assert.equal(returned.review_round, 1)

    const { get, post } = await syncAndGet(a)
    assert.equal(post, undefined, 'nothing local to push')
    const c = get.responseBody.changes
    assert.deepEqual(ids(c.reviews.created), [returned.review.id], 'the decision arrives as a new record')
    assert.ok(!JSON.stringify(get.responseBody).includes('科内'), 'the internal note never reaches a device')
    assert.ok(ids(c.inspections.updated).includes(insp.id))
    assert.ok(ids(c.tasks.updated).includes(s.taskId))
    const review = await a.db.get('reviews').find(returned.review.id)
    assert.equal(review._raw._status, 'synced')
    assert.equal(review.inspectionId, insp.id)
    assert.equal(review.decision, 'returned')
    assert.equal(review.round, 1)
    assert.equal(review.comment, '请按意见复核后重新提交')
    assert.deepEqual(JSON.parse(review.itemComments), [{ item_code: '2.3', comment: '冷藏温度需复测并拍照' }])
    assert.equal(review.reviewerName, reviewer.name)
    assert.ok(Number.isInteger(review.decidedAt))
    local = await a.db.get('inspections').find(insp.id)
    assert.equal(local.submitted, false, 'unlocked on the device')
    assert.equal(local.reviewState, 'returned')
    assert.equal(local._raw._status, 'synced')
    assert.equal((await a.db.get('tasks').find(s.taskId)).state, 'in_progress')
    // Returned and not yet resubmitted: a reviewer cannot approve it.
    const early = await world.review(insp.id, { decision: 'approved' }, { expect: 409 })
    assert.equal(early.error.code, 'review_conflict')

    // Offline: the item is rechecked (it passes now) and the inspection submitted again.
    const rechecked = await a.db.get('answers').find(lib.answerId(insp.id, '2.3'))
    await a.db.write(() => rechecked.update((x) => { x.status = 'pass'; x.note = '复测 3℃，已拍照' }))
    await submit(a.db, insp.id, { otherFindings: '已按审核意见复核第2.3项', declaredResult: 'compliant' })
    const { post: post2 } = await syncAndGet(a)
    assertPushAccepted(post2, 'resubmission')
    assert.equal(post2.requestBody.changes.inspections.updated[0].submitted, true)
    await a.sync()
    local = await a.db.get('inspections').find(insp.id)
    assert.equal(local.submitted, true)
    assert.equal(local.reviewState, 'submitted')
    assert.equal(local.reviewRound, 2, 'a new round')
    assert.equal(local.computedResult, 'compliant', 'recomputed with the fixed answer')
    assert.equal((await a.db.get('tasks').find(s.taskId)).state, 'submitted')
    let onServer = await world.inspection(s.taskId, insp.id)
    assert.equal(onServer.review_round, 2)
    assert.equal(onServer.other_findings, '已按审核意见复核第2.3项')
    assert.equal(onServer.answers.find((x) => x.item_code === '2.3').status, 'pass')

    // Approved: the device pulls it, with the whole history.
    const approved = await world.review(insp.id, { decision: 'approved', comment: '同意' })
    assert.equal(approved.review_round, 2)
    assert.equal(approved.effective_result, 'compliant')
    const { get: get3 } = await syncAndGet(a)
    assert.deepEqual(ids(get3.responseBody.changes.reviews.created), [approved.review.id])
    local = await a.db.get('inspections').find(insp.id)
    assert.equal(local.reviewState, 'approved')
    const history = (await a.db.get('reviews').query().fetch())
      .filter((r) => r.inspectionId === insp.id)
      .map((r) => `${r.round}:${r.decision}`)
    assert.deepEqual(sorted(history), ['1:returned', '2:approved'], 'every round stays')

    // Further local edits are refused per record with the lock's code and stay unsynced.
    await a.db.write(() => local.update((r) => { r.businessOpinion = '补充意见' }))
    const late = await a.db.get('answers').find(lib.answerId(insp.id, '1.1'))
    await a.db.write(() => late.update((x) => { x.status = 'fail' }))
    const { post: post4 } = await syncAndGet(a)
    assertRefused(post4, {
      inspections: { [insp.id]: 'inspection_approved' },
      answers: { [late.id]: 'inspection_approved' },
    })
    onServer = await world.inspection(s.taskId, insp.id)
    assert.equal(onServer.business_opinion, null, 'nothing of the refused edit applied')
    assert.equal(onServer.answers.find((x) => x.item_code === '1.1').status, 'pass')
    assert.equal(onServer.review_state, 'approved')
    const dirty = await lib.dirtyState(a.db)
    assert.deepEqual(dirty.inspections.updated, [insp.id])
    assert.deepEqual(dirty.answers.updated, [late.id])
  })

  scenario('15b. app upgrade 2 → 5: the migration pull brings the review history as new records and the new columns', async () => {
    const s = await world.seedTask()
    const a = await newDevice('review-upgrade-a', 'a', { version: 5 })
    const b = await newDevice('review-upgrade-b', 'b') // schema 2
    await a.sync()
    const insp = await createInspection(a.db, s)
    await addAnswers(a.db, insp.id, FULL_ANSWERS)
    await submit(a.db, insp.id)
    assertPushAccepted((await syncAndGet(a)).post, 'submission')
    const returned = await world.review(insp.id, {
      decision: 'returned', item_comments: [{ item_code: '2.3', comment: '复测' }],
    })
    const { get: old } = await syncAndGet(b)
    assert.ok(!('reviews' in old.responseBody.changes), 'no table the v2 app does not know')
    const oldInsp = [...old.responseBody.changes.inspections.created, ...old.responseBody.changes.inspections.updated]
      .find((r) => r.id === insp.id)
    assert.equal(oldInsp.review_state, 'returned')
    assert.ok(!('review_round' in oldInsp))

    await b.upgrade(5)
    const logsBefore = lib.watermelonLogs.length
    const { get } = await syncAndGet(b)
    // What WatermelonDB derives from the app's migrations 3, 4 and 5 (the server's columns of
    // photos, tasks.team, then review), grouped per table in the order it first meets them.
    assert.deepEqual(JSON.parse(query(get).migration), {
      from: 2,
      tables: ['reviews'],
      columns: [
        { table: 'photos', columns: ['width', 'height', 'exif_taken_at', 'exif_lng', 'exif_lat', 'flags', 'processing_error'] },
        { table: 'tasks', columns: ['team', 'kind'] },
        { table: 'inspections', columns: ['review_round', 'override_result', 'override_reason'] },
      ],
    })
    assert.ok(ids(get.responseBody.changes.reviews.created).includes(returned.review.id),
      `the reviews of the team's inspections come as created: ${clip(get.responseBody.changes.reviews)}`)
    const wmErrors = lib.watermelonLogs.slice(logsBefore).filter((l) => l.level === 'error')
    assert.deepEqual(wmErrors, [], 'WatermelonDB logged no error while applying the migration pull')
    assert.equal((await b.db.get('reviews').find(returned.review.id)).decision, 'returned')
    assert.equal((await b.db.get('inspections').find(insp.id)).reviewRound, 1)
    assert.equal((await b.db.get('tasks').find(s.taskId)).kind, 'inspection')
  })

  scenario('16. 整改 → 复查: a 基本符合 inspection is approved with a written order; when it is due the recheck task reaches the team\'s device with the failed items as must-check items; the recheck done offline and submitted closes the follow-up', { skip: PURGE_SKIP }, async () => {
    const s = await world.seedTask()
    const a = await newDevice('followup-a', 'a', { version: 5 })
    await a.sync()
    const insp = await createInspection(a.db, s)
    await addAnswers(a.db, insp.id, FULL_ANSWERS)
    await submit(a.db, insp.id)
    assertPushAccepted((await syncAndGet(a)).post, 'submission')
    // The deadline is counted from the real date: make sure the calendar has this year and the next.
    const { token } = await world.reviewer()
    const years = (await world.api('GET', '/api/v1/calendar/years')).years.map((y) => y.year)
    const thisYear = new Date().getUTCFullYear()
    for (const y of [thisYear, thisYear + 1]) {
      if (!years.includes(y)) await world.api('PUT', `/api/v1/calendar/years/${y}`, { off: {}, workdays: [] })
    }

    const approved = await world.review(insp.id, {
      decision: 'approved',
      followup: { period_working_days: 3, order_text: '冷藏设施温度超标，限期整改' },
    })
    assert.equal(approved.effective_result, EXPECTED_RESULT)
    assert.ok(approved.followup_id, 'a 基本符合 approval opens a follow-up')
    let f = await world.api('GET', `/api/v1/followups/${approved.followup_id}`, undefined, { token })
    assert.equal(f.state, 'open')
    assert.equal(f.period_working_days, 3)
    assert.deepEqual(f.failed_items, ['2.3'])

    // Not due yet: the sweep creates nothing; on the deadline it creates the recheck task.
    const sweep = (today) => require('node:child_process').execFileSync(
      process.env.FOODCHECK_TEST_BIN,
      ['--data-dir', process.env.FOODCHECK_TEST_DATA_DIR, 'followup', 'create-due-rechecks', '--today', today],
      { cwd: process.env.FOODCHECK_TEST_DATA_DIR, env: process.env, encoding: 'utf8' },
    )
    assert.doesNotMatch(sweep(f.ordered_on), new RegExp(`follow-up ${f.id}: recheck task`))
    assert.match(sweep(f.deadline), new RegExp(`follow-up ${f.id}: recheck task \\S+ created`))
    f = await world.api('GET', `/api/v1/followups/${f.id}`, undefined, { token })
    assert.equal(f.state, 'recheck_assigned')

    // The device pulls the recheck task: kind recheck, the failed item to check.
    const { get } = await syncAndGet(a)
    assert.deepEqual(ids(get.responseBody.changes.tasks.created), [f.recheck_task_id])
    const task = await a.db.get('tasks').find(f.recheck_task_id)
    assert.equal(task.kind, 'recheck')
    assert.deepEqual(JSON.parse(task.mustCheckItems), ['2.3'])
    assert.equal(task.establishmentId, s.establishmentId)

    // Offline: the recheck, every item answered and the must-check item passing now.
    // The recheck team is, by default, the inspection's team.
    const recheck = await createInspection(a.db, { taskId: task.id, establishmentId: s.establishmentId, team: s.team })
    await addAnswers(a.db, recheck.id, FULL_ANSWERS.map(([code, status, note]) =>
      code === '2.3' ? [code, 'pass', '复查：冷藏 3℃'] : [code, status, note]))
    await submit(a.db, recheck.id)
    assertPushAccepted((await syncAndGet(a)).post, 'recheck submission')
    await a.sync()
    assert.equal((await a.db.get('inspections').find(recheck.id)).reviewState, 'submitted')
    f = await world.api('GET', `/api/v1/followups/${f.id}`, undefined, { token })
    assert.equal(f.state, 'closed', 'the passed recheck closes the follow-up')
    assert.equal(f.recheck_inspection_id, recheck.id)
    assert.ok(f.closed_at)
  })

  // Last in the file: it purges every tombstone on the server (as the hourly sweep does after
  // `tombstone_retention_days`), so it must not run before scenarios that rely on tombstones.
  scenario('17. a rejected inspection\'s task goes to another team: the leaver\'s device drops the task and all of it, the joiner\'s device gets it all, the one who stays sees the new team; the new team redoes it', async () => {
    const s = await world.seedTask()
    const a = await newDevice('move-a', 'a', { version: 5 })
    const b = await newDevice('move-b', 'b', { version: 5 })
    const o = await newDevice('move-o', 'outsider', { version: 5 })
    await a.sync()
    await b.sync()
    await o.sync()
    assert.equal((await o.db.get('tasks').query().fetch()).filter((t) => t.id === s.taskId).length, 0)
    const insp = await createInspection(a.db, s)
    await addAnswers(a.db, insp.id, FULL_ANSWERS)
    await submit(a.db, insp.id)
    assertPushAccepted((await syncAndGet(a)).post, 'submission')
    await a.sync()
    await b.sync()
    // While the inspection stands, the task does not move.
    const early = await world.reassign(s.taskId, [world.inspectors.b.id, world.inspectors.outsider.id], undefined, { expect: 409 })
    assert.equal(early.error.code, 'invalid_state')
    const rejected = await world.review(insp.id, { decision: 'rejected', reason: '检查对象错误：实为隔壁门店' })
    assert.equal(rejected.review_state, 'rejected')
    const moved = await world.reassign(s.taskId, [world.inspectors.b.id, world.inspectors.outsider.id])
    assert.deepEqual(moved.team.map((m) => m.user_id), [world.inspectors.b.id, world.inspectors.outsider.id])

    // The leaver's device: the task, its inspection, answers, review and establishment go.
    const { get: ga } = await syncAndGet(a)
    const ca = ga.responseBody.changes
    assert.deepEqual(ca.tasks.deleted, [s.taskId])
    assert.deepEqual(ca.inspections.deleted, [insp.id])
    assert.equal(ca.answers.deleted.length, FULL_ANSWERS.length)
    assert.deepEqual(ca.establishments.deleted, [s.establishmentId])
    for (const table of ['tasks', 'inspections', 'answers', 'reviews', 'establishments']) {
      const left = (await a.db.get(table).query().fetch()).filter((r) =>
        [s.taskId, insp.id, s.establishmentId].includes(r.id) || r._raw.inspection_id === insp.id)
      assert.deepEqual(left.map((r) => r.id), [], `${table} left on the leaver's device`)
    }
    // The joiner's device: all of it, new, the rejected inspection read-only.
    const { get: go } = await syncAndGet(o)
    const co = go.responseBody.changes
    assert.deepEqual(ids(co.tasks.created), [s.taskId])
    assert.deepEqual(ids(co.inspections.created), [insp.id])
    assert.equal(co.answers.created.length, FULL_ANSWERS.length)
    assert.deepEqual(ids(co.reviews.created), [rejected.review.id])
    assert.ok(ids(co.establishments.created).includes(s.establishmentId))
    const seen = await o.db.get('inspections').find(insp.id)
    assert.equal(seen.reviewState, 'rejected')
    assert.equal(seen.submitted, true)
    assert.equal(seen._raw._status, 'synced')
    // The one who stays: the task with its new team, nothing deleted.
    const { get: gb } = await syncAndGet(b)
    const cb = gb.responseBody.changes
    assert.deepEqual(ids(cb.tasks.updated), [s.taskId])
    assert.deepEqual(cb.tasks.deleted, [])
    // (This test app's schema leaves out `tasks.team`; the pull carries it.)
    const team = JSON.parse(cb.tasks.updated[0].team)
    assert.deepEqual(team.map((m) => m.user_id), [world.inspectors.b.id, world.inspectors.outsider.id])

    // The new team redoes it on the joiner's device; it is approved.
    const newTeam = JSON.parse(co.tasks.created[0].team)
    const redo = await createInspection(o.db, { ...s, team: newTeam })
    await addAnswers(o.db, redo.id, FULL_ANSWERS)
    await submit(o.db, redo.id)
    assertPushAccepted((await syncAndGet(o)).post, 'the redo')
    const approved = await world.review(redo.id, { decision: 'approved' })
    assert.equal(approved.review_state, 'approved')
    assert.equal((await world.task(s.taskId)).state, 'submitted')
  })

  scenario('18. 抽样单 offline (schema 6): a sample with its seal and dispatch, pushed once though the response was lost, comes back with its number; the other sampler gets it, an outsider nothing; the lab\'s receipt arrives; a local edit is refused', async () => {
    const sp = await world.sampling()
    const a = await newDevice('sample-a', 'a', { version: 6 })
    const b = await newDevice('sample-b', 'b', { version: 6 })
    const o = await newDevice('sample-outsider', 'outsider', { version: 6 })
    await a.sync()
    const HOUR = 3_600_000
    const at = Date.now() - 3 * HOUR
    const form = {
      establishment_id: sp.establishmentId, lab_id: sp.labId, category_code: sp.categoryCode,
      task_source: '监督抽检 同步测试', purpose: 'supervision', stage: '流通',
      food_category_1: sp.categories[0], food_category_2: sp.categories[1], food_category_3: sp.categories[2],
      food_category_4: '/', premises_name: sp.establishment.body.sign_name,
      premises_address: sp.establishment.body.address, premises_credit_code: '/',
      premises_licence_no: sp.establishment.body.license_no, premises_legal_representative: '王老五',
      premises_contact: '13800138000', producer_name: '天津某面粉厂', producer_address: '天津市宝坻区',
      producer_sc_licence: 'SC10112011500012', sample_name: '小麦粉', sample_brand: '／',
      sample_specification: '1kg/袋', sample_production_date: '2026-02-01', sample_batch: '/',
      sample_shelf_life: '12个月', sample_standard: 'GB 1355', sample_price: '12.50', sample_imported: false,
      sample_storage: '常温', sampling_method: 'non_aseptic', sampling_base: 100, sampling_base_unit: '袋',
      sample_quantity: 4, sample_quantity_unit: '袋', backup_quantity: 2, backup_quantity_unit: '袋',
      sampled_at: at, lng: 117.3, lat: 39.7, crs: 'wgs84', gps_accuracy_m: 8,
      sampler_1: world.inspectors.a.id, sampler_2: world.inspectors.b.id, premises_opinion: 'no_objection',
    }
    const [sample, sealed, dispatched] = await a.db.write(async () => {
      const s = await a.db.get('samples').create((x) => {
        for (const [k, v] of Object.entries(form)) x._setRaw(k, v)
      })
      const event = (kind, t) => a.db.get('custody_events').create((x) => {
        x.sampleId = s.id
        x.kind = kind
        x.occurredAt = t
        x.place = kind === 'sealed' ? form.premises_name : '顺丰宝坻网点'
      })
      return [s, await event('sealed', at + HOUR / 2), await event('dispatched', at + HOUR)]
    })

    // The push reaches the server, the answer is lost: the records stay unsynced.
    const n = a.requests.length
    await assert.rejects(a.sync({ simulatePushResponseLost: true }), lib.PushResponseLostError)
    assertPushAccepted(a.requestsSince(n).find((r) => r.method === 'POST'), 'the lost push')
    assert.equal((await lib.rawOf(a.db, 'samples', sample.id))._status, 'created')
    let stored = await world.sample(sample.id)
    assert.equal(stored.state, 'dispatched')
    const number = stored.sample_no
    assert.match(number, /^FC-\d{8}-\d{4}$/)
    assert.deepEqual(stored.custody.map((e) => e.id), [sealed.id, dispatched.id])

    // The retry pulls the sample back (own device: updated) into the unsynced local record and
    // re-sends it as created, with the server's spelling merged in: the same 抽样单, a no-op.
    const { get, post } = await syncAndGet(a)
    assert.deepEqual(ids(get.responseBody.changes.samples.updated), [sample.id])
    assert.deepEqual(ids(get.responseBody.changes.samples.created), [])
    const resent = post.requestBody.changes.samples.created.find((r) => r.id === sample.id)
    assert.ok(resent, `the retry re-sends the sample: ${clip(post.requestBody.changes.samples)}`)
    assert.equal(resent.stage, 'circulation', 'the pulled value merged in')
    assert.deepEqual(sorted(ids(post.requestBody.changes.custody_events.created)), sorted([sealed.id, dispatched.id]))
    assertPushAccepted(post, 'the retry')
    assert.equal((await world.labSamples()).filter((x) => x.id === sample.id).length, 1, 'one sample on the server')
    stored = await world.sample(sample.id)
    assert.equal(stored.sample_no, number, 'no second number')
    assert.equal(stored.custody.length, 2)
    await a.sync()
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)
    let local = await a.db.get('samples').find(sample.id)
    assert.equal(local.sampleNo, number)
    assert.equal(local.state, 'dispatched')
    assert.equal(local._raw._status, 'synced')

    // The other sampler's device gets it all as new; a device of someone else nothing.
    const { get: bGet } = await syncAndGet(b)
    assert.deepEqual(ids(bGet.responseBody.changes.samples.created), [sample.id])
    assert.deepEqual(sorted(ids(bGet.responseBody.changes.custody_events.created)), sorted([sealed.id, dispatched.id]))
    const onB = await b.db.get('samples').find(sample.id)
    assert.equal(onB.sampleNo, number)
    assert.equal(onB._raw.food_category_4, '/', 'not applicable stays "/"')
    assert.equal(onB._raw.premises_opinion_text, null, 'missing stays null')
    const { get: oGet } = await syncAndGet(o)
    assert.ok(!JSON.stringify(oGet.responseBody).includes(sample.id))
    assert.equal((await o.db.get('samples').query().fetch()).length, 0)

    // The lab receives it (seal intact): the event and the new state reach both devices.
    const receipt = await world.labCustody(sample.id, {
      kind: 'received', occurred_at: at + 2 * HOUR, place: '检验中心收样室', sample_condition: '包装完好', seal_intact: true,
    })
    await a.sync()
    await b.sync()
    for (const d of [a, b]) {
      const got = await d.db.get('custody_events').find(receipt.id)
      assert.equal(got.actorRole, 'lab')
      assert.equal(got.sealIntact, true)
      assert.equal((await d.db.get('samples').find(sample.id)).state, 'received')
    }

    // A submitted 抽样单 never changes: a local edit is refused and stays unsynced.
    local = await a.db.get('samples').find(sample.id)
    await a.db.write(() => local.update((x) => { x.sampleName = '高筋小麦粉' }))
    const { post: edit } = await syncAndGet(a)
    assertRefused(edit, { samples: { [sample.id]: 'sample_id_conflict' } })
    assert.equal((await lib.rawOf(a.db, 'samples', sample.id))._status, 'updated')
    assert.equal((await world.sample(sample.id)).form.sample_name, '小麦粉')
  })

  scenario('14. a device offline past tombstone retention gets a replacement pull: the deleted answer goes, its own records stay, nothing lost', { skip: PURGE_SKIP }, async () => {
    const s = await world.seedTask()
    const a = await newDevice('repl-deleter', 'a')
    const b = await newDevice('repl-sleeper', 'b')
    await a.sync()
    const insp = await createInspection(a.db, s)
    const [keep, drop] = await addAnswers(a.db, insp.id, [['1.1', 'pass'], ['2.3', 'fail']])
    assertPushAccepted((await syncAndGet(a)).post)
    await b.sync()
    // B adds an answer of its own and syncs: B's cursor is now c.
    const [own] = await addAnswers(b.db, insp.id, [['4.2', 'not_applicable']])
    const { get: bGet0, post: bPost0 } = await syncAndGet(b)
    assertPushAccepted(bPost0)
    // B goes offline. A deletes an answer; the tombstone is purged before B comes back.
    await a.db.write(() => drop.markAsDeleted())
    assertPushAccepted((await syncAndGet(a)).post)
    purgeTombstones()

    const logsBefore = lib.watermelonLogs.length
    const { get } = await syncAndGet(b)
    assert.ok(Number(query(get).last_pulled_at) >= bGet0.responseBody.timestamp, 'B pulls from its old cursor')
    assert.equal(get.responseBody.experimentalStrategy, 'replacement',
      `a cursor older than the purged tombstones gets a replacement: ${clip(get.responseBody)}`)
    const answers = get.responseBody.changes.answers
    assert.ok(ids(answers.updated).includes(own.id), `B's own answer is listed as updated: ${clip(answers)}`)
    assert.ok(!ids(answers.created).includes(own.id))
    assert.ok(![...ids(answers.created), ...ids(answers.updated)].includes(drop.id), 'the deleted answer is not in the replacement')
    // WatermelonDB's replacement drops the synced local records the server no longer has.
    assert.equal(await lib.rawOf(b.db, 'answers', drop.id), null, 'the deleted answer is gone from B')
    assert.ok(await lib.rawOf(b.db, 'answers', keep.id))
    assert.ok(await lib.rawOf(b.db, 'answers', own.id), "B's own answer survives")
    assert.equal(await hasUnsyncedChanges({ database: b.db }), false)
    const onServer = sorted(ids((await world.inspection(s.taskId, insp.id)).answers))
    assert.deepEqual(sorted((await localAnswers(b.db, insp.id)).map((x) => x.id)), onServer, 'device and server agree')
    assert.deepEqual(onServer, sorted([keep.id, own.id]))
    assert.deepEqual(lib.watermelonLogs.slice(logsBefore).filter((l) => l.level === 'error'), [])
  })
})
