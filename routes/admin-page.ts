/**
 * The live admin page: static assets from `admin/` at /admin/, and its feed at
 * /admin/feed, Server-Sent Events pushing `{counts, sessions}` snapshots of every
 * node on every session change anywhere (coalesced) and at least every ADMIN_FEED_INTERVAL_MS. The
 * feed needs the admin token in the Authorization header (the page reads it
 * with fetch, so the token never sits in a URL).
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'
import { ADMIN_SECURITY } from '../plugins/openapi.js'

/** Sessions per snapshot: the page is a glance, /sessions pages through the rest. */
const FEED_SESSIONS = 500
/** Lifecycle events within this window become one snapshot. */
const COALESCE_MS = 50

/** The assets folder, whether running from source or from the compiled `dist/`. */
function assetsRoot (): string {
  const fromSource = fileURLToPath(new URL('../admin/', import.meta.url))
  return existsSync(fromSource) ? fromSource : fileURLToPath(new URL('../../admin/', import.meta.url))
}

const adminPageRoutes: FastifyPluginAsync<{ config: Config }> = async function (fastify, { config }) {
  await fastify.register(fastifyStatic, { root: assetsRoot(), prefix: '/admin/', index: 'index.html' })
  fastify.get('/admin', { schema: { hide: true } }, async (_request, reply) => await reply.redirect('/admin/'))

  // Open feeds end at shutdown, so server.close() never waits on a browser tab.
  const feeds = new Set<() => void>()
  fastify.addHook('preClose', async () => { for (const stop of [...feeds]) stop() })

  fastify.get('/admin/feed', {
    onRequest: fastify.requireAdmin,
    schema: {
      tags: ['admin page'],
      summary: 'Live feed of session snapshots (text/event-stream)',
      security: ADMIN_SECURITY,
      produces: ['text/event-stream'],
      response: { 200: { description: 'event: snapshot, data: {counts, sessions}', type: 'string' } }
    }
  }, (request, reply) => {
    reply.hijack()
    const out = reply.raw
    out.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive'
    })
    let pending: NodeJS.Timeout | null = null
    let closed = false
    const push = (): void => {
      pending = null
      fastify.ownership.page({ after: null, limit: FEED_SESSIONS }).then(page => {
        if (closed) return
        out.write(`event: snapshot\ndata: ${JSON.stringify({ counts: page.counts, sessions: page.sessions })}\n\n`)
      }, (error: unknown) => {
        // Redis away: the page keeps its last snapshot; the next change or tick tries again.
        fastify.log.debug({ err: error }, 'admin feed snapshot failed')
      })
    }
    const soon = (): void => { pending ??= setTimeout(push, COALESCE_MS) }
    const unsubscribe = fastify.ownership.onChange(soon)
    const ticker = setInterval(push, config.adminFeedIntervalMs)
    const stop = (): void => {
      closed = true
      feeds.delete(stop)
      unsubscribe()
      clearInterval(ticker)
      if (pending !== null) clearTimeout(pending)
      out.end()
    }
    feeds.add(stop)
    request.raw.on('close', stop)
    push()
  })
}

export default adminPageRoutes
