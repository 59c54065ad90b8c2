/**
 * The live admin page in a real headless Chromium (Debian's package, driven by
 * playwright-core): a session appears when glasses connect, turns to grace when
 * they drop, and vanishes after "End session".
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chromium } from 'playwright-core'
import { adminToken, connectAcked, glassesToken, startServer } from '../helper.js'

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
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync']
  })
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
})
