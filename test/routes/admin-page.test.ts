/**
 * The live admin page in a real headless Chromium (from npm, see ../browser.ts):
 * a session appears when glasses connect, turns to grace when they drop, and
 * vanishes after "End session".
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { launchChromium } from '../browser.js'
import { adminToken, connectAcked, glassesToken, refusedUpgrade, startServer } from '../helper.js'

const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url))

t.test('the feed needs an admin token: 401 without, 403 for a non-admin', async t => {
  const server = await startServer(t)
  t.equal((await server.app.inject('/admin/feed')).statusCode, 401)
  const res = await server.app.inject({ url: '/admin/feed', headers: { authorization: `Bearer ${glassesToken('x@example.com')}` } })
  t.equal(res.statusCode, 403)
  const page = await server.app.inject('/admin/')
  t.equal(page.statusCode, 200)
  t.match(page.body, /<title>Tether admin<\/title>/)
  t.equal((await server.app.inject('/admin')).statusCode, 302)
})

t.test('live page: appear, grace, end session', async t => {
  const server = await startServer(t, { adminFeedIntervalMs: 200, gracePeriodMs: 60_000 })
  const browser = await launchChromium()
  t.teardown(async () => { await browser.close() })
  const page = await browser.newPage()
  await page.goto(`${server.httpUrl}/admin/`)
  await page.fill('#token', adminToken())
  await page.click('#login button[type=submit]')
  await page.waitForSelector('#feed-status:has-text("live")')
  t.equal(await page.evaluate(() => sessionStorage.getItem('tether.adminToken') !== null), true, 'token kept in sessionStorage')

  const { client } = await connectAcked(t, server, 'viewer@example.com')
  const row = page.locator('#sessions tbody tr[data-user-id="viewer@example.com"]')
  await row.locator('.badge.active').waitFor()
  t.equal(await page.textContent('#count-active'), '1')

  client.terminate()
  await row.locator('.badge.grace').waitFor()
  t.equal(await page.textContent('#count-grace'), '1')

  await row.click()
  await page.waitForSelector('#detail:not([hidden])')
  t.match(await page.textContent('#detail-managers'), /"heartbeat"/)
  t.match(await page.textContent('#detail-events'), /session\.detached/)
  mkdirSync(artifacts, { recursive: true })
  await page.screenshot({ path: `${artifacts}admin-page.png`, fullPage: true })

  await page.click('#end-session')
  await row.waitFor({ state: 'detached' })
  t.equal(server.app.sessions.size, 0, 'the session was disposed')
  t.equal(await page.textContent('#count-total'), '0')

  await page.reload()
  await page.waitForSelector('#feed-status:has-text("live")')
  t.pass('a reload reuses the token from sessionStorage')

  // "End and block": the session ends and the user is refused on reconnect.
  await connectAcked(t, server, 'pest@example.com')
  const pest = page.locator('#sessions tbody tr[data-user-id="pest@example.com"]')
  await pest.click()
  await page.waitForSelector('#detail:not([hidden])')
  await page.click('#block-user')
  await pest.waitFor({ state: 'detached' })
  const refused = await refusedUpgrade(server, { authorization: `Bearer ${glassesToken('pest@example.com')}` })
  t.match(refused, { status: 403, body: { code: 'USER_BLOCKED' } }, 'blocked from the admin page')
})
