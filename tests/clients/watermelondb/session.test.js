'use strict'
// Session scenario with a real WatermelonDB 0.28.0 client against a REAL foodcheck server
// (run ../run-sync-tests.sh, or set FOODCHECK_URL as for sync.test.js): a refresh whose answer
// is lost in the field must not log the inspector out.
//
//   node --test session.test.js

const { test, before } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')

const lib = require('./lib')
const { RealServer } = require('./real-server')

const BASE_URL = process.env.FOODCHECK_URL ? process.env.FOODCHECK_URL.replace(/\/+$/, '') : null
const SKIP = BASE_URL ? false : 'needs a real server: run ../run-sync-tests.sh, or set FOODCHECK_URL'

let world

before(async () => {
  if (SKIP) return
  world = new RealServer(BASE_URL, {
    adminUsername: process.env.FOODCHECK_ADMIN_USERNAME,
    adminPassword: process.env.FOODCHECK_ADMIN_PASSWORD,
  })
  await world.setUp()
})

const refresh = (refreshToken, deviceId) =>
  lib.httpJson('POST', `${BASE_URL}/api/v1/auth/refresh`, {
    body: { refresh_token: refreshToken, device_id: deviceId },
  })

test('lost refresh response: the retry with the old token gets the same tokens and sync goes on', { skip: SKIP }, async () => {
  const person = world.inspectors.a
  const deviceId = `wmdb-session-${crypto.randomUUID()}`
  const login = await lib.httpJson('POST', `${BASE_URL}/api/v1/auth/login`, {
    body: { username: person.username, password: person.password, device_id: deviceId },
  })
  assert.equal(login.status, 200, JSON.stringify(login.body))
  const db = await lib.makeDatabase({
    schema: lib.appSchemaFor(),
    migrations: lib.migrationsFor(),
    name: deviceId,
  })
  await lib.sync(db, { baseUrl: BASE_URL, token: login.body.access_token })

  // The refresh reaches the server and is applied; the answer is dropped on the way back.
  const lost = await refresh(login.body.refresh_token, deviceId)
  assert.equal(lost.status, 200, JSON.stringify(lost.body))

  // The app retries with the refresh token it still holds.
  const retry = await refresh(login.body.refresh_token, deviceId)
  assert.equal(retry.status, 200, `retry refused: ${JSON.stringify(retry.body)}`)
  assert.equal(retry.body.refresh_token, lost.body.refresh_token)

  // Syncing goes on with the new access token, and the session keeps rotating.
  await lib.sync(db, { baseUrl: BASE_URL, token: retry.body.access_token })
  const next = await refresh(retry.body.refresh_token, deviceId)
  assert.equal(next.status, 200, JSON.stringify(next.body))
  await lib.sync(db, { baseUrl: BASE_URL, token: next.body.access_token })

  // The old token is now a replay: the session is revoked, access tokens included.
  const replay = await refresh(login.body.refresh_token, deviceId)
  assert.equal(replay.status, 401)
  assert.equal(replay.body.error.code, 'refresh_token_reused')
  await assert.rejects(lib.sync(db, { baseUrl: BASE_URL, token: next.body.access_token }), (e) => e.status === 401 || /401/.test(String(e.message)))
})
