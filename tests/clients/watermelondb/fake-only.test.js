'use strict'
// WatermelonDB 0.28.0 behaviour probes that need server states the real foodcheck API cannot
// produce on demand, so they always run against the in-process fake (fake-server.js, with its
// /__test__/ control API). They pin client behaviour the server design relies on; they do not
// test the real server.
//
//   F1 (was 4b). Why a server must not echo a device's own records back as `created`.
//   F2 (was 8).  experimentalStrategy "replacement": what WatermelonDB drops and keeps.
//
// The real-server scenarios are in sync.test.js.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')

const lib = require('./lib')
const { createFakeServer } = require('./fake-server')

const uuid = () => crypto.randomUUID()
const creds = { username: 'inspector1', password: 'inspector1-pass' }

async function fakeDevice(url, label) {
  const deviceId = `fake-${label}-${uuid()}`
  const token = await lib.login(url, { ...creds, deviceId })
  const db = await lib.makeDatabase({ name: deviceId })
  const device = {
    db,
    token,
    requests: [],
    sync: (opts = {}) =>
      lib.sync(device.db, { baseUrl: url, token, onRequest: (r) => device.requests.push(r), ...opts }),
    requestsSince: (n) => device.requests.slice(n),
  }
  return device
}

function control(url) {
  const call = async (method, path, body) => {
    const res = await fetch(`${url}/__test__${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const json = await res.json()
    if (!res.ok) throw new Error(`control ${method} ${path} → ${res.status} ${JSON.stringify(json)}`)
    return json
  }
  return {
    put: (table, id, values) => call('PUT', `/records/${table}/${id}`, values),
    purge: (table, id) => call('DELETE', `/records/${table}/${id}?purge=1`),
    nextPullStrategy: (strategy) => call('POST', '/next-pull-strategy', { strategy }),
  }
}

async function createInspection(db, taskId, establishmentId) {
  return db.write(() =>
    db.get('inspections').create((r) => {
      r.taskId = taskId
      r.establishmentId = establishmentId
      r.startedAt = 1750000000000
      r.team = '[]'
      r.representativeSigned = false
      r.representativeRefused = false
      r.submitted = false
    }),
  )
}

async function addAnswers(db, inspectionId, items) {
  return db.write(() =>
    Promise.all(
      items.map(([itemCode, status]) =>
        db.get('answers').create((a) => {
          a._raw.id = lib.answerId(inspectionId, itemCode)
          a.inspectionId = inspectionId
          a.itemCode = itemCode
          a.status = status
        }),
      ),
    ),
  )
}

describe('WatermelonDB 0.28.0 client behaviour (fake server only)', () => {
  test('F1. a server that echoes a device\'s own records as `created` makes WatermelonDB resurrect a deleted record', async () => {
    // A server that classifies by created_seq > last_pulled_at alone sends the device's own
    // pushed records back as `created` on its next pull. If the user deleted one in between,
    // WatermelonDB 0.28 (sync/impl/applyRemote.js) "deletes local record and recreates it":
    // the deletion is silently lost and never pushed.
    const naive = createFakeServer({ users: [{ ...creds, user_id: 'u-inspector1' }], createdClassification: 'naive' })
    const url = await naive.listen(0)
    try {
      const server = control(url)
      const taskId = uuid()
      await server.put('tasks', taskId, { establishment_id: 'e', state: 'assigned' })
      const a = await fakeDevice(url, 'naive')
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

  describe('with a correct fake', () => {
    let fake
    let url
    before(async () => {
      fake = createFakeServer({ users: [{ ...creds, user_id: 'u-inspector1' }] })
      url = await fake.listen(0)
    })
    after(async () => {
      await fake.close()
    })

    test('F2. experimentalStrategy "replacement": records absent from a full pull are removed locally', async () => {
      const server = control(url)
      const seed = async () => {
        const establishmentId = uuid()
        const taskId = uuid()
        await server.put('establishments', establishmentId, { sign_name: '老王面馆', town: '城关镇' })
        await server.put('tasks', taskId, { establishment_id: establishmentId, state: 'assigned' })
        return { establishmentId, taskId }
      }
      const { establishmentId, taskId } = await seed()
      const gone = await seed()
      const a = await fakeDevice(url, 'replaced')
      await a.sync()
      const insp = await createInspection(a.db, taskId, establishmentId)
      const [purgedAnswer] = await addAnswers(a.db, insp.id, [['1.1', 'pass']])
      await a.sync()

      // server forgets records without tombstones (on the real server: tombstones older than the
      // retention); only a replacement pull can fix devices
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
})
