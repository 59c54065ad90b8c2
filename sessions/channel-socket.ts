/**
 * The part of a server-side WebSocket that a SocketChannel uses, and nothing more.
 * `ws`'s WebSocket fits it as it is (the routes hand theirs straight in: no wrapper
 * per socket, and sockets arrive by the thousand a second); tests hand in the
 * in-memory `test/fake-socket.ts` instead, so the channel, the connections and the
 * session can be tested without a socket server.
 */

/** `readyState` of an open socket, as the WebSocket standard and `ws` number it. */
export const SOCKET_OPEN = 1

/** A frame as `ws` hands it over: one Buffer unless its `binaryType` says otherwise. */
export type SocketData = Buffer | ArrayBuffer | Buffer[]

/**
 * Listeners are called with the socket as `this`, as EventEmitter does, so one shared
 * function can serve every socket (see the static listeners of SocketChannel).
 */
export interface ChannelSocket {
  /** 1 while open; 2 once a close frame went either way; 3 once closed. */
  readonly readyState: number
  /** Bytes written but not yet taken by the network: grows while the peer does not read. */
  readonly bufferedAmount: number
  send (data: string | Buffer): void
  ping (): void
  /** Start the close handshake: send a close frame; `close` is emitted once the peer answers (or the socket is destroyed). */
  close (code: number, reason: string): void
  /** Destroy the socket without a close frame; `close` follows with 1006. */
  terminate (): void
  on (event: 'message', listener: (this: ChannelSocket, data: SocketData, isBinary: boolean) => void): unknown
  on (event: 'ping' | 'pong', listener: (this: ChannelSocket) => void): unknown
  on (event: 'close', listener: (this: ChannelSocket, code: number) => void): unknown
  /** A frame the WebSocket layer refused (its `code` starts with WS_ERR_), or a transport error. */
  on (event: 'error', listener: (this: ChannelSocket, error: Error & { code?: unknown }) => void): unknown
  once (event: 'close', listener: () => void): unknown
}
