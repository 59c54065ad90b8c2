/**
 * GlassesConnection over the in-memory FakeSocket: it carries its token's
 * identity, is handed to its owner as itself, and tells a client about each
 * unlisted message type once, within a bound.
 */
import t from 'tap'
import { GlassesConnection, type ConnectionSink, type GlassesIdentity } from '../../sessions/glasses-connection.js'
import { silentLog } from '../../sessions/log.js'
import { NodeEvents } from '../../sessions/node-events.js'
import { SocketChannel } from '../../sessions/socket-channel.js'
import { FakeSocket } from '../fake-socket.js'

const identity: GlassesIdentity = { userId: 'u@x.io', subject: 'sub-1', expiresAt: 1_900_000_000_000 }
const limits = { maxBufferedBytes: 1 << 20, maxBadFrames: 3 }
/** The bound on remembered unlisted types, as glasses-connection.ts sets it. */
const MAX_UNLISTED_TYPES = 32

t.test('a channel that knows whose it is, handed to its owner as itself', async t => {
  const socket = new FakeSocket()
  const connection = new GlassesConnection(socket, identity, limits)
  t.ok(connection instanceof SocketChannel)
  t.equal(connection.identity, identity)
  t.equal(connection.ackedAsReconnection, false, 'not acked as a reconnection until the session says so')
  const seen: Array<[GlassesConnection, string]> = []
  const sink: ConnectionSink = { onText: (c, text) => seen.push([c, text]), onBinary () {}, onClose () {} }
  socket.peerSends('{"type":"ping"}')
  connection.bind(sink)
  t.equal(seen[0]?.[0], connection)
  t.equal(seen[0]?.[1], '{"type":"ping"}')
})

t.test('the node\'s events hear the codes this connection sends, as a glasses socket', async t => {
  const codes: number[] = []
  const socket = new FakeSocket()
  const events = new NodeEvents(silentLog)
  events.on('socket.close_sent', (side, code) => { codes.push(code); t.equal(side, 'glasses') })
  const connection = new GlassesConnection(socket, identity, limits, events)
  connection.close(4001)
  t.same(codes, [4001])
  t.same(socket.closeSent, { code: 4001, reason: 'replaced by a newer connection' })
})

t.test('each unlisted type is reported once', async t => {
  const connection = new GlassesConnection(new FakeSocket(), identity, limits)
  t.equal(connection.firstOfUnlistedType('custom_a'), true)
  t.equal(connection.firstOfUnlistedType('custom_a'), false, 'the second of a type is not')
  t.equal(connection.firstOfUnlistedType('custom_b'), true, 'another type is')
  const other = new GlassesConnection(new FakeSocket(), identity, limits)
  t.equal(other.firstOfUnlistedType('custom_a'), true, 'per socket: a new socket is told again')
})

t.test('past MAX_UNLISTED_TYPES distinct types nothing more is remembered or reported', async t => {
  const connection = new GlassesConnection(new FakeSocket(), identity, limits)
  for (let i = 0; i < MAX_UNLISTED_TYPES; i++) t.equal(connection.firstOfUnlistedType(`t${i}`), true, `t${i}`)
  t.equal(connection.firstOfUnlistedType('one_more'), false, 'a client cannot grow the set')
  t.equal(connection.firstOfUnlistedType('one_more'), false)
  t.equal(connection.firstOfUnlistedType('t0'), false, 'the remembered ones stay remembered')
})
