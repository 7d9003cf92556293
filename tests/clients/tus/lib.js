'use strict'
// Helpers for the tus-js-client scenarios: real photos (made by photo.py), a promise around one
// tus.Upload run that records every request, and plain tus requests with fetch.

const { execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Readable } = require('node:stream')
const tus = require('tus-js-client')

const HERE = __dirname
const PYTHON = process.env.FOODCHECK_TUS_PYTHON || path.join(HERE, '.venv', 'bin', 'python')
const MB = 1024 * 1024

const b64 = (s) => Buffer.from(s).toString('base64')
const digestB64 = (alg, buf) => crypto.createHash(alg).update(buf).digest('base64')
const sha256Hex = (buf) => crypto.createHash('sha256').update(buf).digest('hex')

let workDir = null
function tmpDir() {
  if (!workDir) workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'foodcheck-tus-js-'))
  return workDir
}
function cleanUp() {
  if (workDir && !process.env.FOODCHECK_KEEP) fs.rmSync(workDir, { recursive: true, force: true })
}

/**
 * A real JPEG with EXIF GPS (Tianjin), DateTimeOriginal and Orientation, made by photo.py
 * (Pillow + piexif). Fresh noise every call, so every photo has its own sha256.
 * Returns { path, bytes, sha256, byte_size, width, height, lat, lng, taken_at }.
 */
function makePhoto({ width = 4000, height = 3000, quality = 92 } = {}) {
  const out = path.join(tmpDir(), `IMG_${Date.now()}_${crypto.randomInt(1e6)}.jpg`)
  let facts
  try {
    facts = JSON.parse(execFileSync(PYTHON, [path.join(HERE, 'photo.py'), out,
      '--width', String(width), '--height', String(height), '--quality', String(quality)], { encoding: 'utf8' }))
  } catch (err) {
    throw new Error(`photo.py failed (${PYTHON}; run ../run-tus-tests.sh, or set FOODCHECK_TUS_PYTHON ` +
      `to a python with Pillow and piexif): ${err.message}`)
  }
  const bytes = fs.readFileSync(out)
  if (sha256Hex(bytes) !== facts.sha256) throw new Error('photo.py reported a wrong sha256')
  return { ...facts, bytes }
}

/**
 * Runs one tus.Upload to its end (success, error, or our abort) and records what happened.
 * `opts.abortWhen({ bytesSent, bytesTotal, chunks })` → true aborts the upload (once); with
 *   `opts.terminateOnAbort` the abort also DELETEs it (tus termination).
 * `opts.prepare(upload)` runs before start() (e.g. resumeFromPreviousUpload).
 * Resolves to { outcome: 'success'|'error'|'aborted', error, upload, requests, chunks, progress }.
 *   requests: [{ method, url, status, offset, body, sent }] (sent: Upload-Offset the client sent)
 *   chunks:   [{ chunkSize, bytesAccepted, bytesTotal }] from onChunkComplete
 */
function runUpload(file, opts = {}) {
  const { abortWhen, prepare, terminateOnAbort = false, ...options } = opts
  return new Promise((resolve) => {
    const requests = []
    const chunks = []
    const progress = []
    let upload
    let settled = false
    const done = (outcome, error = null) => {
      if (settled) return
      settled = true
      resolve({ outcome, error, upload, requests, chunks, progress })
    }
    upload = new tus.Upload(file, {
      retryDelays: null,
      ...options,
      onBeforeRequest(req) {
        requests.push({ method: req.getMethod(), url: req.getURL(), sent: req.getHeader('Upload-Offset') ?? null })
        if (options.onBeforeRequest) return options.onBeforeRequest(req)
      },
      onAfterResponse(req, res) {
        const r = [...requests].reverse().find((x) => x.url === req.getURL() && x.method === req.getMethod() && x.status === undefined)
        if (r) {
          r.status = res.getStatus()
          r.offset = res.getHeader('Upload-Offset') ?? null
          r.body = res.getBody() || ''
        }
        if (options.onAfterResponse) return options.onAfterResponse(req, res)
      },
      onProgress(bytesSent, bytesTotal) {
        progress.push(bytesSent)
        if (abortWhen && !settled && abortWhen({ bytesSent, bytesTotal, chunks })) {
          upload.abort(terminateOnAbort).then(() => done('aborted'), (e) => done('aborted', e))
        }
      },
      onChunkComplete(chunkSize, bytesAccepted, bytesTotal) {
        chunks.push({ chunkSize, bytesAccepted, bytesTotal })
        if (abortWhen && !settled && abortWhen({ bytesSent: bytesAccepted, bytesTotal, chunks })) {
          upload.abort(terminateOnAbort).then(() => done('aborted'), (e) => done('aborted', e))
        }
      },
      onSuccess() {
        done('success')
      },
      onError(err) {
        done('error', err)
      },
    })
    Promise.resolve(prepare ? prepare(upload) : null).then(() => upload.start(), (e) => done('error', e))
  })
}

/**
 * tus-js-client's own Node HTTP stack, with request bodies trickled out in `piece`-byte pieces
 * every `delayMs` (a slow mobile uplink), so that an abort lands in the middle of a PATCH
 * instead of between two fast localhost PATCHes.
 */
class SlowHttpStack {
  constructor({ piece = 64 * 1024, delayMs = 10 } = {}) {
    this.inner = new tus.DefaultHttpStack()
    this.piece = piece
    this.delayMs = delayMs
  }

  createRequest(method, url) {
    const req = this.inner.createRequest(method, url)
    const send = req.send.bind(req)
    const { piece, delayMs } = this
    req.send = (body) => {
      if (!(body instanceof Uint8Array)) return send(body)
      async function* trickle() {
        for (let i = 0; i < body.length; i += piece) {
          if (i) await new Promise((r) => setTimeout(r, delayMs))
          yield Buffer.from(body.subarray(i, i + piece))
        }
      }
      return send(Readable.from(trickle(), { objectMode: false }))
    }
    return req
  }

  getName() {
    return 'SlowHttpStack'
  }
}

/** Status and parsed JSON body of a tus-js-client DetailedError. */
function errorResponse(err) {
  const res = err && err.originalResponse
  if (!res) return { status: null, body: null }
  let body = null
  try {
    body = JSON.parse(res.getBody())
  } catch (_) {
    body = res.getBody()
  }
  return { status: res.getStatus(), body }
}

/** One plain tus request with fetch (Tus-Resumable and the bearer token set). */
async function tusFetch(method, url, token, { headers = {}, body } = {}) {
  const res = await fetch(url, {
    method,
    headers: { 'tus-resumable': '1.0.0', authorization: `Bearer ${token}`, ...headers },
    body,
  })
  const text = method === 'HEAD' ? '' : await res.text()
  let json = null
  try {
    json = text ? JSON.parse(text) : null
  } catch (_) {
    json = { _nonJson: text }
  }
  const offset = res.headers.get('upload-offset')
  return { status: res.status, headers: res.headers, offset: offset === null ? null : Number(offset), body: json }
}

/**
 * HEAD until the offset stops moving (an aborted PATCH may still be finishing on the server).
 */
async function settledOffset(url, token, { interval = 150, tries = 40 } = {}) {
  let last = await tusFetch('HEAD', url, token)
  for (let i = 0; i < tries; i++) {
    await new Promise((r) => setTimeout(r, interval))
    const next = await tusFetch('HEAD', url, token)
    if (next.status === last.status && next.offset === last.offset) return next
    last = next
  }
  return last
}

module.exports = { tus, SlowHttpStack, MB, b64, digestB64, sha256Hex, makePhoto, runUpload, errorResponse, tusFetch, settledOffset, tmpDir, cleanUp }
