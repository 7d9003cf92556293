'use strict'
// 19. A full 食品安全抽检 lifecycle with the real WatermelonDB client (schema 7) and the real
// tus client (tus-js-client 4.x) against a REAL foodcheck server (../run-sync-tests.sh):
//
//   admin: labs, categories, a sampling plan, its draw, the task's team of samplers
//   → the task reaches the sampler's device by pull (sampling_tasks)
//   → the 抽样单 is created offline in the WatermelonDB database (with task_id) with three photo
//     declarations (sample_attachments) and synced
//   → the photo bytes go up with tus-js-client (real JPEGs of tests/data/photos)
//   → custody sealed → dispatched (the samplers) → received (the lab), over the API
//   → the lab reports 不合格 (铅 over its limit) → the deadlines appear
//   → bureau_notified (the lab), served (the bureau) → 复检 requested, received and reported by
//     a second lab → disposal_done (核查处置)
//   → the period's 抽检信息公告 is published: its public JSON shows the unqualified sample with
//     its failed item and no personal data
//   → the devices pull again: the sample's state, its attachments' processing status.

const { describe, test, before } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const tus = require('tus-js-client')

const lib = require('./lib')
const { RealServer } = require('./real-server')
const { LATEST_VERSION } = require('./schema')

const BASE_URL = process.env.FOODCHECK_URL ? process.env.FOODCHECK_URL.replace(/\/+$/, '') : null
const SKIP = BASE_URL ? false : 'needs a real server: run ../run-sync-tests.sh, or set FOODCHECK_URL'

// Real photos of the project's tests (see tests/data/photos/README.md for origin and licence).
const PHOTOS = path.join(__dirname, '..', '..', 'data', 'photos')
const photo = (name) => {
  const bytes = fs.readFileSync(path.join(PHOTOS, name))
  return { name, bytes, sha256: crypto.createHash('sha256').update(bytes).digest('hex'), byte_size: bytes.length }
}
const ids = (list) => (list || []).map((r) => (typeof r === 'string' ? r : r.id))
const sorted = (xs) => [...xs].sort()
const HOUR = 3_600_000

/** Today in the bureau's zone (Asia/Shanghai, the server's default), `YYYY-MM-DD`. */
const bureauToday = () => new Date(Date.now() + 8 * HOUR).toISOString().slice(0, 10)

let world // RealServer

/** A fresh schema-7 install of inspector `who` on its own device. */
async function device(label, who) {
  const person = world.inspectors[who]
  const deviceId = `wmdb-${label}-${crypto.randomUUID()}`
  const token = await lib.login(BASE_URL, { username: person.username, password: person.password, deviceId })
  const db = await lib.makeDatabase({
    schema: lib.appSchemaFor(LATEST_VERSION),
    migrations: lib.migrationsFor(LATEST_VERSION),
    name: deviceId,
  })
  const requests = []
  return {
    db,
    token,
    requests,
    /** One synchronize(); resolves to its { get, post } exchanges. */
    async sync() {
      const n = requests.length
      await lib.sync(db, { baseUrl: BASE_URL, token, schemaVersion: LATEST_VERSION, onRequest: (r) => requests.push(r) })
      const mine = requests.slice(n)
      return { get: mine.find((r) => r.method === 'GET'), post: mine.find((r) => r.method === 'POST') }
    },
  }
}

function assertAccepted(post, what) {
  assert.ok(post, `${what}: a push was made`)
  assert.equal(post.status, 200, `${what}: ${JSON.stringify(post.responseBody)}`)
  assert.deepEqual(post.responseBody, {}, `${what}: nothing refused`)
}

const record = (changes, table, id) =>
  [...(changes[table].created || []), ...(changes[table].updated || [])].find((r) => r.id === id)

/** tus-js-client upload of `file` as attachment `attachmentId`; resolves when it succeeded. */
function tusUpload(token, attachmentId, file) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(file.bytes, {
      endpoint: `${BASE_URL}/api/v1/uploads`,
      headers: { Authorization: `Bearer ${token}` },
      metadata: { attachment_id: attachmentId, sha256: file.sha256, filename: file.name },
      chunkSize: 1024 * 1024,
      retryDelays: null,
      onSuccess: () => resolve(upload.url),
      onError: reject,
    })
    upload.start()
  })
}

async function waitFor(what, fn, { tries = 100, ms = 100 } = {}) {
  let last
  for (let i = 0; i < tries; i++) {
    last = await fn()
    if (last.done) return last.value
    await new Promise((r) => setTimeout(r, ms))
  }
  throw new Error(`${what}: still ${JSON.stringify(last.value)}`)
}

describe('食品安全抽检 with the real WatermelonDB and tus clients against the real server', { skip: SKIP }, () => {
  before(async () => {
    world = new RealServer(BASE_URL, {
      adminUsername: process.env.FOODCHECK_ADMIN_USERNAME,
      adminPassword: process.env.FOODCHECK_ADMIN_PASSWORD,
    })
    await world.setUp()
  })

  test('19. a sample\'s whole life: plan → task by pull → 抽样单 and photos offline (schema 7) → tus uploads → custody → 不合格 → deadlines → served → 复检 → 核查处置 → public announcement → the device sees it all', async () => {
    const { a: A, b: B } = world.inspectors
    const api = (method, p, body, opts) => world.api(method, p, body, opts)
    const today = bureauToday()

    // ---- The admin sets up: categories and the lab (RealServer.sampling()), a 复检 lab with
    // its account, premises in a town of their own, and a sampling plan over that town.
    const sp = await world.sampling()
    const retestLab = await api('POST', '/api/v1/labs', { name: `复检检验所-${world.run}`, code: `RT${world.run}`.toUpperCase() }, { expect: 201 })
    const rtUser = { username: `wm-${world.run}-retest-lab`, password: `pw-${crypto.randomUUID()}` }
    const rtAccount = await api('POST', '/api/v1/users', { ...rtUser, role: 'lab', name: `复检员-${world.run}` }, { expect: 201 })
    await api('PUT', `/api/v1/users/${rtAccount.id}/lab`, { lab_id: retestLab.id })
    const rtToken = await world.login({ ...rtUser, deviceId: `wmdb-retest-lab-${world.run}` })
    const premises = await world.createEstablishment()
    const { token: reviewer } = await world.reviewer()
    const plan = await api('POST', '/api/v1/sampling-plans', {
      title: `2026年流通环节小麦粉监督抽检 ${world.run}`,
      purpose: 'supervision',
      stage: 'circulation',
      period_start: today,
      period_end: today,
      lab_id: sp.labId,
      batches: [{ category_code: sp.categoryCode, batches: 1 }],
      filter: { towns: [premises.body.town] },
      quotas: { explicit: { C: 1 } },
    }, { expect: 201 })
    const drawn = await api('POST', `/api/v1/sampling-plans/${plan.id}/draw`, { seed: `wmdb-${crypto.randomUUID()}` }, { expect: 201 })
    assert.equal(drawn.tasks.length, 1, JSON.stringify(drawn))
    const taskId = drawn.tasks[0].id
    assert.equal(drawn.tasks[0].premises.id, premises.id)
    assert.equal(drawn.tasks[0].state, 'unassigned')
    const team = await api('PUT', `/api/v1/sampling-tasks/${taskId}/team`, { sampler_ids: [A.id, B.id] }, { token: reviewer })
    assert.equal(team.state, 'assigned', JSON.stringify(team))
    assert.deepEqual(team.team.map((m) => m.user_id), [A.id, B.id])

    // ---- The task reaches the sampler's device by pull.
    const a = await device('life-a', 'a')
    const first = await a.sync()
    assert.equal(first.get.status, 200)
    assert.ok(ids(first.get.responseBody.changes.sampling_tasks.created).includes(taskId),
      `the task comes as new: ${JSON.stringify(first.get.responseBody.changes.sampling_tasks)}`)
    assert.deepEqual(first.get.responseBody.changes.sample_attachments, { created: [], updated: [], deleted: [] })
    const task = await a.db.get('sampling_tasks').find(taskId)
    assert.equal(task.establishmentId, premises.id)
    assert.equal(task.labId, sp.labId)
    assert.equal(task.state, 'assigned')
    assert.deepEqual(JSON.parse(task.team).map((m) => m.user_id), [A.id, B.id])

    // ---- Offline: the 抽样单 against the task, from the task's own fields, and three photos.
    const site = photo('DSCN0010.jpg')
    const seal = photo('HMD_Nokia_8.3_5G.jpg')
    const broken = photo('corrupted.jpg') // its scan data is corrupt: processing fails
    const sampledAt = Date.now() - 2 * HOUR
    const form = {
      establishment_id: task.establishmentId, lab_id: task.labId, category_code: sp.categoryCode, task_id: task.id,
      task_source: task.planTitle, purpose: task.purpose, stage: task.stage,
      food_category_1: sp.categories[0], food_category_2: sp.categories[1], food_category_3: sp.categories[2],
      food_category_4: '/', premises_name: task.premisesSignName, premises_address: task.premisesAddress,
      premises_credit_code: task.premisesCreditCode ?? '/', premises_licence_no: task.premisesLicenceNo ?? '/',
      premises_legal_representative: '赵法人', premises_contact: '13912345678',
      producer_name: '天津某面粉厂', producer_address: '天津市宝坻区', producer_sc_licence: 'SC10112011500012',
      sample_name: `高筋小麦粉-${world.run}`, sample_brand: '金穗', sample_specification: '5kg/袋',
      sample_production_date: '2026-01-15', sample_batch: '/', sample_shelf_life: '12个月',
      sample_standard: 'GB 1355', sample_price: '32.00', sample_imported: false, sample_storage: '常温',
      sampling_method: 'non_aseptic', sampling_base: 50, sampling_base_unit: '袋', sample_quantity: 4,
      sample_quantity_unit: '袋', backup_quantity: 2, backup_quantity_unit: '袋', sampled_at: sampledAt,
      lng: 117.3, lat: 39.7, crs: 'wgs84', gps_accuracy_m: 6,
      sampler_1: A.id, sampler_2: B.id, premises_opinion: 'no_objection',
    }
    const [sample, photos] = await a.db.write(async () => {
      const s = await a.db.get('samples').create((x) => {
        for (const [k, v] of Object.entries(form)) x._setRaw(k, v)
      })
      const declare = (kind, file, t) => a.db.get('sample_attachments').create((x) => {
        x.sampleId = s.id
        x.kind = kind
        x.sha256 = file.sha256
        x.byteSize = file.byte_size
        x.takenAt = t
      })
      return [s, {
        site: await declare('site', site, sampledAt),
        sample: await declare('sample', broken, sampledAt + 60_000),
        seal: await declare('seal', seal, sampledAt + 120_000),
      }]
    })
    const photoIds = sorted(Object.values(photos).map((p) => p.id))
    const { post } = await a.sync()
    assertAccepted(post, 'the offline 抽样单 with its photo declarations')
    assert.deepEqual(sorted(ids(post.requestBody.changes.sample_attachments.created)), photoIds)
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)
    let stored = await world.sample(sample.id)
    assert.equal(stored.task_id, taskId)
    assert.equal(stored.state, 'submitted')
    const sampleNo = stored.sample_no
    assert.match(sampleNo, /^FC-\d{8}-\d{4}$/)
    let online = await api('GET', `/api/v1/samples/${sample.id}/attachments`)
    assert.deepEqual(sorted(online.items.map((x) => x.id)), photoIds)
    assert.ok(online.items.every((x) => x.processing_status === 'awaiting_upload' && x.declared_by === A.id))

    // ---- The bytes, with the real tus client (as the app does after the sync).
    for (const [kind, file] of [['site', site], ['sample', broken], ['seal', seal]]) {
      const url = await tusUpload(a.token, photos[kind].id, file)
      assert.match(url, /\/api\/v1\/uploads\//)
    }
    const settled = await waitFor('the photos are processed', async () => {
      const items = (await api('GET', `/api/v1/samples/${sample.id}/attachments`)).items
      const byId = Object.fromEntries(items.map((x) => [x.id, x]))
      return {
        done: items.every((x) => ['processed', 'failed'].includes(x.processing_status)),
        value: byId,
      }
    })
    assert.equal(settled[photos.site.id].processing_status, 'processed')
    assert.deepEqual([settled[photos.site.id].width, settled[photos.site.id].height], [640, 480])
    assert.equal(settled[photos.seal.id].processing_status, 'processed')
    assert.equal(settled[photos.sample.id].processing_status, 'failed')
    assert.ok(settled[photos.sample.id].processing_error, 'the failure says why')

    // ---- Custody over the API: sealed and dispatched by the samplers, received by the lab.
    const bToken = await world.login({ username: B.username, password: B.password, deviceId: `wmdb-life-b-online-${world.run}` })
    const custody = (token, kind, t, extra = {}) => api('POST', `/api/v1/samples/${sample.id}/custody`,
      { id: crypto.randomUUID(), kind, occurred_at: t, place: task.premisesSignName, ...extra }, { token, expect: 201 })
    await custody(a.token, 'sealed', sampledAt + 10 * 60_000)
    await custody(bToken, 'dispatched', sampledAt + 30 * 60_000)
    await world.labCustody(sample.id, {
      kind: 'received', occurred_at: sampledAt + HOUR, place: '检验中心收样室', sample_condition: '包装完好', seal_intact: true,
    })
    assert.equal((await world.sample(sample.id)).state, 'received')

    // ---- The lab reports 不合格: 铅 over its limit, 镉 within.
    const labToken = sp.lab.token
    const reportNo = `WT-${world.run}`
    const result = await api('PUT', `/api/v1/samples/${sample.id}/result`, {
      report_no: reportNo,
      overall: 'unqualified',
      items: [
        { name: '铅(以Pb计)', value: '0.35', unit: 'mg/kg', limit: '≤0.2', standard: 'GB 2762-2022', method: 'GB 5009.12-2023', verdict: 'unqualified' },
        { name: '镉(以Cd计)', value: '0.01', unit: 'mg/kg', limit: '≤0.1', standard: 'GB 2762-2022', method: 'GB 5009.15-2023', verdict: 'qualified' },
      ],
    }, { token: labToken, expect: 201 })
    assert.ok(JSON.stringify(result).includes('unqualified'), JSON.stringify(result))
    for (const kind of ['testing', 'reported']) {
      await world.labCustody(sample.id, { kind, occurred_at: Date.now() - 60_000, place: '检验中心' })
    }
    stored = await world.sample(sample.id)
    assert.equal(stored.state, 'reported')

    // ---- The deadlines appear: the result is due at the bureau (2 working days).
    const open = async () => {
      const out = []
      for (const status of ['due', 'overdue']) {
        const page = await api('GET', `/api/v1/sampling/deadlines?status=${status}&limit=200`, undefined, { token: reviewer })
        for (const e of page.items) if (e.sample_id === sample.id) out.push(e.deadline.rule)
      }
      return sorted(out)
    }
    assert.deepEqual(await open(), ['unqualified_to_bureau'])

    // ---- bureau_notified (the lab) opens 核查处置; served (the bureau) opens the 复检 window.
    const fact = (token, body) => api('POST', `/api/v1/samples/${sample.id}/facts`, body, { token, expect: 201 })
    const notified = await fact(labToken, { kind: 'bureau_notified', on: today })
    assert.ok(notified.followup_id, JSON.stringify(notified))
    assert.deepEqual(await open(), ['disposal', 'service'])
    await fact(reviewer, { kind: 'served', on: today })
    assert.deepEqual(await open(), ['disposal', 'retest_or_objection'])

    // ---- 复检 of 铅 at the second lab, received and reported there.
    const retest = await fact(reviewer, { kind: 'retest_requested', on: today, retest_lab_id: retestLab.id, items: ['铅(以Pb计)'] })
    assert.deepEqual(retest.retest_items, ['铅(以Pb计)'])
    assert.deepEqual(await open(), ['disposal'])
    await fact(rtToken, { kind: 'retest_received', on: today })
    assert.deepEqual(await open(), ['disposal', 'retest_report'])
    await fact(rtToken, { kind: 'retest_reported', on: today })

    // ---- 核查处置 done: the follow-up closes, no deadline of the sample is open.
    const disposed = await fact(reviewer, { kind: 'disposal_done', on: today })
    assert.deepEqual(disposed.facts.map((f) => f.kind),
      ['bureau_notified', 'served', 'retest_requested', 'retest_received', 'retest_reported', 'disposal_done'])
    assert.deepEqual(await open(), [])
    assert.equal((await api('GET', `/api/v1/followups/${notified.followup_id}`, undefined, { token: reviewer })).state, 'closed')

    // ---- The period's announcement: drafted, the sample proposed as unqualified, published.
    const draft = await api('POST', '/api/v1/announcements', {
      announcement_no: `2026年抽检 ${world.run}`, title: '食品安全监督抽检信息公告', period_start: today, period_end: today,
    }, { token: reviewer, expect: 201 })
    assert.equal(draft.state, 'draft')
    const proposed = await api('GET', `/api/v1/announcements/${draft.id}`, undefined, { token: reviewer })
    assert.ok(JSON.stringify(proposed.unqualified).includes(sampleNo), `proposed: ${JSON.stringify(proposed).slice(0, 1500)}`)
    await api('POST', `/api/v1/announcements/${draft.id}/publish`, {})
    const res = await fetch(`${BASE_URL}/public/v1/announcements/${draft.id}`) // no login
    assert.equal(res.status, 200)
    const text = await res.text()
    const pub = JSON.parse(text)
    const row = pub.unqualified.find((r) => r.sample_no === sampleNo)
    assert.ok(row, `the sample in the public unqualified table: ${text.slice(0, 1500)}`)
    assert.equal(row.sample_name, form.sample_name)
    assert.equal(row.premises_name, task.premisesSignName)
    assert.equal(row.brand, '金穗')
    assert.equal(row.report_no, reportNo)
    assert.deepEqual(row.failed_items.map((i) => [i.name, i.value, i.limit, i.standard]),
      [['铅(以Pb计)', '0.35', '≤0.2', 'GB 2762-2022']], 'only the failed item')
    assert.ok(!pub.qualified.some((r) => r.sample_no === sampleNo))
    // No personal data: neither the premises' people nor the samplers, nor internal ids.
    for (const secret of ['赵法人', '13912345678', A.name, B.name, A.badge_no, B.badge_no, A.username, A.id, B.id, sample.id,
      photos.site.id, site.sha256]) {
      assert.ok(!text.includes(secret), `the public announcement leaks ${secret}`)
    }

    // ---- The devices pull again: the sample's state and its photos' processing status.
    const again = await a.sync()
    const changes = again.get.responseBody.changes
    const pulledSample = record(changes, 'samples', sample.id)
    assert.ok(pulledSample, `the sample changed since: ${JSON.stringify(changes.samples)}`)
    assert.equal(pulledSample.state, 'reported')
    assert.deepEqual(sorted(ids(changes.sample_attachments.updated)), photoIds, 'own photos come back as updates')
    assert.deepEqual(changes.sample_attachments.created, [])
    const local = await a.db.get('samples').find(sample.id)
    assert.equal(local.state, 'reported')
    assert.equal(local.sampleNo, sampleNo)
    assert.equal(local.taskId, taskId)
    const localPhoto = async (id) => a.db.get('sample_attachments').find(id)
    assert.equal((await localPhoto(photos.site.id)).processingStatus, 'processed')
    assert.equal((await localPhoto(photos.site.id)).width, 640)
    assert.equal((await localPhoto(photos.seal.id)).processingStatus, 'processed')
    const failed = await localPhoto(photos.sample.id)
    assert.equal(failed.processingStatus, 'failed')
    assert.ok(failed.processingError, 'the device learns why')
    const events = await a.db.get('custody_events').query().fetch()
    assert.deepEqual(events.filter((e) => e.sampleId === sample.id).map((e) => e.kind).sort(),
      ['dispatched', 'received', 'reported', 'sealed', 'testing'])
    assert.equal(await hasUnsyncedChanges({ database: a.db }), false)
    // The other sampler's new device gets the sample and its photos as new; the report never.
    const b = await device('life-b', 'b')
    const bFirst = await b.sync()
    assert.ok(ids(bFirst.get.responseBody.changes.samples.created).includes(sample.id))
    const bPhotos = bFirst.get.responseBody.changes.sample_attachments.created.filter((x) => x.sample_id === sample.id)
    assert.deepEqual(sorted(ids(bPhotos)), photoIds)
    assert.ok(bPhotos.every((x) => x.kind !== 'report'))
    // Someone who is no sampler of it gets none of it.
    const o = await device('life-outsider', 'outsider')
    const oFirst = await o.sync()
    assert.ok(!JSON.stringify(oFirst.get.responseBody).includes(sample.id))
  })
})
