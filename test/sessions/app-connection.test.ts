/**
 * AppConnection over the in-memory FakeSocket, handed on the way /app-ws does:
 * the route owns the socket until the app's init, then binds the app manager's
 * sink from inside that delivery, and whatever the app sent right behind its
 * init reaches the manager, in order.
 */
import t from 'tap'
import { AppConnection, type AppChannelSink } from '../../sessions/app-connection.js'
import { FakeSocket } from '../fake-socket.js'

const limits = { maxBufferedBytes: 1 << 20, maxBadFrames: 3 }

t.test('an app socket learns its app at init and is handed on with its early frames', async t => {
  const socket = new FakeSocket()
  const connection = new AppConnection(socket, limits)
  t.equal(connection.packageName, null)
  t.equal(connection.appSessionId, null)

  // The app does not wait: its init and two more frames arrive before the route binds.
  socket.peerSends({ type: 'tpa_connection_init', packageName: 'com.app', sessionId: 'u@x.io-com.app' })
  socket.peerSends({ type: 'subscription_update', subscriptions: [] })
  socket.peerSendsBinary(Buffer.from([7]))

  const manager: string[] = []
  const managerSink: AppChannelSink = {
    onText: (c, text) => manager.push(`${c.packageName ?? '?'}:${(JSON.parse(text) as { type: string }).type}`),
    onBinary: (c, data) => manager.push(`${c.packageName ?? '?'}:binary ${data.length}`),
    onClose: (c, code) => manager.push(`${c.packageName ?? '?'}:close ${code}`)
  }
  const route: string[] = []
  connection.bind({
    onText (channel, text) {
      route.push(text)
      const init = JSON.parse(text) as { packageName: string, sessionId: string }
      channel.packageName = init.packageName
      channel.appSessionId = init.sessionId
      channel.bind(managerSink)
    },
    onBinary () { route.push('binary') },
    onClose () { route.push('close') }
  })
  t.equal(route.length, 1, 'the route saw the init only')
  t.same(manager, ['com.app:subscription_update', 'com.app:binary 1'], 'the manager got the rest, in order')

  socket.peerCloses(1000)
  await socket.closed()
  t.same(manager.at(-1), 'com.app:close 1000', 'and the close')
  t.equal(route.length, 1)
})
