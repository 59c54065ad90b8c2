/** One glasses socket: a SocketChannel that knows whose it is and how it was acked. */
import type { WebSocket } from 'ws'
import { SocketChannel, type ChannelLimits, type ChannelObserver, type ChannelSink } from './socket-channel.js'

/** Who the token said this socket belongs to. */
export interface GlassesIdentity {
  /** Trimmed, lower-cased `email` claim. */
  userId: string
  /** The `sub` claim, recorded for audit. */
  subject: string
  /** When the token stops being valid (its `exp`), or null when it has none. */
  expiresAt: number | null
}

export type ConnectionSink = ChannelSink<GlassesConnection>

export class GlassesConnection extends SocketChannel {
  /** Set by the session when it acks, so a `connection_init` re-ack says the same thing. */
  ackedAsReconnection = false

  constructor (socket: WebSocket, readonly identity: GlassesIdentity, limits: ChannelLimits, observer?: ChannelObserver) {
    super(socket, limits, observer)
  }
}
