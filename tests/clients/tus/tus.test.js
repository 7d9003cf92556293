'use strict'
// Photo uploads with a real tus-js-client 4.x (Node 20) against a REAL foodcheck server's
// /api/v1/uploads (tus 1.0). Start one with ../run-tus-tests.sh, or point at a running one:
//
//   FOODCHECK_URL             base URL, e.g. http://127.0.0.1:8080 (without it these tests are skipped)
//   FOODCHECK_ADMIN_USERNAME  an admin account (default admin)
//   FOODCHECK_ADMIN_PASSWORD  its password (default admin-password-123)
//   FOODCHECK_TUS_PYTHON      a python with Pillow + piexif (default ./.venv/bin/python) for photo.py
//
// The photos are real JPEGs with EXIF GPS (Tianjin), DateTimeOriginal and Orientation, made
// fresh per test (photo.py), so every file has its own sha256. The photo records are synced
// first (POST /api/v1/sync), as the app does before it uploads the bytes.
//
// tus-js-client has no Upload-Checksum support, so the checksum scenario sends its PATCH with
// plain fetch; tuspy covers checksums end to end (test_tuspy.py).

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')

const { RealServer } = require('./real-server')
const {
  tus, SlowHttpStack, MB, digestB64, sha256Hex, makePhoto, runUpload, errorResponse, tusFetch, settledOffset, tmpDir, cleanUp,
} = require('./lib')

const BASE_URL = process.env.FOODCHECK_URL ? process.env.FOODCHECK_URL.replace(/\/+$/, '') : null
const SKIP = BASE_URL ? false : 'needs a real server: run ../run-tus-tests.sh, or set FOODCHECK_URL'
const ENDPOINT = BASE_URL && `${BASE_URL}/api/v1/uploads`

// After a completed upload the record is `uploaded`; a photo-processing job (work in progress on
// the server) may already have moved it on to `processed`.
const DONE = ['uploaded', 'processed']

let world // RealServer
// Facts worth reading in the run's output (TAP comments).
const note = (text) => console.log(text)

const auth = (label) => ({ Authorization: `Bearer ${world.inspectors[label].token}` })
const meta = (photo, sha256 = photo.sha256) => ({ photo_id: photo.id, sha256, filename: 'IMG_20240315_1030.jpg' })
const show = (requests) => requests.map((r) => `${r.method} ${r.url.replace(BASE_URL, '')} [Upload-Offset ${r.sent}] → ${r.status ?? 'no response'} ` +
  `(offset ${r.offset})${r.body ? ` ${r.body.slice(0, 200)}` : ''}`).join('\n  ')

async function assertUploaded(taskId, photoId) {
  const admin = (await world.photosOfTask(taskId)).find((p) => p.id === photoId)
  assert.ok(admin, `photo ${photoId} missing from GET /api/v1/inspections?task_id=`)
  assert.ok(DONE.includes(admin.processing_status), `admin view: processing_status ${admin.processing_status}`)
  const pulled = await world.pulledPhoto(photoId, 'b') // the team mate's device sees it on its next pull
  assert.ok(pulled, `photo ${photoId} missing from inspector b's pull`)
  assert.ok(DONE.includes(pulled.processing_status), `pull: processing_status ${pulled.processing_status}`)
}

async function assertAwaiting(taskId, photoId) {
  const p = (await world.photosOfTask(taskId)).find((x) => x.id === photoId)
  assert.equal(p.processing_status, 'awaiting_upload')
}

describe('foodcheck photo uploads with tus-js-client 4.x against the real server', { skip: SKIP }, () => {
  before(async () => {
    world = new RealServer(BASE_URL, {
      adminUsername: process.env.FOODCHECK_ADMIN_USERNAME,
      adminPassword: process.env.FOODCHECK_ADMIN_PASSWORD,
    })
    await world.setUp()
  })
  after(() => cleanUp())

  test('0. discovery: OPTIONS /api/v1/uploads answers tus 1.0 with creation, termination, checksum', async () => {
    const res = await fetch(ENDPOINT, { method: 'OPTIONS' })
    assert.equal(res.status, 204)
    assert.equal(res.headers.get('tus-version'), '1.0.0')
    const ext = res.headers.get('tus-extension').split(',')
    for (const e of ['creation', 'creation-with-upload', 'termination', 'checksum']) assert.ok(ext.includes(e), e)
    assert.match(res.headers.get('tus-checksum-algorithm'), /sha256/)
    assert.ok(Number(res.headers.get('tus-max-size')) >= 6 * MB)
  })

  test('1. a 4000×3000 JPEG (> 5 MB) in 1 MB chunks; aborted mid-upload; a NEW Upload resumes from the stored URL and sends only the rest', async () => {
    const photo = makePhoto({ width: 4000, height: 3000 })
    assert.ok(photo.byte_size > 5 * MB, `photo is only ${photo.byte_size} bytes`)
    assert.deepEqual(photo.bytes.subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]))
    const seeded = await world.seedInspectionWithPhotos([photo])
    const record = seeded.photos[0]
    await assertAwaiting(seeded.taskId, record.id)

    // The app keeps upload URLs across restarts: FileUrlStorage (a JSON file) + the default Node
    // fingerprint of a Buffer (md5 of its first 64 KiB, size, endpoint).
    const urlStorage = new tus.FileUrlStorage(path.join(tmpDir(), 'tus-urls.json'))
    const common = { endpoint: ENDPOINT, chunkSize: 1 * MB, headers: auth('a'), metadata: meta(record), urlStorage }

    // First attempt, over a slow uplink: abort once more than 2.5 MB went out, i.e. in the
    // middle of the third PATCH.
    const first = await runUpload(photo.bytes, {
      ...common, httpStack: new SlowHttpStack(), abortWhen: ({ bytesSent }) => bytesSent > 2.5 * MB,
    })
    assert.equal(first.outcome, 'aborted', `first attempt: ${first.outcome} ${first.error}\n  ${show(first.requests)}`)
    const url = first.upload.url
    assert.ok(url && url.startsWith(`${ENDPOINT}/`), `upload URL ${url}`)
    assert.equal(first.requests[0].method, 'POST')
    assert.equal(first.requests[0].status, 201)
    assert.ok(first.chunks.length >= 2, `chunks accepted before the abort: ${JSON.stringify(first.chunks)}`)
    const abortedAt = first.progress.at(-1)
    assert.ok(abortedAt > first.chunks.at(-1).bytesAccepted, `the abort did not land inside a PATCH: ${abortedAt} sent, ` +
      `${first.chunks.at(-1).bytesAccepted} accepted`)

    // The server keeps what arrived: HEAD reports an offset > 0 (at least the accepted chunks).
    const head = await settledOffset(url, world.inspectors.a.token)
    assert.equal(head.status, 200)
    const serverOffset = head.offset
    assert.ok(serverOffset >= first.chunks.at(-1).bytesAccepted, `HEAD offset ${serverOffset} < accepted ${first.chunks.at(-1).bytesAccepted}`)
    assert.ok(serverOffset > 0 && serverOffset < photo.byte_size)
    assert.equal(Number(head.headers.get('upload-length')), photo.byte_size)
    await assertAwaiting(seeded.taskId, record.id)

    // "The app restarts": a NEW Upload object finds the stored URL and resumes it.
    const second = await runUpload(photo.bytes, {
      ...common,
      async prepare(upload) {
        const previous = await upload.findPreviousUploads()
        const mine = previous.filter((p) => p.uploadUrl === url)
        assert.equal(mine.length, 1, `findPreviousUploads: ${JSON.stringify(previous)}`)
        upload.resumeFromPreviousUpload(mine[0])
      },
    })
    assert.equal(second.outcome, 'success', `resume: ${second.error}\n  ${show(second.requests)}`)
    assert.ok(!second.requests.some((r) => r.method === 'POST'), `the resume created a new upload:\n  ${show(second.requests)}`)
    assert.equal(second.requests[0].method, 'HEAD')
    const patches = second.requests.filter((r) => r.method === 'PATCH')
    assert.equal(Number(patches[0].sent), serverOffset, 'the first PATCH of the resume starts at the HEAD offset')
    const sent = second.chunks.reduce((n, c) => n + c.chunkSize, 0)
    assert.equal(sent, photo.byte_size - serverOffset, 'the resume sends only the rest')
    assert.equal(second.chunks[0].bytesAccepted, serverOffset + Math.min(MB, photo.byte_size - serverOffset))
    assert.equal(second.chunks.at(-1).bytesAccepted, photo.byte_size)
    assert.equal(patches.length, Math.ceil((photo.byte_size - serverOffset) / MB))
    assert.ok(patches.every((p) => p.status === 204), show(second.requests))

    note(`scenario 1: ${photo.byte_size} bytes; aborted inside a PATCH at ${abortedAt} bytes sent, ${first.chunks.at(-1).bytesAccepted} ` +
      `accepted; HEAD offset ${serverOffset}${serverOffset % MB ? ' (the server kept the part of the cut chunk that arrived)' : ''}; ` +
      `the resume sent ${sent} bytes in ${patches.length} PATCHes`)
    await assertUploaded(seeded.taskId, record.id)
    // The finished upload still answers HEAD with the full offset.
    const done = await tusFetch('HEAD', url, world.inspectors.a.token)
    assert.equal(done.offset, photo.byte_size)
  })

  test('2. the same bytes for a second photo record: complete at creation (Upload-Offset = length)', async () => {
    const photo = makePhoto({ width: 1600, height: 1200 })
    const seeded = await world.seedInspectionWithPhotos([photo, photo, photo])
    const [original, twin, triplet] = seeded.photos
    const base = { endpoint: ENDPOINT, chunkSize: 1 * MB, headers: auth('a') }
    const up = await runUpload(photo.bytes, { ...base, metadata: meta(original) })
    assert.equal(up.outcome, 'success', `${up.error}\n  ${show(up.requests)}`)

    // creation-with-upload: the POST answers Upload-Offset = length and tus-js-client is done.
    // The server answers that POST without reading its body (up to 1 MB), so the client may hit
    // EPIPE/ECONNRESET instead of reading the 201 (a server finding, see README); retries cover it.
    const withUpload = await runUpload(photo.bytes, { ...base, metadata: meta(twin), uploadDataDuringCreation: true, retryDelays: [0, 0, 0] })
    assert.equal(withUpload.outcome, 'success', `${withUpload.error}\n  ${show(withUpload.requests)}`)
    assert.ok(withUpload.requests.every((r) => r.method === 'POST'), show(withUpload.requests))
    assert.deepEqual([withUpload.requests.at(-1).status, Number(withUpload.requests.at(-1).offset)], [201, photo.byte_size])
    if (withUpload.requests.length > 1) {
      note(`creation-with-upload of already-stored content: ${withUpload.requests.length - 1} POST(s) lost their response:\n  ${show(withUpload.requests)}`)
    }
    await assertUploaded(seeded.taskId, twin.id)

    // Plain creation: tus-js-client ignores Upload-Offset on a POST without body and PATCHes from
    // 0; the server answers 409 offset_mismatch; only tus-js-client's retry-on-409 (HEAD →
    // offset = length → success) saves the upload. With retryDelays: null it would fail.
    const plain = await runUpload(photo.bytes, { ...base, metadata: meta(triplet), retryDelays: [0] })
    const trace = show(plain.requests)
    assert.equal(plain.outcome, 'success', `${plain.error}\n  ${trace}`)
    assert.equal(plain.requests[0].method, 'POST')
    assert.equal(Number(plain.requests[0].offset), photo.byte_size, trace)
    await assertUploaded(seeded.taskId, triplet.id)
    const wasted = plain.requests.filter((r) => r.method === 'PATCH' && r.status !== 204)
    if (wasted.length) {
      note(`plain creation of already-stored content costs a refused PATCH (client ignores Upload-Offset on creation):\n  ${trace}`)
    }
  })

  test('3. checksum mismatch (plain fetch PATCH, sha256 of the true chunk, corrupted body) → 460, offset unchanged; the upload then completes', async () => {
    const photo = makePhoto({ width: 2000, height: 1500 })
    const seeded = await world.seedInspectionWithPhotos([photo])
    const record = seeded.photos[0]
    const CHUNK = 256 * 1024
    // tus-js-client creates the upload and sends the first chunk, then stops.
    const first = await runUpload(photo.bytes, {
      endpoint: ENDPOINT, chunkSize: CHUNK, headers: auth('a'), metadata: meta(record),
      abortWhen: ({ chunks }) => chunks.length >= 1,
    })
    assert.equal(first.outcome, 'aborted', `${first.error}\n  ${show(first.requests)}`)
    const url = first.upload.url
    const token = world.inspectors.a.token
    assert.equal((await settledOffset(url, token)).offset, CHUNK)

    const good = photo.bytes.subarray(CHUNK, 2 * CHUNK)
    const bad = Buffer.from(good)
    bad[1000] ^= 0xff
    const patch = (body, checksum) => tusFetch('PATCH', url, token, {
      headers: { 'content-type': 'application/offset+octet-stream', 'upload-offset': String(CHUNK), 'upload-checksum': checksum },
      body,
    })
    for (const alg of ['sha256', 'sha1']) {
      const res = await patch(bad, `${alg} ${digestB64(alg, good)}`)
      assert.equal(res.status, 460, `${alg}: ${JSON.stringify(res.body)}`)
      assert.equal(res.body?.error?.code ?? res.body?.code, 'checksum_mismatch', JSON.stringify(res.body))
      const head = await tusFetch('HEAD', url, token)
      assert.equal(head.offset, CHUNK, `${alg}: the offset moved after a 460`)
    }
    // An unknown algorithm is refused as such, not silently accepted.
    const md5 = await patch(good, `md5 ${digestB64('md5', good)}`)
    assert.equal(md5.status, 400, JSON.stringify(md5.body))
    assert.equal((await tusFetch('HEAD', url, token)).offset, CHUNK)
    // The true chunk with its sha256 is accepted.
    const ok = await patch(good, `sha256 ${digestB64('sha256', good)}`)
    assert.equal(ok.status, 204, JSON.stringify(ok.body))
    assert.equal(ok.offset, 2 * CHUNK)

    // tus-js-client resumes from the URL and finishes; the whole file hashes right.
    const rest = await runUpload(photo.bytes, { uploadUrl: url, chunkSize: 1 * MB, headers: auth('a'), metadata: meta(record) })
    assert.equal(rest.outcome, 'success', `${rest.error}\n  ${show(rest.requests)}`)
    assert.equal(rest.chunks.reduce((n, c) => n + c.chunkSize, 0), photo.byte_size - 2 * CHUNK)
    await assertUploaded(seeded.taskId, record.id)
  })

  test('4. a declared sha256 that is not the record\'s → creation refused 409 sha256_mismatch, onError', async () => {
    const photo = makePhoto({ width: 1200, height: 900 })
    const other = makePhoto({ width: 1200, height: 900 })
    const seeded = await world.seedInspectionWithPhotos([photo])
    const record = seeded.photos[0]
    const res = await runUpload(photo.bytes, {
      endpoint: ENDPOINT, chunkSize: 1 * MB, headers: auth('a'), metadata: meta(record, other.sha256),
    })
    assert.equal(res.outcome, 'error', show(res.requests))
    const { status, body } = errorResponse(res.error)
    assert.equal(status, 409, String(res.error))
    assert.match(JSON.stringify(body), /sha256_mismatch/)
    assert.deepEqual(res.requests.map((r) => r.method), ['POST'], 'nothing was sent after the refusal')

    // A wrong size (Upload-Length ≠ the record's byte_size) is refused the same way.
    const sized = await runUpload(photo.bytes.subarray(0, photo.byte_size - 1), {
      endpoint: ENDPOINT, chunkSize: 1 * MB, headers: auth('a'), metadata: meta(record),
    })
    assert.equal(sized.outcome, 'error')
    assert.equal(errorResponse(sized.error).status, 409)
    assert.match(JSON.stringify(errorResponse(sized.error).body), /size_mismatch/)

    // tus-js-client treats 409 as retryable: with retries configured, each refusal is re-POSTed.
    const retried = await runUpload(photo.bytes, {
      endpoint: ENDPOINT, chunkSize: 1 * MB, headers: auth('a'), metadata: meta(record, other.sha256), retryDelays: [0, 0],
    })
    assert.equal(retried.outcome, 'error')
    assert.equal(retried.requests.filter((r) => r.method === 'POST').length, 3,
      `a permanent refusal (409 sha256_mismatch) is retried by tus-js-client:\n  ${show(retried.requests)}`)
    await assertAwaiting(seeded.taskId, record.id)
  })

  test('5. someone else\'s photo record: an inspector outside the team gets 404, onError; nor can they touch the team\'s upload', async () => {
    const photo = makePhoto({ width: 1200, height: 900 })
    const seeded = await world.seedInspectionWithPhotos([photo])
    const record = seeded.photos[0]
    const res = await runUpload(photo.bytes, {
      endpoint: ENDPOINT, chunkSize: 1 * MB, headers: auth('outsider'), metadata: meta(record), retryDelays: [0, 0],
    })
    assert.equal(res.outcome, 'error', show(res.requests))
    assert.equal(errorResponse(res.error).status, 404)
    assert.deepEqual(res.requests.map((r) => r.method), ['POST'], '404 is not retried')

    // Inspector a starts the upload; the outsider can neither see nor extend nor delete it.
    const a = await runUpload(photo.bytes, {
      endpoint: ENDPOINT, chunkSize: 64 * 1024, headers: auth('a'), metadata: meta(record),
      abortWhen: ({ chunks }) => chunks.length >= 1,
    })
    const url = a.upload.url
    const outsider = world.inspectors.outsider.token
    assert.equal((await tusFetch('HEAD', url, outsider)).status, 404)
    const patch = await tusFetch('PATCH', url, outsider, {
      headers: { 'content-type': 'application/offset+octet-stream', 'upload-offset': String(64 * 1024) },
      body: photo.bytes.subarray(64 * 1024, 128 * 1024),
    })
    assert.equal(patch.status, 404)
    assert.equal((await tusFetch('DELETE', url, outsider)).status, 404)
    // Resuming the team's URL as the outsider: HEAD 404, then tus-js-client falls back to a new
    // upload (POST), which is 404 too.
    const hijack = await runUpload(photo.bytes, {
      endpoint: ENDPOINT, uploadUrl: url, chunkSize: 1 * MB, headers: auth('outsider'), metadata: meta(record),
    })
    assert.equal(hijack.outcome, 'error')
    assert.deepEqual(hijack.requests.map((r) => `${r.method} ${r.status}`), ['HEAD 404', 'POST 404'])
    assert.equal((await tusFetch('HEAD', url, world.inspectors.a.token)).offset, 64 * 1024, 'the team\'s upload is untouched')
    // Inspector b (the team mate) may upload the record, but not continue a's upload.
    assert.equal((await tusFetch('HEAD', url, world.inspectors.b.token)).status, 404)
    await assertAwaiting(seeded.taskId, record.id)
  })

  test('6. bytes that do not hash to the declared sha256 → the last PATCH is refused 409, the upload is removed; the right bytes then go through', async () => {
    const photo = makePhoto({ width: 1600, height: 1200 })
    const seeded = await world.seedInspectionWithPhotos([photo])
    const record = seeded.photos[0]
    const tampered = Buffer.from(photo.bytes)
    tampered[tampered.length - 100] ^= 0x01 // same size, one bit off near the end
    assert.notEqual(sha256Hex(tampered), photo.sha256)
    const res = await runUpload(tampered, { endpoint: ENDPOINT, chunkSize: 512 * 1024, headers: auth('a'), metadata: meta(record) })
    assert.equal(res.outcome, 'error', show(res.requests))
    const { status, body } = errorResponse(res.error)
    assert.equal(status, 409)
    assert.match(JSON.stringify(body), /sha256_mismatch/)
    assert.equal((await tusFetch('HEAD', res.upload.url, world.inspectors.a.token)).status, 404, 'the refused upload is gone')
    await assertAwaiting(seeded.taskId, record.id)

    const good = await runUpload(photo.bytes, { endpoint: ENDPOINT, chunkSize: 512 * 1024, headers: auth('a'), metadata: meta(record) })
    assert.equal(good.outcome, 'success', `${good.error}\n  ${show(good.requests)}`)
    await assertUploaded(seeded.taskId, record.id)
  })

  test('7. not an image: a HEIC (3 MB, 1 MB chunks) is refused 415 at its FIRST chunk; the record says failed', async () => {
    const heic = Buffer.alloc(3 * MB)
    Buffer.from('\0\0\0\x18ftypheic\0\0\0\0mif1heic', 'latin1').copy(heic)
    for (let i = 24; i < heic.length; i++) heic[i] = (i * 31) & 0xff
    const text = Buffer.from('检查记录：后厨地面有积水。'.repeat(2000))
    const seeded = await world.seedInspectionWithPhotos([heic, text])
    const [record, textRecord] = seeded.photos
    const res = await runUpload(heic, { endpoint: ENDPOINT, chunkSize: 1 * MB, headers: auth('a'), metadata: meta(record) })
    assert.equal(res.outcome, 'error', show(res.requests))
    const { status, body } = errorResponse(res.error)
    assert.equal(status, 415)
    assert.match(JSON.stringify(body), /HEIC/)
    assert.equal(res.requests.filter((r) => r.method === 'PATCH').length, 1, `one chunk only:\n  ${show(res.requests)}`)
    assert.equal((await tusFetch('HEAD', res.upload.url, world.inspectors.a.token)).status, 404)
    const p = (await world.photosOfTask(seeded.taskId)).find((x) => x.id === record.id)
    assert.equal(p.processing_status, 'failed', 'the refusal reaches the photo record')
    // Plain text, declared right: refused the same way.
    const t = await runUpload(text, { endpoint: ENDPOINT, chunkSize: 1 * MB, headers: auth('a'), metadata: meta(textRecord) })
    assert.equal(t.outcome, 'error', show(t.requests))
    assert.equal(errorResponse(t.error).status, 415)
  })

  test('8. termination: abort(true) sends DELETE; the upload is gone, and a new one can start over', async () => {
    const photo = makePhoto({ width: 2000, height: 1500 })
    const seeded = await world.seedInspectionWithPhotos([photo])
    const record = seeded.photos[0]
    let terminated = null
    const res = await runUpload(photo.bytes, {
      endpoint: ENDPOINT, chunkSize: 256 * 1024, headers: auth('a'), metadata: meta(record),
      abortWhen: ({ chunks }) => chunks.length >= 1, terminateOnAbort: true,
    })
    assert.equal(res.outcome, 'aborted', String(res.error))
    const url = res.upload.url
    assert.deepEqual(res.requests.map((r) => `${r.method} ${r.status}`), ['POST 201', 'PATCH 204', 'DELETE 204'])
    assert.equal((await tusFetch('HEAD', url, world.inspectors.a.token)).status, 404)
    // tus.Upload.terminate on the gone upload: 404.
    terminated = await tus.Upload.terminate(url, { headers: auth('a'), retryDelays: null }).then(() => 'ok', (e) => e)
    assert.equal(errorResponse(terminated).status, 404, String(terminated))
    const again = await runUpload(photo.bytes, { endpoint: ENDPOINT, chunkSize: 1 * MB, headers: auth('a'), metadata: meta(record) })
    assert.equal(again.outcome, 'success', `${again.error}\n  ${show(again.requests)}`)
    assert.notEqual(again.upload.url, url)
    await assertUploaded(seeded.taskId, record.id)
  })
})
