'use strict'
// A crashing server during the last chunk, with a real tus-js-client 4.x: the server is killed
// with SIGKILL while (or right after) the final PATCH of an upload is in flight, restarted, and
// the client resumes from its upload URL (HEAD, then whatever is missing). However the kill
// falls, the photo must end up attached (`uploaded`, or `processed` once the job ran); a HEAD
// reporting Upload-Offset = Upload-Length while the record stays `awaiting_upload` is the bug
// this guards against (clients stop sending once HEAD says "all in").
//
// This test starts and kills its OWN server (it must not kill the one the other suites use):
//
//   FOODCHECK_BIN        the server binary (run-tus-tests.sh exports it; without it: skipped)
//   FOODCHECK_DATABASE_URL  when set (PostgreSQL mode), the crash server uses that database too;
//                        otherwise it has its own SQLite database in a fresh data dir
//   FOODCHECK_TUS_PYTHON as for tus.test.js (photo.py)

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const { RealServer } = require('./real-server')
const { makePhoto, runUpload, tusFetch, cleanUp } = require('./lib')

const BIN = process.env.FOODCHECK_BIN || null
const SKIP = BIN ? false : 'needs FOODCHECK_BIN (a built server binary): run ../run-tus-tests.sh'
const DONE = ['uploaded', 'processed']

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address()
    s.close(() => resolve(port))
  })
  s.on('error', reject)
})
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** One server process on a fixed port and data dir, which can be SIGKILLed and started again. */
class CrashableServer {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'foodcheck-tus-crash-'))
    this.log = path.join(this.dir, 'server.log')
    this.admin = { username: `crash-admin-${crypto.randomUUID().slice(0, 8)}`, password: `pw-${crypto.randomUUID()}` }
    this.proc = null
    this.starts = 0
  }

  async init() {
    this.port = await freePort()
    this.url = `http://127.0.0.1:${this.port}`
    execFileSync(BIN, ['--data-dir', this.dir, 'user', 'add', '--username', this.admin.username, '--role', 'admin',
      '--name', 'Crash harness admin'], { input: `${this.admin.password}\n`, cwd: this.dir, stdio: ['pipe', 'ignore', 'pipe'] })
    await this.start()
  }

  async start() {
    const out = fs.openSync(this.log, 'a')
    this.proc = spawn(BIN, ['--data-dir', this.dir, 'serve', '--listen', `127.0.0.1:${this.port}`],
      { cwd: this.dir, stdio: ['ignore', out, out], env: { ...process.env, NO_COLOR: '1' } })
    this.starts++
    const exited = new Promise((resolve) => this.proc.once('exit', resolve))
    this.exited = exited
    for (let i = 0; i < 300; i++) {
      if (this.proc.exitCode !== null) throw new Error(`the crash server exited at start-up; see ${this.log}`)
      try {
        if ((await fetch(`${this.url}/readyz`)).status === 200) return
      } catch (_) { /* not listening yet */ }
      await sleep(100)
    }
    throw new Error(`the crash server is not ready after 30 s; see ${this.log}`)
  }

  /** SIGKILL: no graceful shutdown, no in-flight request finished. */
  async kill() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL')
      await this.exited
    }
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM')
      await Promise.race([this.exited, sleep(10_000)])
      await this.kill()
    }
  }

  cleanUp(failed) {
    if (failed || process.env.FOODCHECK_KEEP) console.log(`# crash server data dir kept: ${this.dir}`)
    else fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

describe('a server killed during the last chunk: tus-js-client resumes, the photo is attached', { skip: SKIP }, () => {
  let server
  let world
  let failed = false

  before(async () => {
    server = new CrashableServer()
    await server.init()
    world = new RealServer(server.url, { adminUsername: server.admin.username, adminPassword: server.admin.password })
    await world.setUp()
  })
  after(async () => {
    if (server) {
      await server.stop()
      server.cleanUp(failed)
    }
    cleanUp()
  })

  // Kill delays after the final PATCH starts (ms), then 'response': right after its answer.
  const rounds = [0, 2, 5, 10, 15, 20, 'response']
  for (const when of rounds) {
    test(`kill -9 ${when === 'response' ? 'right after the final PATCH answered' : `${when} ms into the final PATCH`}; restart; resume`, async () => {
      try {
        const photo = makePhoto({ width: 1600, height: 1200, quality: 90 })
        const chunkSize = 128 * 1024
        const seeded = await world.seedInspectionWithPhotos([photo])
        const record = seeded.photos[0]
        const endpoint = `${server.url}/api/v1/uploads`
        const headers = { Authorization: `Bearer ${world.inspectors.a.token}` }
        const metadata = { photo_id: record.id, sha256: record.sha256, filename: 'IMG_crash.jpg' }
        const isFinal = (req) => req.getMethod() === 'PATCH' && Number(req.getHeader('Upload-Offset')) + chunkSize >= photo.byte_size
        let killed = null
        const first = await runUpload(photo.bytes, {
          endpoint, chunkSize, headers, metadata,
          onBeforeRequest(req) {
            if (when !== 'response' && isFinal(req) && !killed) killed = sleep(when).then(() => server.kill())
          },
          onAfterResponse(req) {
            if (when === 'response' && isFinal(req) && !killed) killed = server.kill()
          },
        })
        assert.ok(killed, 'the final PATCH was sent')
        await killed
        const url = first.upload.url
        assert.ok(url, 'the upload was created before the kill')
        await server.start()
        // A fresh Upload, as the app does after a restart: it resumes from the stored URL.
        const resumed = await runUpload(photo.bytes, { endpoint, chunkSize, headers, metadata, uploadUrl: url })
        assert.equal(resumed.outcome, 'success', `first run: ${first.outcome}; resumed: ${resumed.error}`)
        const head = await tusFetch('HEAD', url, world.inspectors.a.token)
        assert.equal(head.status, 200)
        assert.equal(head.headers.get('upload-offset'), String(photo.byte_size))
        const p = (await world.photosOfTask(seeded.taskId)).find((x) => x.id === record.id)
        assert.ok(p && DONE.includes(p.processing_status), `processing_status ${p && p.processing_status} after ` +
          `first run ${first.outcome}, resumed with ${resumed.requests.map((r) => `${r.method}→${r.status}`).join(' ')}`)
        console.log(`# kill ${when}: first run ${first.outcome}; resume sent ${resumed.requests.map((r) => `${r.method} [${r.sent ?? '-'}]→${r.status}`).join(', ')}`)
      } catch (e) {
        failed = true
        throw e
      }
    })
  }
})
