/** One app socket on /app-ws: a SocketChannel that learns its app from its `tpa_connection_init`. */
import type { SocketSide } from './node-events.js'
import type { CloseCodeValue } from '../protocol/close-codes.js'
import { SocketChannel, type ChannelSink } from './socket-channel.js'

/**
 * What a session's app side uses of one app socket. The managers depend on this,
 * not on the `ws`-backed class, so their unit tests can hand them an in-memory one
 * (test/managers/fake-app-channel.ts).
 */
export interface AppChannel {
  /** Set once the init is accepted. */
  packageName: string | null
  /** The opaque app session id the init named. */
  appSessionId: string | null
  readonly isOpen: boolean
  bind: (sink: AppChannelSink) => void
  unbind: () => void
  /** The bytes sent, 0 when nothing was. */
  send: <M extends { type: string }>(message: M) => number
  /** False when dropped (the app is behind) or closed. */
  sendDroppable: (data: Buffer) => boolean
  close: (code: CloseCodeValue, reason?: string) => void
  terminate: () => void
  /** True when the socket passed MAX_BAD_FRAMES in the last minute. */
  recordBadFrame: () => boolean
}

export type AppChannelSink = ChannelSink<AppChannel>

export class AppConnection extends SocketChannel implements AppChannel {
  packageName: string | null = null
  appSessionId: string | null = null

  get side (): SocketSide { return 'app' }
}
