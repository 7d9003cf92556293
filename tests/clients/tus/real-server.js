'use strict'
// Arrange and inspect server state on a REAL foodcheck server, through its public API only
// (no test-control endpoints). Same approach as ../watermelondb/real-server.js:
//
//   POST /api/v1/auth/login                        admin and inspector sessions
//   POST /api/v1/users                             the run's inspectors a, b (the team) and outsider
//   POST /api/v1/establishments, POST /api/v1/plans, POST /api/v1/plans/{id}/draw,
//   GET  /api/v1/tasks?plan_id=                    one task for the team [a, b]
//   GET/POST /api/v1/sync                          inspector a starts an inspection and syncs
//                                                  photo records (sha256 + byte_size) — what the
//                                                  app does before it uploads the bytes
//   GET  /api/v1/inspections?task_id=              the photo records as the server holds them
//
// Every run makes its own users, towns and licence numbers, so the tests also run against a
// long-lived server that already holds data.

const crypto = require('node:crypto')
const fs = require('node:fs')

const TEMPLATE_ID = '00000000-0000-4000-8000-000000002016' // 2016 catering table, installed at first start
const TEMPLATE_VERSION = 1
const SCHEMA_VERSION = 2 // the sync schema the app speaks (src/sync/mod.rs CURRENT_SCHEMA_VERSION)

class ApiError extends Error {
  constructor(what, res) {
    super(`${what} → HTTP ${res.status} ${JSON.stringify(res.body)}`)
    this.name = 'ApiError'
    this.status = res.status
    this.body = res.body
  }
}

async function httpJson(method, url, { token, body } = {}) {
  const headers = { accept: 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  let json = null
  if (text) {
    try {
      json = JSON.parse(text)
    } catch (_) {
      json = { _nonJson: text }
    }
  }
  return { status: res.status, ok: res.ok, body: json }
}

const digits = (n) => Array.from({ length: n }, () => crypto.randomInt(10)).join('')
const sha256Hex = (buf) => crypto.createHash('sha256').update(buf).digest('hex')

class RealServer {
  constructor(baseUrl, { adminUsername, adminPassword } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
    this.adminUsername = adminUsername || 'admin'
    this.adminPassword = adminPassword || 'admin-password-123'
    this.run = crypto.randomUUID().slice(0, 8)
    this.seq = 0
    this.adminToken = null
    this.inspectors = {} // label → { id, username, password, token }
  }

  async api(method, path, body, { token = this.adminToken, expect } = {}) {
    const res = await httpJson(method, `${this.baseUrl}${path}`, { token, body })
    if (expect !== undefined ? res.status !== expect : !res.ok) throw new ApiError(`${method} ${path}`, res)
    return res.body
  }

  async login({ username, password, deviceId }) {
    const body = await this.api('POST', '/api/v1/auth/login', { username, password, device_id: deviceId }, { token: null })
    return body.access_token
  }

  /** Admin session + inspectors a and b (the team of every task) and outsider (in no team), logged in. */
  async setUp() {
    this.adminToken = await this.login({
      username: this.adminUsername,
      password: this.adminPassword,
      deviceId: `tus-harness-admin-${this.run}`,
    })
    const people = { a: '张三', b: '李四', outsider: '王五' }
    for (const [label, name] of Object.entries(people)) {
      const username = `tus-${this.run}-${label}`
      const password = `pw-${crypto.randomUUID()}`
      const user = await this.api('POST', '/api/v1/users', {
        username, password, role: 'inspector', name: `${name}-${this.run}`,
        badge_no: `TUS${this.run}${label.slice(0, 3).toUpperCase()}`,
      }, { expect: 201 })
      const token = await this.login({ username, password, deviceId: `tus-harness-${label}-${this.run}` })
      this.inspectors[label] = { id: user.id, username, password, token }
    }
    return this.inspectors
  }

  /** One establishment in a unique town → plan → draw: one task for the team [a, b]. */
  async seedTask() {
    const n = ++this.seq
    const est = await this.api('POST', '/api/v1/establishments', {
      sign_name: `津门包子铺 ${this.run}-${n}`,
      licensed_name: `天津市和平区津门包子铺（个体工商户）${this.run}-${n}`,
      license_no: `JY2${digits(13)}`,
      category: 'small_restaurant',
      address: `和平区南京路 ${n} 号`,
      town: `上传测试街道-${this.run}-${n}`,
      risk_grade: 'C',
    }, { expect: 201 })
    const plan = await this.api('POST', '/api/v1/plans', {
      name: `tus harness ${this.run}-${n}`,
      round_title: `2024年3·15 随机查餐厅 照片上传测试 ${this.run}-${n}`,
      theme: '餐饮具清洗消毒',
      period_start: '2024-03-01',
      period_end: '2024-03-31',
      due_date: '2099-03-31',
      template_id: TEMPLATE_ID,
      template_version: TEMPLATE_VERSION,
      filter: { towns: [`上传测试街道-${this.run}-${n}`] },
      quotas: { explicit: { C: 1 } },
      inspector_ids: [this.inspectors.a.id, this.inspectors.b.id],
      team_size: 2,
    }, { expect: 201 })
    await this.api('POST', `/api/v1/plans/${plan.id}/draw`, { seed: `tus-${crypto.randomUUID()}` }, { expect: 201 })
    const tasks = await this.api('GET', `/api/v1/tasks?plan_id=${plan.id}`)
    if (tasks.items.length !== 1) throw new Error(`plan ${plan.id} has ${tasks.items.length} tasks`)
    return { taskId: tasks.items[0].id, establishmentId: est.id }
  }

  /** Inspector a pulls (for the timestamp), then pushes `changes`; any refusal throws. */
  async push(changes, token = this.inspectors.a.token) {
    const pull = await this.api('GET', `/api/v1/sync?last_pulled_at=null&schema_version=${SCHEMA_VERSION}`, undefined, { token })
    const res = await this.api('POST', `/api/v1/sync?last_pulled_at=${pull.timestamp}`, { changes }, { token })
    if (res && Object.keys(res).length) throw new Error(`sync push refused records: ${JSON.stringify(res)}`)
    return res
  }

  /**
   * A task, an inspection of it started by inspector a, and one photo record per file, synced
   * with the file's sha256 and byte_size (or the overrides in `records`).
   * Returns { taskId, inspectionId, photos: [{ id, sha256, byte_size }] }.
   */
  async seedInspectionWithPhotos(files) {
    const { taskId, establishmentId } = await this.seedTask()
    const inspectionId = crypto.randomUUID()
    const now = Date.now()
    const photos = files.map((f) => {
      const bytes = Buffer.isBuffer(f) ? f : f.bytes || fs.readFileSync(f.path)
      return {
        id: crypto.randomUUID(),
        inspection_id: inspectionId,
        item_code: '4.1',
        sha256: (f && f.sha256) || sha256Hex(bytes),
        byte_size: (f && f.byte_size) || bytes.length,
        taken_at: (f && f.taken_at) || now,
      }
    })
    await this.push({
      inspections: {
        created: [{
          id: inspectionId, task_id: taskId, establishment_id: establishmentId, started_at: now,
          team: '[]', representative_signed: false, representative_refused: false, submitted: false,
        }],
        updated: [], deleted: [],
      },
      photos: { created: photos, updated: [], deleted: [] },
    })
    return { taskId, inspectionId, photos }
  }

  /** The photo records of a task as the admin sees them (GET /api/v1/inspections?task_id=). */
  async photosOfTask(taskId) {
    const body = await this.api('GET', `/api/v1/inspections?task_id=${encodeURIComponent(taskId)}`)
    return body.items.flatMap((i) => i.photos || [])
  }

  /** The photo record as inspector `label`'s device sees it after a full pull. */
  async pulledPhoto(photoId, label = 'a') {
    const pull = await this.api('GET', `/api/v1/sync?last_pulled_at=null&schema_version=${SCHEMA_VERSION}`, undefined,
      { token: this.inspectors[label].token })
    const p = pull.changes.photos || {}
    return [...(p.created || []), ...(p.updated || [])].find((r) => r.id === photoId) || null
  }
}

module.exports = { RealServer, ApiError, httpJson, sha256Hex, TEMPLATE_ID, SCHEMA_VERSION }
