/**
 * After an upgrade, let go of everything that belongs to the HTTP request: a
 * session outlives its upgrade by hours, and a retained request, response and
 * Fastify request/reply cost kilobytes per socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'

/** Node's own link from a socket to the response being written on it (not in its typings). */
interface HttpSocket extends Socket { _httpMessage?: ServerResponse | null }

/**
 * Drop @fastify/websocket's per-socket `error` listener (a closure over the
 * request and reply; the caller's SocketChannel handles socket errors itself)
 * and detach the upgrade's ServerResponse, which @fastify/websocket assigned to
 * the TCP socket so that a refusal could be written as HTTP and which would
 * otherwise stay reachable from the socket, with the request behind it.
 */
export function releaseUpgrade (socket: WebSocket, request: IncomingMessage): void {
  socket.removeAllListeners('error')
  // Absent under app.injectWS, whose request has no real socket.
  const tcp = request.socket as HttpSocket | undefined
  if (tcp?._httpMessage != null) tcp._httpMessage.detachSocket(tcp)
}
