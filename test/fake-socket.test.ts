/**
 * The fake keeps ws's word: the same scenarios run on a real server-side `ws`
 * socket (a loopback pair) and on a FakeSocket, and must give the same events,
 * codes and ready states. The unit tests built on the fake are only as good as this.
 */
import { once } from 'node:events'
import t from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import type { ChannelSocket } from '../sessions/channel-socket.js'
import { FakeSocket } from './fake-socket.js'
import type { Teardown } from './helper.js'

/** A server-side socket and the peer's side of it. */
interface Pair {
  server: ChannelSocket
  sendText: (text: string) => void
  sendBinary: (data: Buffer) => void
  close: (code: number, reason: string) => void
  /** A frame over the server's limit (MAX_PAYLOAD bytes), which the WebSocket layer refuses. */
  sendTooBig: () => void
}

const MAX_PAYLOAD = 64

async function realPair (t: Teardown): Promise<Pair> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: MAX_PAYLOAD })
  await once(wss, 'listening')
  t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close() })
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`)
  t.teardown(() => client.terminate())
  const [server] = await accepted
  await once(client, 'open')
  return {
    server,
    sendText: text => client.send(text),
    sendBinary: data => client.send(data),
    close: (code, reason) => client.close(code, reason),
    sendTooBig: () => client.send('x'.repeat(MAX_PAYLOAD + 1))
  }
}

async function fakePair (): Promise<Pair> {
  const socket = new FakeSocket()
  return {
    server: socket,
    sendText: text => socket.peerSends(text),
    sendBinary: data => socket.peerSendsBinary(data),
    close: (code, reason) => socket.peerCloses(code, reason),
    sendTooBig: () => socket.peerSendsRefusedFrame('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009)
  }
}

/** Resolves with the arguments of the server socket's next `event`. */
async function next (socket: ChannelSocket, event: 'message' | 'close' | 'error'): Promise<unknown[]> {
  return await new Promise(resolve => {
    const on = socket as unknown as { once: (event: string, listener: (...args: unknown[]) => void) => void }
    on.once(event, (...args) => resolve(args))
  })
}

const kinds: Array<[string, (t: Teardown) => Promise<Pair>]> = [['ws', realPair], ['fake', fakePair]]

for (const [kind, pair] of kinds) {
  t.test(`${kind}: frames come as (Buffer, isBinary)`, async t => {
    const { server, sendText, sendBinary } = await pair(t)
    const text = next(server, 'message')
    sendText('h\u00e9')
    const [data, binary] = await text
    t.ok(Buffer.isBuffer(data))
    t.equal(String(data), 'h\u00e9')
    t.equal(binary, false)
    const bin = next(server, 'message')
    sendBinary(Buffer.from([1, 2]))
    t.same(await bin, [Buffer.from([1, 2]), true])
  })

  t.test(`${kind}: our close: CLOSING at once, close with our code once the peer answers, then CLOSED`, async t => {
    const { server } = await pair(t)
    const closed = next(server, 'close')
    server.close(4009, 'slow consumer')
    t.equal(server.readyState, 2)
    t.doesNotThrow(() => server.send('late'), 'a send after the close is dropped, not thrown')
    const [code] = await closed
    t.equal(code, 4009)
    t.equal(server.readyState, 3)
  })

  t.test(`${kind}: the peer's close: the server sees its code`, async t => {
    const { server, close } = await pair(t)
    const closed = next(server, 'close')
    close(4321, 'bye')
    const [code, reason] = await closed
    t.equal(code, 4321)
    t.equal(String(reason), 'bye')
    t.equal(server.readyState, 3)
  })

  t.test(`${kind}: terminate: no handshake, close with 1006 on a later turn`, async t => {
    const { server } = await pair(t)
    let heard = false
    const closed = next(server, 'close').then(args => { heard = true; return args })
    server.terminate()
    t.equal(heard, false, 'not within the call')
    t.equal(server.readyState, 2)
    const [code] = await closed
    t.equal(code, 1006)
  })
}

for (const [kind, pair] of kinds) {
  t.test(`${kind}: a refused frame: the error (its code), CLOSING, then close with 1006 (the answer is never read)`, async t => {
    const { server, sendTooBig } = await pair(t)
    const error = next(server, 'error')
    const closed = next(server, 'close')
    sendTooBig()
    const [err] = await error
    t.match(err, { code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' })
    t.equal(server.readyState, 2, 'ws sent its close frame before the error')
    const [code] = await closed
    t.equal(code, 1006)
  })
}
