// The printable result record (监督检查结果记录表) in a real browser: a REAL foodcheck server
// (started by tests/clients/run-record-tests.sh), an inspection submitted through the real sync
// push, rendered by Debian's headless Chromium through playwright-core. Checks the text as the
// browser lays it out, that nothing internal is on it and injected markup stays text, prints it
// to an A4 PDF and takes a screenshot (saved under target/record/). The reviewer approves through
// the real decision endpoint (POST /api/v1/inspections/{id}/review) with an override, a comment
// and an internal note, none of whose texts may reach the page. The same team then samples the
// shop (抽样单, custody, a 不合格 lab result) and the section publishes the period's 抽检信息公告:
// its index and page are checked like the list pages (text, no personal data, no other origin).

'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { chromium } = require('playwright-core')

const BASE = (process.env.FOODCHECK_URL || '').replace(/\/+$/, '')
const ADMIN = process.env.FOODCHECK_ADMIN_USERNAME
const ADMIN_PASSWORD = process.env.FOODCHECK_ADMIN_PASSWORD
const PUBLIC_BASE = process.env.FOODCHECK_PUBLIC_BASE_URL
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'
const OUT = process.env.FOODCHECK_RECORD_OUT || path.resolve(__dirname, '../../../target/record')
const TEMPLATE_ID = '00000000-0000-4000-8000-000000002016'
const KEY = ['3.1', '3.2', '4.1', '4.2', '6.1', '8.4', '9.3']
const GENERAL = ['1.1', '2.1', '2.2', '2.3', '4.3', '4.4', '5.1']
const run = crypto.randomUUID().slice(0, 8)

async function api(method, p, { token, body, expect } = {}) {
  const headers = { accept: 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${BASE}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  const json = text ? JSON.parse(text) : null
  const ok = expect !== undefined ? res.status === expect : res.ok
  if (!ok) throw new Error(`${method} ${p} → ${res.status} ${text}`)
  return json
}

async function login(username, password, device) {
  return (await api('POST', '/api/v1/auth/login', { body: { username, password, device_id: device } })).access_token
}

/**
 * The approval opens a 整改 order whose deadline is counted in working days from the server's
 * today, and the server refuses deadlines in years its calendar lacks (bundled: 2024–2026). So the
 * admin adds this year and the next when missing (weekends and 元旦 off): the record then renders
 * whatever today is. The harness's server is fresh, so nothing else sees these years.
 */
async function ensureCalendarYears(admin) {
  const have = new Set((await api('GET', '/api/v1/calendar/years', { token: admin })).years.map((y) => y.year))
  const year = new Date().getUTCFullYear()
  for (const y of [year, year + 1]) {
    if (have.has(y)) continue
    await api('PUT', `/api/v1/calendar/years/${y}`, {
      token: admin,
      body: { off: { 元旦: [`${y}-01-01`] }, source: 'record test: weekends and 元旦 only' },
    })
  }
}

test('the printable result record renders in headless Chromium', async (t) => {
  assert.ok(BASE, 'FOODCHECK_URL is set by run-record-tests.sh')
  assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`)
  const admin = await login(ADMIN, ADMIN_PASSWORD, `record-admin-${run}`)

  // People: a reviewer and a team of two inspectors.
  const people = {}
  for (const [label, role, name] of [['rev', 'reviewer', '审核员'], ['a', 'inspector', '张三'], ['b', 'inspector', '李四']]) {
    const username = `rec-${run}-${label}`
    const password = `pw-${crypto.randomUUID()}`
    const body = { username, password, role, name: `${name}${run}` }
    if (role === 'inspector') body.badge_no = `REC${run}${label.toUpperCase()}`
    const user = await api('POST', '/api/v1/users', { token: admin, body, expect: 201 })
    people[label] = { ...body, id: user.id }
  }

  // The establishment, with markup in its name that must stay text.
  const town = `记录表测试镇-${run}`
  const est = await api('POST', '/api/v1/establishments', {
    token: admin,
    expect: 201,
    body: {
      sign_name: `老王面馆<b>${run}</b>`, licensed_name: `某某区老王面馆（个体工商户）${run}`,
      license_no: `JY2${String(crypto.randomInt(1e12)).padStart(13, '0')}`, category: 'small_restaurant',
      address: '幸福路 8 号', town, risk_grade: 'C', location: { lng: 117.29, lat: 39.71, crs: 'gcj02' },
    },
  })
  const plan = await api('POST', '/api/v1/plans', {
    token: admin,
    expect: 201,
    body: {
      name: `record ${run}`, round_title: `2024年第3期 ${run}`, theme: '餐饮具清洗消毒', period_start: '2024-03-01',
      period_end: '2024-03-31', due_date: '2099-03-31', template_id: TEMPLATE_ID, template_version: 1,
      filter: { towns: [town] }, quotas: { explicit: { C: 1 } }, inspector_ids: [people.a.id, people.b.id], team_size: 2,
    },
  })
  await api('POST', `/api/v1/plans/${plan.id}/draw`, { token: admin, body: { seed: `record-${run}` }, expect: 201 })
  const task = (await api('GET', `/api/v1/tasks?plan_id=${plan.id}`, { token: admin })).items[0]
  assert.equal(task.establishment.id, est.id)

  // The team submits through the real sync push: two key items failed (不符合).
  const inspector = await login(people.a.username, people.a.password, `record-phone-${run}`)
  const pulled = await api('GET', '/api/v1/sync?last_pulled_at=null&schema_version=2&migration=null', { token: inspector })
  const iid = crypto.randomUUID()
  const team = JSON.stringify(task.team.map((m) => ({ user_id: m.user_id, name: m.name, badge_no: m.badge_no })))
  const failed = [KEY[0], KEY[1]]
  const answers = [...KEY, ...GENERAL].map((c) => ({
    id: crypto.randomUUID(), inspection_id: iid, item_code: c, status: failed.includes(c) ? 'fail' : 'pass', note: null,
  }))
  const pushed = await api('POST', `/api/v1/sync?last_pulled_at=${pulled.timestamp}`, {
    token: inspector,
    body: {
      changes: {
        inspections: {
          created: [{
            id: iid, task_id: task.id, establishment_id: est.id, started_at: 1710000000000, finished_at: 1710000600000,
            lng: 117.2903, lat: 39.7102, gps_accuracy_m: 10, crs: 'gcj02', team, representative_name: '王店长',
            representative_signed: false, representative_refused: true,
            business_opinion: `<script>document.title='pwned'</script>已知悉`, other_findings: null,
            declared_result: 'non_compliant', submitted: true,
          }],
        },
        answers: { created: answers },
      },
    },
  })
  assert.deepEqual(pushed, {})

  const reviewer = await login(people.rev.username, people.rev.password, `record-desk-${run}`)
  const recordPath = `/api/v1/inspections/${iid}/record`
  // Not approved: 409 not_approved.
  const early = await fetch(`${BASE}${recordPath}`, { headers: { authorization: `Bearer ${reviewer}` } })
  assert.equal(early.status, 409)
  assert.equal((await early.json()).error.code, 'not_approved')
  // The reviewer approves over HTTP, overriding 不符合 to 基本符合 with a reason, with a comment and
  // an internal note: the decision is recorded with all three, the page shows none of them.
  await ensureCalendarYears(admin)
  const decided = await api('POST', `/api/v1/inspections/${iid}/review`, {
    token: reviewer,
    body: {
      decision: 'approved', comment: `APPROVE-COMMENT-${run}`, internal_note: `INTERNAL-NOTE-${run}`,
      override_result: 'basically_compliant', override_reason: `OVERRIDE-REASON-${run}`,
    },
  })
  assert.equal(decided.review_state, 'approved')
  assert.equal(decided.computed_result, 'non_compliant')
  assert.equal(decided.effective_result, 'basically_compliant')
  assert.equal(decided.review.internal_note, `INTERNAL-NOTE-${run}`)
  assert.ok(decided.followup_id, '基本符合 opens a 整改 order')
  const followup = await api('GET', `/api/v1/followups/${decided.followup_id}`, { token: reviewer })

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
  t.after(() => browser.close())
  const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${reviewer}` }, locale: 'zh-CN' })
  const page = await context.newPage()
  const scripts = []
  page.on('dialog', (d) => { scripts.push(d.message()); d.dismiss() })
  const res = await page.goto(`${BASE}${recordPath}`)
  assert.equal(res.status(), 200)
  assert.match(res.headers()['content-type'], /^text\/html/)

  const text = await page.innerText('body')
  for (const want of [
    '监督检查结果记录表', `老王面馆<b>${run}</b>`, `某某区老王面馆（个体工商户）${run}`, est.license_no || '', '幸福路 8 号',
    '2024-03-10', `2024年第3期 ${run}`, '*3.1', '*3.2', '☑基本符合', '☐不符合', '复核认定：基本符合（系统判定：不符合）',
    '书面限期整改', followup.deadline,
    `${people.a.name}（${people.a.badge_no}）`, `${people.b.name}（${people.b.badge_no}）`,
    "<script>document.title='pwned'</script>已知悉", '拒绝签字', '扫码查看公示信息',
    `${PUBLIC_BASE}/public/establishments/${est.id}`,
  ]) {
    assert.ok(text.includes(want), `the rendered record lacks ${JSON.stringify(want)}:\n${text}`)
  }
  for (const secret of ['INTERNAL-NOTE', 'APPROVE-COMMENT', 'OVERRIDE-REASON']) {
    assert.ok(!text.includes(secret) && !(await page.content()).includes(secret), `${secret} is on the record`)
  }
  // Injected markup stayed text: no <b> element from the name, no script ran.
  assert.equal(await page.locator('#sign-name b').count(), 0)
  assert.equal(await page.title(), `监督检查结果记录表 · 老王面馆<b>${run}</b>`)
  assert.deepEqual(scripts, [])
  // Failed items first, marked; the QR code is an inline SVG of a real size.
  const rows = await page.locator('table.items tbody tr').evaluateAll((trs) => trs.map((r) => [r.dataset.item, r.className]))
  assert.deepEqual(rows.slice(0, 2), [['3.1', 'failed'], ['3.2', 'failed']])
  assert.equal(rows.length, 14)
  const qr = await page.locator('.qr svg').boundingBox()
  assert.ok(qr && qr.width > 80 && Math.abs(qr.width - qr.height) < 1, `QR box ${JSON.stringify(qr)}`)

  fs.mkdirSync(OUT, { recursive: true })
  await page.screenshot({ path: path.join(OUT, 'record.png'), fullPage: true })
  const pdfPath = path.join(OUT, 'record.pdf')
  await page.pdf({ path: pdfPath, preferCSSPageSize: true, printBackground: true })
  const pdf = fs.readFileSync(pdfPath).toString('latin1')
  // A4 is 595 × 842 pt.
  const box = pdf.match(/\/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]/)
  assert.ok(box, 'the PDF has a MediaBox')
  assert.ok(Math.abs(Number(box[1]) - 595.28) < 1.5 && Math.abs(Number(box[2]) - 841.89) < 1.5, `page size ${box[1]} × ${box[2]}`)
  assert.ok(fs.statSync(path.join(OUT, 'record.png')).size > 10000)
  console.log(`record: screenshot and PDF in ${OUT}`)

  // 一公开: the section publishes the round's results and a black-list issue with this shop;
  // the public pages (no login) show them, and the record's QR code opens the shop's page.
  await api('POST', `/api/v1/plans/${plan.id}/publish-results`, { token: reviewer, body: {} })
  const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10)
  const issue = await api('POST', '/api/v1/lists', {
    token: reviewer,
    expect: 201,
    body: {
      issue_no: `2026年第12期-${run}`, title: `宝坻区餐饮服务红黑榜 ${run}`, theme: '餐饮具清洗消毒', district: '宝坻区',
      period_start: day(-30), period_end: day(1),
    },
  })
  const candidates = await api('GET', `/api/v1/lists/${issue.id}/candidates`, { token: reviewer })
  const mine = candidates.items.find((c) => c.establishment_id === est.id)
  assert.ok(mine, `the shop is not a candidate: ${JSON.stringify(candidates)}`)
  assert.equal(mine.list_type, 'black', 'two key items failed')
  await api('POST', `/api/v1/lists/${issue.id}/entries`, {
    token: reviewer,
    expect: 201,
    body: {
      establishment_id: est.id, list_type: 'black', inspection_id: iid,
      reason: `${mine.reason}<i>${run}</i>`, measures: mine.measures || '下达责令改正通知书',
    },
  })
  await api('POST', `/api/v1/lists/${issue.id}/publish`, { token: reviewer, body: {} })

  // 抽检信息公告: a lab, a 抽样单 by the same team at the same shop, custody to the lab, a 不合格
  // result, and the section's announcement of the period, published; its pages are public.
  const lab = await api('POST', '/api/v1/labs', { token: admin, expect: 201, body: { name: `检验中心${run}`, code: `L${run}` } })
  const labUser = { username: `rec-${run}-lab`, password: `pw-${crypto.randomUUID()}`, role: 'lab', name: `化验员${run}` }
  const labAccount = await api('POST', '/api/v1/users', { token: admin, body: labUser, expect: 201 })
  await api('PUT', `/api/v1/users/${labAccount.id}/lab`, { token: admin, body: { lab_id: lab.id } })
  const tree = await fetch(`${BASE}/api/v1/food-categories/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/octet-stream' },
    body: 'code,level,parent_code,name\n01,1,,粮食加工品\n0101,2,01,小麦粉\n010101,3,0101,通用小麦粉\n',
  })
  assert.equal(tree.status, 200, await tree.text())
  const sampleId = crypto.randomUUID()
  const contactPhone = `139${String(crypto.randomInt(1e8)).padStart(8, '0')}`
  const sampledAt = Date.now() - 3600000
  await api('POST', '/api/v1/samples', {
    token: inspector,
    expect: 201,
    body: {
      id: sampleId, establishment_id: est.id, lab_id: lab.id, category_code: '010101',
      form: {
        task_source: '记录表测试', purpose: 'supervision', stage: 'catering', food_category_1: '粮食加工品',
        food_category_2: '小麦粉', food_category_3: '通用小麦粉', food_category_4: '/',
        premises_name: `老王面馆<b>${run}</b>`, premises_address: '幸福路 8 号', premises_credit_code: '/',
        premises_licence_no: '/', premises_legal_representative: `法人CONTACT-${run}`, premises_contact: contactPhone,
        producer_name: `某某面粉厂<i>${run}</i>`, producer_address: '某某工业园', producer_sc_licence: '/',
        sample_name: `特一粉${run}`, sample_brand: '金丰', sample_specification: '5kg/袋', sample_production_date: '/',
        sample_batch: '20261101', sample_shelf_life: '12个月', sample_standard: 'GB/T 1355', sample_price: '/',
        sample_imported: false, sample_storage: '常温', sampling_method: 'non_aseptic', sampling_base: 10,
        sampling_base_unit: '袋', sample_quantity: 2, sample_quantity_unit: '袋', backup_quantity: 1,
        backup_quantity_unit: '袋', sampled_at: sampledAt, lng: 117.29, lat: 39.71, crs: 'wgs84',
        premises_opinion: 'no_objection', sampler_1: people.a.id, sampler_2: people.b.id,
      },
    },
  })
  const labToken = await login(labUser.username, labUser.password, `record-lab-${run}`)
  for (const [token, kind, at, extra] of [
    [inspector, 'sealed', sampledAt + 60000, {}],
    [inspector, 'dispatched', sampledAt + 120000, {}],
    [labToken, 'received', sampledAt + 180000, { sample_condition: '包装完好', seal_intact: true }],
  ]) {
    await api('POST', `/api/v1/samples/${sampleId}/custody`, {
      token, expect: 201, body: { id: crypto.randomUUID(), kind, occurred_at: at, place: '幸福路 8 号', ...extra },
    })
  }
  await api('PUT', `/api/v1/samples/${sampleId}/result`, {
    token: labToken,
    expect: 201,
    body: {
      report_no: `WT-${run}`, overall: 'unqualified',
      items: [
        { name: '铅(以Pb计)', value: '0.35', unit: 'mg/kg', limit: '≤0.2', standard: 'GB 2762-2022', method: 'GB 5009.12-2023', verdict: 'unqualified' },
        { name: '水分', value: '13.1', unit: 'g/100g', limit: '≤14.5', standard: 'GB 1355-2021', method: 'GB 5009.3-2016', verdict: 'qualified' },
      ],
    },
  })
  const announcement = await api('POST', '/api/v1/announcements', {
    token: reviewer,
    expect: 201,
    body: { announcement_no: `2026年第9期-${run}`, title: `食品安全监督抽检信息公告 ${run}`, period_start: day(-2), period_end: day(1) },
  })
  await api('POST', `/api/v1/announcements/${announcement.id}/publish`, { token: reviewer, body: {} })

  const origin = new URL(BASE).origin
  const publicContext = await browser.newContext({ locale: 'zh-CN' })
  const secrets = [
    people.a.name, people.b.name, people.a.badge_no, people.b.badge_no, people.a.username, people.rev.name,
    `APPROVE-COMMENT-${run}`, `INTERNAL-NOTE-${run}`, `OVERRIDE-REASON-${run}`,
    `CONTACT-${run}`, contactPhone, labUser.name, labUser.username, people.a.id, people.b.id, sampleId,
  ]
  const pages = [
    ['public-index', '/public/lists', [issue.issue_no, issue.title]],
    ['public-issue', `/public/lists/${issue.id}`, [
      issue.title, '黑榜', '红榜', '牌匾名称', '营业执照名称', '经营地址', '上榜理由', '处理措施', '整改后信息',
      `老王面馆<b>${run}</b>`, '幸福路 8 号', `<i>${run}</i>`, '检查结果仅反映检查当时被检查单位的食品安全状况',
    ]],
    ['public-establishment', `/public/establishments/${est.id}`, [
      `老王面馆<b>${run}</b>`, `某某区老王面馆（个体工商户）${run}`, '基本符合', issue.issue_no, '检查结果仅反映检查当时',
    ]],
    ['public-draw', `/public/plans/${plan.id}/draw`, [`record-${run}`, '回避名单承诺值', `老王面馆<b>${run}</b>`]],
    ['public-announcements', '/public/announcements', [announcement.title]],
    ['public-announcement', `/public/announcements/${announcement.id}`, [
      announcement.title, '不合格', `特一粉${run}`, `某某面粉厂<i>${run}</i>`, '铅(以Pb计)', '0.35', '≤0.2', 'GB 2762-2022', '20261101',
    ]],
  ]
  for (const [name, p, wants] of pages) {
    const page = await publicContext.newPage()
    const problems = []
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
    page.on('request', (r) => {
      const u = new URL(r.url())
      if (u.protocol !== 'data:' && u.origin !== origin) problems.push(`other origin: ${r.url()}`)
    })
    const res = await page.goto(`${BASE}${p}`)
    assert.equal(res.status(), 200, `${p}: ${res.status()}`)
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN')
    const text = await page.innerText('body')
    for (const want of wants) assert.ok(text.includes(want), `${p} lacks ${JSON.stringify(want)}:\n${text}`)
    const html = await page.content()
    for (const secret of secrets) assert.ok(!html.includes(secret), `${p} shows ${secret}`)
    // Injected markup stayed text.
    assert.equal(await page.locator('main b, main i').count(), 0, `${p}: markup from data was rendered`)
    await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true })
    assert.deepEqual(problems, [], `${p}: ${problems.join('; ')}`)
    await page.close()
  }
  // The record's QR code names the page just checked.
  const recordText = await context.newPage().then(async (pg) => {
    await pg.goto(`${BASE}${recordPath}`)
    return pg.innerText('body')
  })
  assert.ok(recordText.includes(`${PUBLIC_BASE}/public/establishments/${est.id}`))
  console.log(`public pages: screenshots in ${OUT}`)
})
