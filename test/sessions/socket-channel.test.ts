/**
 * SocketChannel over the in-memory FakeSocket: early frames buffered until an
 * owner binds (and capped), delivery and hand-over, backpressure, who closed the
 * socket with which code, and the close handshake's time limit. No server.
 */
import t from 'tap'
import { CloseCode, CloseReason } from '../../protocol/close-codes.js'
import { silentLog } from '../../sessions/log.js'
import { NodeEvents, type SocketSide } from '../../sessions/node-events.js'
import { SocketChannel, type ChannelLimits, type ChannelSink } from '../../sessions/socket-channel.js'
import { delay } from '../helper.js'
import { ABNORMAL_CLOSURE, FakeSocket } from '../fake-socket.js'

const limits: ChannelLimits = { maxBufferedBytes: 1000, maxBadFrames: 3, closeHandshakeMs: 30 }
/** The cap on frames before an owner binds, as socket-channel.ts sets it. */
const MAX_EARLY_FRAMES = 256

/** A sink that writes down what it was given, in one list so that order across kinds shows. */
class RecordingSink implements ChannelSink<SocketChannel> {
  readonly got: Array<{ kind: 'text', text: string, bytes: number } | { kind: 'binary', data: Buffer } | { kind: 'close', code: number }> = []
  onText (_channel: SocketChannel, text: string, bytes: number): void { this.got.push({ kind: 'text', text, bytes }) }
  onBinary (_channel: SocketChannel, data: Buffer): void { this.got.push({ kind: 'binary', data }) }
  onClose (_channel: SocketChannel, code: number): void { this.got.push({ kind: 'close', code }) }
  texts (): string[] { return this.got.flatMap(g => g.kind === 'text' ? [g.text] : []) }
  closes (): number[] { return this.got.flatMap(g => g.kind === 'close' ? [g.code] : []) }
}

/** The channel alone: glasses and app connections only add who is on the other end. */
class PlainChannel extends SocketChannel {
  get side (): SocketSide { return 'glasses' }
}

function channel (options: { answersClose?: boolean, limits?: Partial<ChannelLimits> } = {}) {
  const socket = new FakeSocket({ answersClose: options.answersClose })
  const closesSent: number[] = []
  const events = new NodeEvents(silentLog)
  events.on('socket.close_sent', (_side, code) => { closesSent.push(code) })
  const ch = new PlainChannel(socket, { ...limits, ...options.limits }, events)
  return { socket, channel: ch, closesSent }
}

t.test('frames before bind wait, in order, and are delivered at bind; later ones go live', async t => {
  const { socket, channel: ch } = channel()
  socket.peerSends('one')
  socket.peerSendsBinary(Buffer.from([1, 2, 3]))
  socket.peerSends('tw\u00f6')
  const sink = new RecordingSink()
  t.same(sink.got, [], 'nothing reaches anyone before an owner binds')
  ch.bind(sink)
  t.same(sink.got, [
    { kind: 'text', text: 'one', bytes: 3 },
    { kind: 'binary', data: Buffer.from([1, 2, 3]) },
    { kind: 'text', text: 'tw\u00f6', bytes: 4 }
  ], 'oldest first, text decoded, bytes counted as UTF-8')
  socket.peerSends('live')
  t.same(sink.texts().at(-1), 'live', 'delivered at once once bound')
})

t.test('frames in any shape ws hands over reach the owner as one Buffer', async t => {
  const { socket, channel: ch } = channel()
  const sink = new RecordingSink()
  ch.bind(sink)
  const bytes = new Uint8Array([104, 105])
  socket.peerSendsRaw(bytes.buffer, true)
  socket.peerSendsRaw([Buffer.from('ab'), Buffer.from('cd')], false)
  t.same(sink.got, [{ kind: 'binary', data: Buffer.from('hi') }, { kind: 'text', text: 'abcd', bytes: 4 }])
})

t.test('up to MAX_EARLY_FRAMES wait; one more closes 1008 and drops them all', async t => {
  const { socket, channel: ch, closesSent } = channel()
  for (let i = 0; i < MAX_EARLY_FRAMES; i++) socket.peerSends(`f${i}`)
  t.equal(socket.closeSent, null, 'a client may send the cap before its ack')
  socket.peerSends('one too many')
  t.same(socket.closeSent, { code: CloseCode.POLICY_VIOLATION, reason: 'too many frames before the ack' })
  t.equal(ch.cause, 'server')
  t.equal(ch.closeCodeSent, CloseCode.POLICY_VIOLATION)
  t.same(closesSent, [CloseCode.POLICY_VIOLATION], 'the observer (metrics) heard of it')
  t.equal(await socket.closed(), CloseCode.POLICY_VIOLATION, 'the peer answered the close')
  const sink = new RecordingSink()
  ch.bind(sink)
  t.same(sink.got, [{ kind: 'close', code: CloseCode.POLICY_VIOLATION }], 'no buffered frame survives; the close is delivered at bind')
})

t.test('a close that came before bind is delivered after the buffered frames', async t => {
  const { socket, channel: ch } = channel()
  socket.peerSends('last words')
  socket.peerCloses(CloseCode.NORMAL)
  t.equal(await socket.closed(), CloseCode.NORMAL)
  t.equal(ch.isOpen, false)
  const sink = new RecordingSink()
  ch.bind(sink)
  t.same(sink.got, [{ kind: 'text', text: 'last words', bytes: 10 }, { kind: 'close', code: CloseCode.NORMAL }])
  t.equal(ch.cause, 'client', 'the peer closed it')
  t.equal(ch.closeCodeSent, null, 'the server sent no code of its own')
})

t.test('an owner may hand the channel on from inside a delivery: the rest goes to the new owner', async t => {
  const { socket, channel: ch } = channel()
  socket.peerSends('init')
  socket.peerSends('second')
  socket.peerSends('third')
  const next = new RecordingSink()
  const first: string[] = []
  ch.bind({
    onText (channel, text) { first.push(text); channel.bind(next) },
    onBinary () {},
    onClose () {}
  })
  t.same(first, ['init'])
  t.same(next.texts(), ['second', 'third'])
  socket.peerSends('live')
  t.same(next.texts(), ['second', 'third', 'live'])
})

t.test('after unbind the channel is deaf: no frame, no close', async t => {
  const { socket, channel: ch } = channel()
  const sink = new RecordingSink()
  ch.bind(sink)
  ch.unbind()
  socket.peerSends('ignored')
  socket.peerCloses(CloseCode.NORMAL)
  await socket.closed()
  t.same(sink.got, [])
})

t.test('send writes JSON and returns its bytes; nothing once closing', async t => {
  const { socket, channel: ch } = channel()
  t.equal(ch.send({ type: 'hello', text: '\u00e9' }), Buffer.byteLength('{"type":"hello","text":"\u00e9"}'))
  t.same(socket.messages(), [{ type: 'hello', text: '\u00e9' }])
  ch.close(CloseCode.NORMAL)
  t.equal(ch.isOpen, false, 'not open from the moment the close frame goes')
  t.equal(ch.send({ type: 'late' }), 0)
  t.equal(ch.sendDroppable(Buffer.from('x')), false)
  t.same(socket.types(), ['hello'])
})

t.test('a peer that stops reading: send closes 4009 past maxBufferedBytes, not at it', async t => {
  const { socket, channel: ch, closesSent } = channel()
  socket.peerStopsReading()
  const message = { type: 'm', pad: 'x'.repeat(100 - 21) }
  t.equal(JSON.stringify(message).length, 100)
  for (let i = 0; i < 10; i++) t.equal(ch.send(message), 100, `message ${i + 1} fits (buffered ${socket.bufferedAmount})`)
  t.equal(socket.bufferedAmount, limits.maxBufferedBytes)
  t.equal(socket.closeSent, null, 'exactly at the limit is not over it')
  t.equal(ch.send(message), 0, 'the one past the limit counts as not sent')
  t.same(socket.closeSent, { code: CloseCode.SLOW_CONSUMER, reason: CloseReason[CloseCode.SLOW_CONSUMER] })
  t.equal(ch.closeCodeSent, CloseCode.SLOW_CONSUMER)
  t.equal(ch.cause, 'server')
  t.same(closesSent, [CloseCode.SLOW_CONSUMER])
})

t.test('droppable frames are dropped while the peer is behind, and flow again when it catches up', async t => {
  const { socket, channel: ch } = channel()
  socket.peerStopsReading()
  const chunk = Buffer.alloc(600)
  t.equal(ch.sendDroppable(chunk), true)
  t.equal(ch.sendDroppable(chunk), true, 'sent while the buffer was under the limit')
  t.equal(ch.sendDroppable(chunk), false, 'dropped once over it')
  t.equal(socket.binaries().length, 2)
  t.equal(socket.closeSent, null, 'dropping audio never closes the socket')
  socket.peerReads()
  t.equal(ch.sendDroppable(chunk), true)
  t.equal(socket.binaries().length, 3)
})

t.test('ping while open only; pings and pongs from the peer count as heard', async t => {
  const { socket, channel: ch } = channel()
  ch.ping()
  t.equal(socket.pings, 1)
  ch.lastInboundAt = 0
  socket.peerPongs()
  t.ok(ch.lastInboundAt > 0, 'a pong is a sign of life')
  ch.lastInboundAt = 0
  socket.peerPings()
  t.ok(ch.lastInboundAt > 0, 'so is a ping')
  ch.lastInboundAt = 0
  socket.peerSends('x')
  t.ok(ch.lastInboundAt > 0, 'and a frame, bound or not')
  ch.close(CloseCode.NORMAL)
  ch.ping()
  t.equal(socket.pings, 1, 'no ping once closing')
})

t.test('the server closes: cause server, its code, the reason from the table; a second close changes nothing', async t => {
  const { socket, channel: ch, closesSent } = channel()
  const sink = new RecordingSink()
  ch.bind(sink)
  ch.close(CloseCode.ADMIN_ENDED)
  ch.close(CloseCode.NORMAL)
  t.same(socket.closeSent, { code: CloseCode.ADMIN_ENDED, reason: 'session ended by an admin' })
  t.equal(ch.cause, 'server')
  t.equal(ch.closeCodeSent, CloseCode.ADMIN_ENDED)
  t.same(closesSent, [CloseCode.ADMIN_ENDED], 'counted once')
  await socket.closed()
  t.same(sink.closes(), [CloseCode.ADMIN_ENDED], 'the owner hears the close once, with the code the peer answered')
})

t.test('terminate after our close destroys the socket but keeps the record: cause server, our code', async t => {
  const { socket, channel: ch } = channel()
  ch.close(CloseCode.GOING_AWAY)
  ch.terminate()
  t.equal(socket.terminated, true)
  t.equal(await socket.closed(), ABNORMAL_CLOSURE)
  t.equal(ch.cause, 'server', 'a later terminate does not rewrite who closed it')
  t.equal(ch.closeCodeSent, CloseCode.GOING_AWAY)
})

t.test('a peer that never answers our close frame has its socket destroyed after closeHandshakeMs', async t => {
  const { socket, channel: ch } = channel({ answersClose: false })
  const sink = new RecordingSink()
  ch.bind(sink)
  ch.close(CloseCode.SLOW_CONSUMER)
  await delay(5)
  t.equal(socket.terminated, false, 'not before the limit')
  t.equal(await socket.closed(), ABNORMAL_CLOSURE, 'destroyed: no close frame came back')
  t.equal(socket.terminated, true)
  t.same(sink.closes(), [ABNORMAL_CLOSURE])
  t.equal(ch.closeCodeSent, CloseCode.SLOW_CONSUMER, 'what we sent is still on record')
  t.equal(ch.cause, 'server')
})

t.test('a peer that answers in time is not destroyed later', async t => {
  const { socket, channel: ch } = channel()
  ch.close(CloseCode.NORMAL)
  t.equal(await socket.closed(), CloseCode.NORMAL)
  await delay((limits.closeHandshakeMs ?? 0) * 2)
  t.equal(socket.terminateCalls, 0, 'the handshake timer was cleared at close')
})

t.test('terminate: cause silence, no close frame, the owner sees 1006', async t => {
  const { socket, channel: ch, closesSent } = channel()
  const sink = new RecordingSink()
  ch.bind(sink)
  ch.terminate()
  t.equal(await socket.closed(), ABNORMAL_CLOSURE)
  t.equal(socket.closeSent, null)
  t.equal(ch.cause, 'silence')
  t.equal(ch.closeCodeSent, null)
  t.same(closesSent, [], 'no close code was sent')
  t.same(sink.closes(), [ABNORMAL_CLOSURE])
})

t.test('the peer closes or vanishes: cause client', async t => {
  const closing = channel()
  closing.socket.peerCloses(4321, 'bye')
  t.equal(await closing.socket.closed(), 4321)
  t.equal(closing.channel.cause, 'client')
  t.same(closing.socket.closeSent, { code: 4321, reason: '' }, 'ws answered with the same code')

  const dropped = channel()
  dropped.socket.peerDrops()
  t.equal(await dropped.socket.closed(), ABNORMAL_CLOSURE)
  t.equal(dropped.channel.cause, 'client')
  t.equal(dropped.channel.closeCodeSent, null)
})

t.test('a frame ws refuses is recorded as our close with ws\'s code', async t => {
  const cases: Array<[string, number, number]> = [
    ['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009, CloseCode.MESSAGE_TOO_BIG],
    ['WS_ERR_INVALID_UTF8', 1007, CloseCode.INVALID_PAYLOAD],
    ['WS_ERR_INVALID_OPCODE', 1002, 1002]
  ]
  for (const [errorCode, status, expected] of cases) {
    const { socket, channel: ch, closesSent } = channel()
    socket.peerSendsRefusedFrame(errorCode, status)
    t.equal(ch.cause, 'server', errorCode)
    t.equal(ch.closeCodeSent, expected, `${errorCode}: ${expected}`)
    t.same(closesSent, [expected], `${errorCode}: counted`)
    t.equal(socket.closeSent?.code, status, 'ws sent its own close frame')
    t.equal(await socket.closed(), ABNORMAL_CLOSURE, 'and read no answer')
    t.equal(socket.terminated, false, 'ws closes it itself: no terminate')
  }
})

t.test('a transport error destroys the socket without claiming a close code', async t => {
  const { socket, channel: ch, closesSent } = channel()
  socket.transportError('ECONNRESET')
  t.equal(socket.terminated, true)
  t.equal(await socket.closed(), ABNORMAL_CLOSURE)
  t.equal(ch.closeCodeSent, null)
  t.same(closesSent, [])
  t.equal(ch.cause, 'client', 'the peer\'s side broke, not a decision of ours')
})

t.test('an error after the close is ours changes nothing', async t => {
  const { socket, channel: ch, closesSent } = channel()
  ch.close(CloseCode.GOING_AWAY)
  socket.transportError('EPIPE')
  t.equal(socket.terminated, false)
  t.equal(ch.closeCodeSent, CloseCode.GOING_AWAY)
  t.same(closesSent, [CloseCode.GOING_AWAY])
})

t.test('recordBadFrame: true once past maxBadFrames in one minute; a new minute starts over', async t => {
  const { channel: ch } = channel()
  const start = 1_000_000
  t.same([1, 2, 3].map(i => ch.recordBadFrame(start + i)), [false, false, false], 'up to the limit')
  t.equal(ch.recordBadFrame(start + 59_000), true, 'one more within the minute')
  t.equal(ch.recordBadFrame(start + 60_002), false, 'a minute after the first, the count starts again')
})

t.test('listeners are the shared ones: every socket gets the same five functions', async t => {
  const a = channel()
  const b = channel()
  for (const event of ['message', 'ping', 'pong', 'close', 'error']) {
    t.equal(a.socket.listenerCount(event), 1, event)
    t.equal(a.socket.listeners(event)[0], b.socket.listeners(event)[0], `${event}: one function for every socket`)
  }
})
