/** One app socket on /app-ws: a SocketChannel that learns its app from its `tpa_connection_init`. */
import type { SocketSide } from './node-events.js'
import { SocketChannel, type ChannelSink } from './socket-channel.js'

export type AppConnectionSink = ChannelSink<AppConnection>

export class AppConnection extends SocketChannel {
  /** Set once the init is accepted. */
  packageName: string | null = null
  /** The opaque app session id the init named. */
  appSessionId: string | null = null

  get side (): SocketSide { return 'app' }
}
