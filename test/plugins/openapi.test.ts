/** The OpenAPI document lists every HTTP route with its response schemas and security. */
import t from 'tap'
import { startServer } from '../helper.js'

interface Operation { responses: Record<string, { content?: Record<string, { schema?: unknown }>, description?: string }>, security?: unknown }

t.test('every route appears with response schemas; admin routes require the bearer scheme', async t => {
  const server = await startServer(t)
  const res = await server.app.inject('/docs/json')
  t.equal(res.statusCode, 200)
  const doc = res.json() as { openapi: string, paths: Record<string, Record<string, Operation>>, components: { securitySchemes: Record<string, unknown> } }
  t.match(doc.openapi, /^3\./)
  t.match(doc.components.securitySchemes.adminBearer, { type: 'http', scheme: 'bearer' })
  const expected: Array<[string, string, string[], boolean]> = [
    ['/sessions', 'get', ['200', '400', '401', '403'], true],
    ['/sessions/{userId}', 'get', ['200', '400', '401', '403', '404'], true],
    ['/sessions/{userId}', 'delete', ['204', '400', '401', '403', '404'], true],
    ['/health', 'get', ['200'], false],
    ['/ready', 'get', ['200', '503'], false],
    ['/metrics', 'get', ['200'], false]
  ]
  for (const [path, method, statuses, secured] of expected) {
    const op = doc.paths[path]?.[method]
    t.ok(op, `${method.toUpperCase()} ${path} is documented`)
    if (op === undefined) continue
    t.same(Object.keys(op.responses).sort(), statuses.sort(), `${method} ${path}: statuses`)
    for (const status of statuses.filter(s => s !== '204')) {
      const content = op.responses[status]?.content
      t.ok(content !== undefined && Object.values(content).some(c => c.schema !== undefined), `${method} ${path} ${status}: schema`)
    }
    if (secured) t.same(op.security, [{ adminBearer: [] }], `${method} ${path}: security`)
    else t.equal(op.security, undefined, `${method} ${path}: open`)
  }
  const summary = doc.paths['/sessions']?.get?.responses['200']?.content?.['application/json']?.schema as { properties: Record<string, unknown> }
  t.ok(summary.properties.sessions && summary.properties.nextCursor && summary.properties.counts)
  // Nullable times and the state as OpenAPI 3.0 writes them (not as unions, which the serialiser checks value by value).
  const item = (summary.properties.sessions as { items: { properties: Record<string, unknown> } }).items.properties
  t.same(item.connectedAt, { type: 'string', format: 'date-time', nullable: true }, 'a nullable time')
  t.same(item.state, { type: 'string', enum: ['active', 'grace', 'disposing', 'disposed'] }, 'the state')
  t.same(summary.properties.nextCursor, { type: 'string', nullable: true }, 'the cursor')
  const ui = await server.app.inject('/docs/')
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
})
