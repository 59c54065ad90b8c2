/** One glasses socket: a SocketChannel that knows whose it is and how it was acked. */
import type { ChannelSocket } from './channel-socket.js'
import type { NodeEvents, SocketSide } from './node-events.js'
import { SocketChannel, type ChannelLimits, type ChannelSink } from './socket-channel.js'

/** Who the token said this socket belongs to. */
export interface GlassesIdentity {
  /** Trimmed, lower-cased `email` claim. */
  userId: string
  /** The `sub` claim, recorded for audit. */
  subject: string
  /** When the token stops being valid (its `exp`), or null when it has none. */
  expiresAt: number | null
}

/** How many distinct unlisted types one socket is told about. */
const MAX_UNLISTED_TYPES = 32

export type ConnectionSink = ChannelSink<GlassesConnection>

export class GlassesConnection extends SocketChannel {
  /** Set by the session when it acks, so a `connection_init` re-ack says the same thing. */
  ackedAsReconnection = false

  /** Unlisted message types already answered with UNKNOWN_TYPE on this socket; made at the first. */
  private unlistedTypes: Set<string> | null = null

  constructor (socket: ChannelSocket, readonly identity: GlassesIdentity, limits: ChannelLimits, events?: NodeEvents) {
    super(socket, limits, events)
  }

  get side (): SocketSide { return 'glasses' }

  /**
   * True the first time this socket sends a message of an unlisted type (it is told once), false after, and
   * false for every type past the first MAX_UNLISTED_TYPES, so a client cannot grow the set.
   */
  firstOfUnlistedType (type: string): boolean {
    this.unlistedTypes ??= new Set()
    if (this.unlistedTypes.has(type) || this.unlistedTypes.size >= MAX_UNLISTED_TYPES) return false
    this.unlistedTypes.add(type)
    return true
  }
}
