'use strict'
// Arrange and inspect server state on a REAL foodcheck server, through its public API only
// (no test-control endpoints):
//
//   POST /api/v1/auth/login                       admin and inspector sessions (one device_id each)
//   POST /api/v1/users                            inspectors of this run
//   POST /api/v1/establishments, PUT …/{id}        the establishment of each task; server-side edits
//   POST /api/v1/plans, POST /api/v1/plans/{id}/draw, GET /api/v1/tasks?plan_id=
//                                                 one task per seedTask(), team = inspectors a + b
//   POST /api/v1/tasks/{id}/cancel                server-side cancellation
//   GET  /api/v1/inspections?task_id=              what the server stored (admin/reviewer view)
//   POST /api/v1/inspections/{id}/review           a reviewer's decision (a reviewer of this run)
//   POST /api/v1/food-categories/import, /labs, PUT /users/{id}/lab, PUT /calendar/years/{y}
//                                                 食品安全抽检 set-up (a lab and its account)
//   GET  /api/v1/samples/{id}, /lab/samples, POST /samples/{id}/custody   samples as stored; the lab's events
//
// Every run makes its own users, towns and licence numbers, so the scenarios also run against a
// long-lived server that already holds data.

const crypto = require('node:crypto')
const { httpJson } = require('./lib')

// Default checklist installed at first start: 2016 national catering table, version 1.
const TEMPLATE_ID = '00000000-0000-4000-8000-000000002016'
const TEMPLATE_VERSION = 1
// From src/checklist/catering-2016.json: 7 key items (重点项), 23 general ones.
const KEY_ITEMS = ['3.1', '3.2', '4.1', '4.2', '6.1', '8.4', '9.3']
const GENERAL_ITEMS = [
  '1.1', '2.1', '2.2', '2.3', '4.3', '4.4', '5.1', '5.2', '5.3', '5.4', '6.2', '6.3',
  '7.1', '7.2', '7.3', '7.4', '7.5', '7.6', '8.1', '8.2', '8.3', '9.1', '9.2',
]

class ApiError extends Error {
  constructor(what, res) {
    super(`${what} → HTTP ${res.status} ${JSON.stringify(res.body)}`)
    this.name = 'ApiError'
    this.status = res.status
    this.body = res.body
  }
}

const digits = (n) => Array.from({ length: n }, () => crypto.randomInt(10)).join('')

class RealServer {
  constructor(baseUrl, { adminUsername, adminPassword } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
    this.adminUsername = adminUsername || 'admin'
    this.adminPassword = adminPassword || 'admin-password-123'
    this.run = crypto.randomUUID().slice(0, 8) // this test run
    this.seq = 0
    this.adminToken = null
    this.inspectors = {} // label → { id, username, password, name, badge_no }
  }

  async api(method, path, body, { token = this.adminToken, expect } = {}) {
    const res = await httpJson(method, `${this.baseUrl}${path}`, { token, body })
    if (expect !== undefined ? res.status !== expect : !res.ok) {
      throw new ApiError(`${method} ${path}`, res)
    }
    return res.body
  }

  async login({ username, password, deviceId }) {
    const body = await this.api('POST', '/api/v1/auth/login', { username, password, device_id: deviceId }, { token: null })
    return body.access_token
  }

  /** Admin session + three inspectors: a and b (always the team), outsider (never in a team). */
  async setUp() {
    this.adminToken = await this.login({
      username: this.adminUsername,
      password: this.adminPassword,
      deviceId: `wmdb-harness-admin-${this.run}`,
    })
    const people = { a: '张三', b: '李四', outsider: '王五' }
    for (const [label, name] of Object.entries(people)) {
      const username = `wm-${this.run}-${label}`
      const password = `pw-${crypto.randomUUID()}`
      const badge_no = `WM${this.run}${label.slice(0, 3).toUpperCase()}`
      const user = await this.api('POST', '/api/v1/users',
        { username, password, role: 'inspector', name: `${name}-${this.run}`, badge_no }, { expect: 201 })
      this.inspectors[label] = { id: user.id, username, password, name: user.name, badge_no }
    }
    return this.inspectors
  }

  /** POST /api/v1/establishments; returns { id, body } (body: what PUT needs to change it). */
  async createEstablishment(extra = {}) {
    const n = ++this.seq
    const body = {
      sign_name: `老王面馆 ${this.run}-${n}`,
      licensed_name: `某某区老王面馆（个体工商户）${this.run}-${n}`,
      license_no: `JY2${digits(13)}`,
      category: 'small_restaurant',
      address: `幸福路 ${n} 号`,
      town: `同步测试镇-${this.run}-${n}`, // unique: the plan's pool is exactly this establishment
      risk_grade: 'C',
      location: { lng: 116.397, lat: 39.908, crs: 'gcj02' },
      ...extra,
    }
    const created = await this.api('POST', '/api/v1/establishments', body, { expect: 201 })
    return { id: created.id, body }
  }

  async updateEstablishment(establishment, changes) {
    establishment.body = { ...establishment.body, ...changes }
    return this.api('PUT', `/api/v1/establishments/${establishment.id}`, establishment.body)
  }

  /**
   * A plan whose pool is one establishment, drawn: one task for the team [a, b].
   * Returns { taskId, establishmentId, establishment, planId, task (TaskView), team } where team
   * is the inspection's `team` value: [{ user_id, name, badge_no }].
   */
  async seedTask({ establishment } = {}) {
    establishment = establishment || (await this.createEstablishment())
    const n = ++this.seq
    const plan = await this.api('POST', '/api/v1/plans', {
      name: `wmdb harness ${this.run}-${n}`,
      round_title: `2024年3·15 随机查餐厅 同步测试 ${this.run}-${n}`,
      theme: '餐饮具清洗消毒',
      period_start: '2024-03-01',
      period_end: '2024-03-31',
      due_date: '2099-03-31',
      template_id: TEMPLATE_ID,
      template_version: TEMPLATE_VERSION,
      filter: { towns: [establishment.body.town] },
      quotas: { explicit: { C: 1 } },
      inspector_ids: [this.inspectors.a.id, this.inspectors.b.id],
      team_size: 2,
    }, { expect: 201 })
    const draw = await this.api('POST', `/api/v1/plans/${plan.id}/draw`, { seed: `wmdb-${crypto.randomUUID()}` }, { expect: 201 })
    if (draw.drawn.length !== 1 || draw.drawn[0].establishment_id !== establishment.id) {
      throw new Error(`draw of plan ${plan.id} did not draw exactly establishment ${establishment.id}: ${JSON.stringify(draw.drawn)}`)
    }
    const tasks = await this.api('GET', `/api/v1/tasks?plan_id=${plan.id}`)
    if (tasks.items.length !== 1) throw new Error(`plan ${plan.id} has ${tasks.items.length} tasks`)
    const task = tasks.items[0]
    return {
      taskId: task.id,
      establishmentId: establishment.id,
      establishment,
      planId: plan.id,
      task,
      // The task's team as the server lists it is the inspection's team shape as is.
      team: task.team.map(({ user_id, name, badge_no, role }) => ({ user_id, name, badge_no, role })),
    }
  }

  async task(taskId) {
    return this.api('GET', `/api/v1/tasks/${taskId}`)
  }

  async cancelTask(taskId, reason = '同步测试：撤销任务') {
    return this.api('POST', `/api/v1/tasks/${taskId}/cancel`, { reason })
  }

  /** GET /api/v1/inspections?task_id= (all pages): the server's inspections of a task. */
  async inspectionsOfTask(taskId) {
    const items = []
    for (let page = 1; ; page++) {
      const body = await this.api('GET', `/api/v1/inspections?task_id=${encodeURIComponent(taskId)}&page=${page}`)
      items.push(...body.items)
      if (!body.items.length || items.length >= body.total_count) return items
    }
  }

  async inspection(taskId, inspectionId) {
    return (await this.inspectionsOfTask(taskId)).find((i) => i.id === inspectionId) || null
  }

  /** The reviewer of this run (created on first use): { id, name, token }. */
  async reviewer() {
    if (!this._reviewer) {
      const username = `wm-${this.run}-reviewer`
      const password = `pw-${crypto.randomUUID()}`
      const user = await this.api('POST', '/api/v1/users',
        { username, password, role: 'reviewer', name: `审核员-${this.run}` }, { expect: 201 })
      const token = await this.login({ username, password, deviceId: `wmdb-harness-reviewer-${this.run}` })
      this._reviewer = { id: user.id, name: user.name, token }
    }
    return this._reviewer
  }

  /** PUT /api/v1/tasks/{id}/team as the run's reviewer: the task goes to `userIds`. */
  async reassign(taskId, userIds, reason = '同步测试：原检查被驳回，另派检查组', { expect = 200 } = {}) {
    const { token } = await this.reviewer()
    return this.api('PUT', `/api/v1/tasks/${taskId}/team`, { team: userIds, reason }, { token, expect })
  }

  /**
   * 食品安全抽检 set-up of this run (once): the food category tree (CSV import, the same rows
   * every run), a lab with a lab account, the sampled premises, and the working-day calendar
   * of this year and the next (a sample's deadlines are counted on it). Returns
   * { labId, lab: { id, token }, establishmentId, categoryCode, categories: [l1, l2, l3] }.
   */
  async sampling() {
    if (this._sampling) return this._sampling
    const csv = '分类编码,级别,上级编码,分类名称,微生物\n01,1,,粮食加工品,\n0101,2,01,小麦粉,否\n010101,3,0101,通用小麦粉,否\n'
    const res = await fetch(`${this.baseUrl}/api/v1/food-categories/import`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.adminToken}`, 'content-type': 'application/octet-stream' },
      body: Buffer.from(csv, 'utf8'),
    })
    if (!res.ok) throw new ApiError('POST /api/v1/food-categories/import', { status: res.status, body: await res.text() })
    const lab = await this.api('POST', '/api/v1/labs', { name: `同步测试检验中心-${this.run}`, code: `WM${this.run}`.toUpperCase() }, { expect: 201 })
    const username = `wm-${this.run}-lab`
    const password = `pw-${crypto.randomUUID()}`
    const user = await this.api('POST', '/api/v1/users', { username, password, role: 'lab', name: `检验员-${this.run}` }, { expect: 201 })
    await this.api('PUT', `/api/v1/users/${user.id}/lab`, { lab_id: lab.id })
    const token = await this.login({ username, password, deviceId: `wmdb-harness-lab-${this.run}` })
    const years = (await this.api('GET', '/api/v1/calendar/years')).years.map((y) => y.year)
    const thisYear = new Date().getUTCFullYear()
    for (const y of [thisYear, thisYear + 1]) {
      if (!years.includes(y)) await this.api('PUT', `/api/v1/calendar/years/${y}`, { off: {}, workdays: [] })
    }
    const establishment = await this.createEstablishment()
    this._sampling = {
      labId: lab.id,
      lab: { id: user.id, token },
      establishmentId: establishment.id,
      establishment,
      categoryCode: '010101',
      categories: ['粮食加工品', '小麦粉', '通用小麦粉'],
    }
    return this._sampling
  }

  /** GET /api/v1/samples/{id} as admin (404 → null). */
  async sample(id) {
    const res = await httpJson('GET', `${this.baseUrl}/api/v1/samples/${id}`, { token: this.adminToken })
    if (res.status === 404) return null
    if (!res.ok) throw new ApiError(`GET /api/v1/samples/${id}`, res)
    return res.body
  }

  /** The run's lab's samples (GET /api/v1/lab/samples, all pages): what the server holds. */
  async labSamples() {
    const { lab } = await this.sampling()
    const items = []
    for (let page = 1; ; page++) {
      const body = await this.api('GET', `/api/v1/lab/samples?page=${page}&page_size=100`, undefined, { token: lab.token })
      items.push(...body.items)
      if (!body.items.length || items.length >= body.total_count) return items
    }
  }

  /** A custody event recorded online by the run's lab (POST /api/v1/samples/{id}/custody). */
  async labCustody(sampleId, body) {
    const { lab } = await this.sampling()
    return this.api('POST', `/api/v1/samples/${sampleId}/custody`, { id: crypto.randomUUID(), ...body }, { token: lab.token, expect: 201 })
  }

  /** POST /api/v1/inspections/{id}/review as the run's reviewer; returns the review view. */
  async review(inspectionId, body, { expect = 200 } = {}) {
    const { token } = await this.reviewer()
    return this.api('POST', `/api/v1/inspections/${inspectionId}/review`, body, { token, expect })
  }
}

module.exports = { RealServer, ApiError, TEMPLATE_ID, TEMPLATE_VERSION, KEY_ITEMS, GENERAL_ITEMS }
