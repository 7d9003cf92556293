'use strict'
// Sync scenarios with a real WatermelonDB 0.28.0 client (LokiJS in memory).
//
// Target:
//   default           an in-process fake server (fake-server.js) on 127.0.0.1, port 0
//   FOODCHECK_URL     base URL of a running foodcheck server, e.g. http://127.0.0.1:8080
//     FOODCHECK_USERNAME / FOODCHECK_PASSWORD   an inspector account (default inspector1 / inspector1-pass)
//     FOODCHECK_CONTROL_URL                     base of the /__test__/ control API (default FOODCHECK_URL)
//     FOODCHECK_CONTROL_TOKEN                   optional bearer token for the control API
//
// All scenarios share one server and never assume it is empty: every test makes its own ids and
// counts only records it made, so they also run against a long-lived real server.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')

const lib = require('./lib')
const { createFakeServer } = require('./fake-server')

const uuid = () => crypto.randomUUID()

let baseUrl
let controlUrl
let fake = null
const creds = {
  username: process.env.FOODCHECK_USERNAME || 'inspector1',
  password: process.env.FOODCHECK_PASSWORD || 'inspector1-pass',
}

before(async () => {
  if (process.env.FOODCHECK_URL) {
    baseUrl = process.env.FOODCHECK_URL.replace(/\/+$/, '')
  } else {
    fake = createFakeServer({ users: [{ ...creds, user_id: 'u-inspector1' }] })
    baseUrl = await fake.listen(0)
  }
  controlUrl = (process.env.FOODCHECK_CONTROL_URL || baseUrl).replace(/\/+$/, '')
})

after(async () => {
  if (fake) await fake.close()
})

// ---------------------------------------------------------------------------------------------
// Server control (arrange / inspect server-side state)

async function control(method, path, body) {
  const res = await fetch(`${controlUrl}/__test__${path}`, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(process.env.FOODCHECK_CONTROL_TOKEN
        ? { authorization: `Bearer ${process.env.FOODCHECK_CONTROL_TOKEN}` }
        : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const json = await res.json()
  if (!res.ok) throw new Error(`control ${method} ${path} → ${res.status} ${JSON.stringify(json)}`)
  return json
}
const server = {
  put: (table, id, values) => control('PUT', `/records/${table}/${id}`, values),
  delete: (table, id) => control('DELETE', `/records/${table}/${id}`),
  purge: (table, id) => control('DELETE', `/records/${table}/${id}?purge=1`),
  list: (table) => control('GET', `/records/${table}`),
  nextPullStrategy: (strategy) => control('POST', '/next-pull-strategy', { strategy }),
  async find(table, id) {
    const { records } = await server.list(table)
    return records.find((r) => r.id === id) || null
  },
}

// An establishment + a task (+ checklist version) owned by this test run.
async function seedTask(extra = {}) {
  const establishmentId = uuid()
  const taskId = uuid()
  const templateId = uuid()
  await server.put('establishments', establishmentId, {
    sign_name: '老王面馆',
    licensed_name: '某某区老王面馆（个体工商户）',
    address: '幸福路 12 号',
    town: '城关镇',
    category: 'catering',
    risk_grade: 'B',
    lng: 116.397,
    lat: 39.908,
    crs: 'GCJ-02',
  })
  await server.put('checklist_versions', `${templateId}.1`, {
    template_id: templateId,
    version: 1,
    title: '餐饮服务食品安全监督检查表（2016）',
    content: JSON.stringify({ items: [{ code: '1.1', text: '许可证' }] }),
  })
  await server.put('tasks', taskId, {
    plan_id: uuid(),
    establishment_id: establishmentId,
    template_id: templateId,
    template_version: 1,
    due_date: '2025-06-30',
    state: 'assigned',
    must_check_items: JSON.stringify(['1.1', '2.3']),
    round_title: '2025 年第二季度双随机抽查',
    ...extra,
  })
  return { establishmentId, taskId, templateId }
}

// ---------------------------------------------------------------------------------------------
// Devices

async function newDevice(label, { version = 2, url = baseUrl } = {}) {
  const deviceId = `harness-${label}-${uuid()}`
  const token = await lib.login(url, { ...creds, deviceId })
  const db = await lib.makeDatabase({
    schema: lib.appSchemaFor(version),
    migrations: lib.migrationsFor(version),
    name: deviceId,
  })
  const device = {
    label,
    db,
    token,
    requests: [],
    async sync(opts = {}) {
      return lib.sync(device.db, {
        baseUrl: url,
        token,
        schemaVersion: device.db.schema.version,
        onRequest: (r) => {
          device.requests.push(r)
        },
        ...opts,
      })
    },
    async upgrade(toVersion) {
      device.db = await lib.reopenDatabase(device.db, { schema: lib.appSchemaFor(toVersion) })
    },
    lastRequest(method) {
      return device.requests.filter((r) => r.method === method).at(-1)
    },
    requestsSince(n) {
      return device.requests.slice(n)
    },
  }
  return device
}

const query = (r) => Object.fromEntries(new URL(r.url).searchParams)

async function createInspection(db, taskId, establishmentId, fields = {}) {
  return db.write(() =>
    db.get('inspections').create((r) => {
      r.taskId = taskId
      r.establishmentId = establishmentId
      r.startedAt = 1750000000000
      r.lng = 116.3971
      r.lat = 39.9081
      r.gpsAccuracyM = 8.5
      r.crs = 'GCJ-02'
      r.team = JSON.stringify([
        { user_id: 'u-inspector1', name: '张三', badge_no: 'SJ-001' },
        { user_id: 'u-inspector2', name: '李四', badge_no: 'SJ-002' },
      ])
      r.representativeSigned = false
      r.representativeRefused = false
      r.submitted = false
      Object.assign(r, fields)
    }),
  )
}

async function addAnswers(db, inspectionId, items) {
  return db.write(() =>
    Promise.all(
      items.map(([itemCode, status, note]) =>
        db.get('answers').create((a) => {
          a.inspectionId = inspectionId
          a.itemCode = itemCode
          a.status = status
          if (note !== undefined) a.note = note
        }),
      ),
    ),
  )
}

async function localIds(db, table, where) {
  const recs = await db.get(table).query().fetch()
  return recs.filter((r) => !where || where(r)).map((r) => r.id)
}

// ---------------------------------------------------------------------------------------------

describe('foodcheck sync protocol with WatermelonDB 0.28.0', () => {
  test('1. first sync of a new device pulls tasks, establishments and checklist versions', async () => {
    const { establishmentId, taskId, templateId } = await seedTask()
    const second = await seedTask()
    const a = await newDevice('first-sync')

    const log = await a.sync()
    assert.equal(a.requests.length, 1, 'no local changes → pull only, no POST')
    const get = a.requests[0]
    assert.equal(get.method, 'GET')
    assert.deepEqual(query(get), { last_pulled_at: 'null', schema_version: '2', migration: 'null' })
    assert.equal(get.status, 200)
    const { changes, timestamp } = get.responseBody
    assert.ok(Number.isInteger(timestamp) && timestamp > 0, 'timestamp must be a number > 0')
    assert.equal(log.newLastPulledAt, timestamp)
    for (const t of Object.keys(changes)) {
      for (const rec of [...changes[t].created, ...changes[t].updated]) {
        assert.ok(!('_status' in rec) && !('_changed' in rec), 'pulled records carry no _status/_changed')
      }
    }
    assert.deepEqual(changes.tasks.deleted, [], 'first sync sends no deletions')
    assert.ok(changes.tasks.created.some((r) => r.id === taskId), 'task is sent as created')

    const task = await a.db.get('tasks').find(taskId)
    assert.equal(task.establishmentId, establishmentId)
    assert.equal(task.templateVersion, 1)
    assert.deepEqual(JSON.parse(task.mustCheckItems), ['1.1', '2.3'])
    assert.equal(task._raw._status, 'synced')
    const est = await a.db.get('establishments').find(establishmentId)
    assert.equal(est.signName, '老王面馆')
    assert.equal(est.lng, 116.397)
    assert.equal(est.crs, 'GCJ-02')
    const cv = await a.db.get('checklist_versions').find(`${templateId}.1`)
    assert.equal(cv.version, 1)
    assert.ok(await a.db.get('tasks').find(second.taskId))
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)

    // incremental pull: only what changed since `timestamp`
    await server.put('tasks', taskId, { state: 'in_progress' })
    const n = a.requests.length
    await a.sync()
    const [get2, ...rest] = a.requestsSince(n)
    assert.equal(rest.length, 0)
    assert.equal(query(get2).last_pulled_at, String(timestamp))
    assert.deepEqual(get2.responseBody.changes.tasks.updated.map((r) => r.id), [taskId])
    assert.deepEqual(get2.responseBody.changes.tasks.created, [])
    assert.ok(get2.responseBody.timestamp > timestamp)
    assert.equal((await a.db.get('tasks').find(taskId)).state, 'in_progress')
    assert.equal((await a.db.get('tasks').find(second.taskId)).state, 'assigned')
  })

  test('2. inspection created offline with answers is pushed and reaches a second device of the same user', async () => {
    const { establishmentId, taskId } = await seedTask()
    const a = await newDevice('creator')
    await a.sync()

    // offline work
    const insp = await createInspection(a.db, taskId, establishmentId, {
      representativeName: '王老板',
      representativeSigned: true,
      businessOpinion: '无异议',
      declaredResult: 'basically_compliant',
    })
    await addAnswers(a.db, insp.id, [
      ['1.1', 'pass'],
      ['2.3', 'fail', '冷藏温度 9℃'],
      ['4.2', 'not_applicable'],
    ])
    assert.equal(insp._raw._status, 'created')

    const n = a.requests.length
    await a.sync()
    const [get, post, ...rest] = a.requestsSince(n)
    assert.equal(rest.length, 0)
    assert.equal(get.method, 'GET')
    assert.equal(post.method, 'POST')
    assert.equal(post.status, 200)
    assert.deepEqual(query(post), { last_pulled_at: String(get.responseBody.timestamp) },
      'push carries the timestamp of the pull made by the same synchronize()')
    const { changes } = post.requestBody
    assert.deepEqual(Object.keys(post.requestBody), ['changes'])
    assert.deepEqual(Object.keys(changes).sort(), Object.keys(a.db.schema.tables).sort(),
      'every table of the local schema is present in the push')
    assert.deepEqual(changes.tasks, { created: [], updated: [], deleted: [] })
    assert.equal(changes.inspections.created.length, 1)
    const pushed = changes.inspections.created[0]
    assert.equal(pushed.id, insp.id)
    assert.equal(pushed._status, 'created')
    assert.equal(pushed._changed, '')
    assert.equal(pushed.representative_signed, true)
    assert.equal(pushed.finished_at, null, 'optional columns are sent as null')
    assert.equal(pushed.computed_result, null, 'server-only columns are sent too (server ignores them)')
    assert.deepEqual(changes.answers.created.map((r) => r.item_code).sort(), ['1.1', '2.3', '4.2'])

    assert.equal((await lib.rawOf(a.db, 'inspections', insp.id))._status, 'synced')
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)
    const onServer = await server.find('inspections', insp.id)
    assert.equal(onServer.representative_name, '王老板')
    assert.equal(onServer.gps_accuracy_m, 8.5)

    // a second device (same user, other device_id) sees it after its pull
    const b = await newDevice('reader')
    await b.sync()
    const got = await b.db.get('inspections').find(insp.id)
    assert.equal(got.taskId, taskId)
    assert.equal(got.representativeSigned, true)
    assert.equal(got.representativeRefused, false)
    assert.equal(got.businessOpinion, '无异议')
    assert.deepEqual(JSON.parse(got.team).map((m) => m.badge_no), ['SJ-001', 'SJ-002'])
    const answers = await b.db.get('answers').query().fetch()
    const mine = answers.filter((x) => x.inspectionId === insp.id)
    assert.deepEqual(
      mine.map((x) => [x.itemCode, x.status, x.note]).sort(),
      [['1.1', 'pass', null], ['2.3', 'fail', '冷藏温度 9℃'], ['4.2', 'not_applicable', null]],
    )
    assert.equal(got._raw._status, 'synced')
  })

  test('3. two devices edit the same inspection offline → 409 → pull, per-column merge, push', async () => {
    const { establishmentId, taskId } = await seedTask()
    const a = await newDevice('editor-a')
    const b = await newDevice('editor-b')
    await a.sync()
    const insp = await createInspection(a.db, taskId, establishmentId)
    await a.sync()
    await b.sync()
    const onA = await a.db.get('inspections').find(insp.id)
    const onB = await b.db.get('inspections').find(insp.id)

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
    assert.equal(onB._raw._status, 'updated')
    assert.deepEqual(onB._raw._changed.split(',').sort(), ['other_findings', 'representative_name'])

    // B pulls, then — before B's push — A syncs (pull + push): B's push must get 409
    const nB = b.requests.length
    const nA = a.requests.length
    await assert.rejects(
      b.sync({ beforePush: () => a.sync() }),
      (err) => err instanceof lib.SyncHttpError && err.status === 409,
    )
    const aPost = a.requestsSince(nA).find((r) => r.method === 'POST')
    const aPushed = aPost.requestBody.changes.inspections.updated[0]
    assert.equal(aPushed._status, 'updated')
    assert.deepEqual(aPushed._changed.split(',').sort(), ['business_opinion', 'representative_name'])
    const [bGet1, bPost1] = b.requestsSince(nB)
    assert.equal(bPost1.status, 409)
    assert.equal(bPost1.responseBody.error.code, 'sync_conflict')
    // the failed sync committed its pull, but B's edits are still pending
    const bRaw = await lib.rawOf(b.db, 'inspections', insp.id)
    assert.equal(bRaw._status, 'updated')
    assert.equal(bRaw.other_findings, 'B: 后厨有鼠迹')

    // B syncs again: pulls A's edit, WatermelonDB merges per column (local _changed columns win)
    const nB2 = b.requests.length
    const log = await b.sync()
    const [bGet2, bPost2, ...rest] = b.requestsSince(nB2)
    assert.equal(rest.length, 0)
    assert.equal(query(bGet2).last_pulled_at, String(bGet1.responseBody.timestamp),
      'the retry pulls from the timestamp of the failed sync\'s pull')
    assert.deepEqual(bGet2.responseBody.changes.inspections.updated.map((r) => r.id), [insp.id])
    assert.equal(bPost2.status, 200)
    const bPushed = bPost2.requestBody.changes.inspections.updated[0]
    assert.equal(bPushed.business_opinion, 'A: 对检查结果无异议', 'merged: A\'s column')
    assert.equal(bPushed.other_findings, 'B: 后厨有鼠迹', 'merged: B\'s column')
    assert.equal(bPushed.representative_name, 'B 记录的负责人', 'same column: the local edit wins')
    assert.equal(log.resolvedConflicts.length, 1)

    const final = await server.find('inspections', insp.id)
    assert.equal(final.business_opinion, 'A: 对检查结果无异议')
    assert.equal(final.other_findings, 'B: 后厨有鼠迹')
    assert.equal(final.representative_name, 'B 记录的负责人')

    await a.sync()
    const aFinal = await a.db.get('inspections').find(insp.id)
    assert.equal(aFinal.otherFindings, 'B: 后厨有鼠迹')
    assert.equal(aFinal.businessOpinion, 'A: 对检查结果无异议')
    assert.equal(aFinal.representativeName, 'B 记录的负责人')
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)
    assert.equal(await hasUnsyncedChanges({ database: b.db }), false)
  })

  test('4. deleting an answer propagates as a tombstone', async () => {
    const { establishmentId, taskId } = await seedTask()
    const a = await newDevice('deleter')
    const b = await newDevice('observer')
    await a.sync()
    const insp = await createInspection(a.db, taskId, establishmentId)
    const [keep, drop] = await addAnswers(a.db, insp.id, [['1.1', 'pass'], ['2.3', 'fail']])
    await a.sync()
    await b.sync()
    assert.ok(await lib.rawOf(b.db, 'answers', drop.id))

    await a.db.write(() => drop.markAsDeleted())
    assert.equal((await lib.rawOf(a.db, 'answers', drop.id))._status, 'deleted')
    assert.deepEqual(await a.db.adapter.getDeletedRecords('answers'), [drop.id])

    const n = a.requests.length
    await a.sync()
    const post = a.requestsSince(n).find((r) => r.method === 'POST')
    assert.deepEqual(post.requestBody.changes.answers, { created: [], updated: [], deleted: [drop.id] })
    assert.equal(await lib.rawOf(a.db, 'answers', drop.id), null, 'pushed deletion is purged locally')
    assert.deepEqual(await a.db.adapter.getDeletedRecords('answers'), [])

    const { records, tombstones } = await server.list('answers')
    assert.ok(tombstones.includes(drop.id))
    assert.ok(!records.some((r) => r.id === drop.id))
    assert.ok(records.some((r) => r.id === keep.id))

    const nb = b.requests.length
    await b.sync()
    const get = b.requestsSince(nb)[0]
    assert.deepEqual(get.responseBody.changes.answers.deleted, [drop.id])
    assert.equal(await lib.rawOf(b.db, 'answers', drop.id), null)
    assert.ok(await lib.rawOf(b.db, 'answers', keep.id))
  })

  test('4b. (fake only) why the server must not echo a device\'s own records as `created`', {
    skip: process.env.FOODCHECK_URL ? 'probes WatermelonDB with a deliberately wrong fake server' : false,
  }, async () => {
    // A server that classifies by created_seq > last_pulled_at alone sends the device's own
    // pushed records back as `created` on its next pull. If the user deleted one in between,
    // WatermelonDB 0.28 (sync/impl/applyRemote.js) "deletes local record and recreates it":
    // the deletion is silently lost and never pushed.
    const naive = createFakeServer({ users: [{ ...creds, user_id: 'u-inspector1' }], createdClassification: 'naive' })
    const url = await naive.listen(0)
    try {
      const put = (table, id, values) =>
        fetch(`${url}/__test__/records/${table}/${id}`, { method: 'PUT', body: JSON.stringify(values) })
      const taskId = uuid()
      await put('tasks', taskId, { establishment_id: 'e', state: 'assigned' })
      const a = await newDevice('naive', { url })
      await a.sync()
      const insp = await createInspection(a.db, taskId, 'e')
      const [answer] = await addAnswers(a.db, insp.id, [['1.1', 'pass']])
      await a.sync() // push; lastPulledAt stays at the pull before the push
      await a.db.write(() => answer.markAsDeleted())
      const logsBefore = lib.watermelonLogs.length
      const n = a.requests.length
      await a.sync()
      const [get, post] = a.requestsSince(n)
      assert.ok(get.responseBody.changes.answers.created.some((r) => r.id === answer.id))
      assert.ok(lib.watermelonLogs.slice(logsBefore).some((l) => l.text.includes('marked as deleted') && l.text.includes('recreate')))
      assert.equal((await lib.rawOf(a.db, 'answers', answer.id))._status, 'synced', 'resurrected')
      assert.equal(post, undefined, 'the deletion is never pushed')
    } finally {
      await naive.close()
    }
  })

  test('5. push response lost → retry → no duplicate on the server', async () => {
    const { establishmentId, taskId } = await seedTask()
    const a = await newDevice('flaky-network')
    await a.sync()
    const insp = await createInspection(a.db, taskId, establishmentId)
    const answers = await addAnswers(a.db, insp.id, [['1.1', 'pass'], ['2.3', 'fail']])

    const n = a.requests.length
    await assert.rejects(a.sync({ simulatePushResponseLost: true }), lib.PushResponseLostError)
    const lostPost = a.requestsSince(n).find((r) => r.method === 'POST')
    assert.equal(lostPost.status, 200, 'the server did apply the push')
    assert.equal((await lib.rawOf(a.db, 'inspections', insp.id))._status, 'created',
      'client never saw the answer: records stay unsynced')

    const countOnServer = async () => {
      const i = (await server.list('inspections')).records.filter((r) => r.task_id === taskId)
      const ans = (await server.list('answers')).records.filter((r) => r.inspection_id === insp.id)
      return { inspections: i.length, answers: ans.length }
    }
    assert.deepEqual(await countOnServer(), { inspections: 1, answers: 2 })

    const logsBefore = lib.watermelonLogs.length
    const n2 = a.requests.length
    await a.sync()
    const [get, post, ...rest] = a.requestsSince(n2)
    assert.equal(rest.length, 0)
    // the pull brings back the records this device pushed, as `updated` (the device created
    // them); WatermelonDB merges them into the local copies, which stay 'created'
    assert.ok(get.responseBody.changes.inspections.updated.some((r) => r.id === insp.id))
    assert.ok(!get.responseBody.changes.inspections.created.some((r) => r.id === insp.id))
    assert.ok(
      !lib.watermelonLogs.slice(logsBefore).some((l) => l.level === 'error'),
      'no "[Sync] ... already exists locally" error',
    )
    assert.equal(post.status, 200)
    assert.deepEqual(post.requestBody.changes.inspections.created.map((r) => r.id), [insp.id],
      'the retry re-sends the same records as created')
    assert.deepEqual(
      post.requestBody.changes.answers.created.map((r) => r.id).sort(),
      answers.map((x) => x.id).sort(),
    )
    assert.deepEqual(await countOnServer(), { inspections: 1, answers: 2 })
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)

    // a byte-for-byte replay of the lost POST (e.g. an HTTP-level retry) is harmless too
    const replay = await lib.httpJson('POST', lostPost.url, { token: a.token, body: lostPost.requestBody })
    assert.equal(replay.status, 200, 'identical replay is idempotent, not a conflict')
    assert.deepEqual(await countOnServer(), { inspections: 1, answers: 2 })
  })

  test('6. a refused record (experimentalRejectedIds) stays unsynced locally and is re-sent', async () => {
    const { establishmentId, taskId } = await seedTask()
    const a = await newDevice('refused')
    await a.sync()
    const good = await createInspection(a.db, taskId, establishmentId)
    const bad = await createInspection(a.db, `no-such-task-${uuid()}`, establishmentId)

    const n = a.requests.length
    const log = await a.sync() // resolves: a rejection is not an error for synchronize()
    const post = a.requestsSince(n).find((r) => r.method === 'POST')
    assert.equal(post.status, 200)
    assert.deepEqual(post.responseBody, { experimentalRejectedIds: { inspections: [bad.id] } })
    assert.deepEqual(log.rejectedIds, { inspections: [bad.id] })

    assert.equal((await lib.rawOf(a.db, 'inspections', good.id))._status, 'synced')
    assert.equal((await lib.rawOf(a.db, 'inspections', bad.id))._status, 'created',
      'rejected record is left exactly as it was: created, unsynced')
    assert.equal(await hasUnsyncedChanges({ database: a.db }), true)
    assert.deepEqual(await lib.dirtyState(a.db), { inspections: { created: [bad.id], updated: [], deleted: [] } })
    assert.equal(await server.find('inspections', bad.id), null)

    // next sync re-sends it (and it is refused again)
    const n2 = a.requests.length
    await a.sync()
    const post2 = a.requestsSince(n2).find((r) => r.method === 'POST')
    assert.deepEqual(post2.requestBody.changes.inspections.created.map((r) => r.id), [bad.id])
    assert.deepEqual(post2.responseBody.experimentalRejectedIds, { inspections: [bad.id] })

    // the user fixes it → accepted
    const badRec = await a.db.get('inspections').find(bad.id)
    await a.db.write(() => badRec.update((r) => { r.taskId = taskId }))
    await a.sync()
    assert.equal((await lib.rawOf(a.db, 'inspections', bad.id))._status, 'synced')
    assert.equal((await server.find('inspections', bad.id)).task_id, taskId)
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)
  })

  test('7. migration pull after the app upgrades its schema from version 1 to 2', async () => {
    const { establishmentId, taskId } = await seedTask()
    // server-side data the v1 app cannot hold: a photo, and server_flags on an inspection
    const inspectionId = uuid()
    const photoId = uuid()
    await server.put('inspections', inspectionId, {
      task_id: taskId,
      establishment_id: establishmentId,
      started_at: 1750000000000,
      team: '[]',
      submitted: true,
      computed_result: 'compliant',
      review_state: 'pending',
      server_flags: JSON.stringify(['gps_far_from_establishment']),
    })
    await server.put('photos', photoId, {
      inspection_id: inspectionId,
      item_code: '2.3',
      sha256: 'a'.repeat(64),
      byte_size: 123456,
      taken_at: 1750000001000,
      processing_status: 'stored',
    })

    const dev = await newDevice('upgrader', { version: 1 })
    assert.equal(dev.db.schema.version, 1)
    await dev.sync()
    const [get1] = dev.requests
    assert.deepEqual(query(get1), { last_pulled_at: 'null', schema_version: '1', migration: 'null' })
    assert.ok(!('photos' in get1.responseBody.changes), 'no tables the v1 client does not know')
    const inspV1 = get1.responseBody.changes.inspections.created.find((r) => r.id === inspectionId)
    assert.ok(inspV1 && !('server_flags' in inspV1), 'no columns the v1 client does not know')
    assert.equal(await dev.db.adapter.getLocal('__watermelon_last_pulled_schema_version'), '1')

    // app update: same local data, schema 2 with a migration (create photos, add server_flags)
    await dev.upgrade(2)
    assert.equal(dev.db.schema.version, 2)
    assert.equal((await dev.db.get('inspections').find(inspectionId)).serverFlags, null)
    assert.equal(await dev.db.get('photos').query().fetchCount(), 0)

    const n = dev.requests.length
    await dev.sync()
    const [get2, ...rest] = dev.requestsSince(n)
    assert.equal(rest.length, 0)
    const q = query(get2)
    assert.equal(q.last_pulled_at, String(get1.responseBody.timestamp))
    assert.equal(q.schema_version, '2')
    assert.deepEqual(JSON.parse(q.migration), {
      from: 1,
      tables: ['photos'],
      columns: [{ table: 'inspections', columns: ['server_flags'] }],
    })
    assert.ok(get2.responseBody.changes.photos.created.some((r) => r.id === photoId))
    assert.ok(get2.responseBody.changes.inspections.updated.some((r) => r.id === inspectionId))
    const photo = await dev.db.get('photos').find(photoId)
    assert.equal(photo.byteSize, 123456)
    assert.equal(photo.inspectionId, inspectionId)
    assert.deepEqual(
      JSON.parse((await dev.db.get('inspections').find(inspectionId)).serverFlags),
      ['gps_far_from_establishment'],
    )
    assert.equal(await dev.db.adapter.getLocal('__watermelon_last_pulled_schema_version'), '2')

    // afterwards: plain incremental syncs again
    const n3 = dev.requests.length
    await dev.sync()
    assert.equal(query(dev.requestsSince(n3)[0]).migration, 'null')
  })

  test('8. experimentalStrategy "replacement": records absent from a full pull are removed locally', async () => {
    const { establishmentId, taskId } = await seedTask()
    const gone = await seedTask()
    const a = await newDevice('replaced')
    await a.sync()
    const insp = await createInspection(a.db, taskId, establishmentId)
    const [purgedAnswer] = await addAnswers(a.db, insp.id, [['1.1', 'pass']])
    await a.sync()

    // server forgets records without tombstones (e.g. data repair); only a replacement pull can fix devices
    await server.purge('tasks', gone.taskId)
    await server.purge('answers', purgedAnswer.id)
    // local: an unsynced edit of the purged answer, and a brand-new answer
    await a.db.write(() => purgedAnswer.update((r) => { r.note = 'edited offline' }))
    const [fresh] = await addAnswers(a.db, insp.id, [['2.3', 'fail']])

    await server.nextPullStrategy('replacement')
    const n = a.requests.length
    await a.sync()
    const [get, post] = a.requestsSince(n)
    assert.equal(get.responseBody.experimentalStrategy, 'replacement')
    assert.equal(await lib.rawOf(a.db, 'tasks', gone.taskId), null, 'absent synced record removed')
    assert.equal(await lib.rawOf(a.db, 'answers', purgedAnswer.id), null,
      'absent record with unsynced local edits is removed too (edit lost)')
    assert.ok(await lib.rawOf(a.db, 'tasks', taskId), 'records in the full set stay')
    assert.equal(post.method, 'POST')
    assert.deepEqual(post.requestBody.changes.answers.created.map((r) => r.id), [fresh.id],
      'locally created records survive a replacement pull and are pushed')
    assert.deepEqual(post.requestBody.changes.answers.updated, [])
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)
  })
})
