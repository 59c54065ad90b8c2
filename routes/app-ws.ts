/**
 * `GET /app-ws` (docs/PROTOCOL.md 2.2): a plain upgrade; the app's first message must be
 * its `tpa_connection_init`, checked in the documented order, within
 * APP_INIT_TIMEOUT_MS. An accepted socket is handed to its session's app manager.
 */
import type {} from '@fastify/websocket'
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'
import type { AppConnectionInit } from '../protocol/app-messages.js'
import { CloseCode } from '../protocol/close-codes.js'
import { parseAppFrame } from '../protocol/parse-frame.js'
import { AppConnection } from '../sessions/app-connection.js'
import { releaseUpgrade } from './release-upgrade.js'

/** `code` of `tpa_connection_error` (docs/PROTOCOL.md 2.2). */
export type AppConnectionErrorCode = 'INVALID_API_KEY' | 'SESSION_NOT_FOUND' | 'APP_NOT_STARTED' | 'INVALID_INIT'

const appWsRoutes: FastifyPluginAsync<{ config: Config }> = async function (fastify, { config }) {
  const apps = fastify.apps

  function refuse (connection: AppConnection, code: AppConnectionErrorCode, message: string): void {
    fastify.serviceMetrics.appInitRefusals.inc({ code })
    connection.send({ type: 'tpa_connection_error', code, message, timestamp: new Date().toISOString() })
    connection.unbind()
    connection.close(CloseCode.POLICY_VIOLATION, code)
  }

  /** The checks of docs/PROTOCOL.md 2.2, in its order. */
  function admit (connection: AppConnection, init: AppConnectionInit): void {
    const slot = apps.slots.get(init.sessionId)
    if (apps.verifyKey(init.packageName, init.apiKey) === null) {
      refuse(connection, 'INVALID_API_KEY', 'unknown package or bad API key')
      // The app the session waits for holds the wrong key: its start cannot succeed.
      if (slot?.packageName === init.packageName) slot.endpoint.refused(init.packageName)
      return
    }
    if (slot === undefined) {
      refuse(connection, 'SESSION_NOT_FOUND', 'no such session')
      return
    }
    if (slot.packageName !== init.packageName || !slot.endpoint.accept(init.packageName, connection)) {
      refuse(connection, 'APP_NOT_STARTED', 'this app is not started for that session')
    }
  }

  fastify.get('/app-ws', {
    websocket: true,
    config: { websocketRoute: true },
    onRequest: async (request, reply) => {
      if (!request.ws) return
      await fastify.upgradeGuard.addressLimit.call(fastify, request, reply)
      await fastify.upgradeGuard.refuseOrigin(request, reply)
    }
  }, (socket, request) => {
    releaseUpgrade(socket, request.raw)
    const connection = new AppConnection(socket, config, {
      onCloseSent: code => fastify.serviceMetrics.appCloseCodesSent.inc({ code })
    })
    const timer = setTimeout(() => {
      connection.unbind()
      connection.close(CloseCode.POLICY_VIOLATION, 'no tpa_connection_init in time')
    }, config.appInitTimeoutMs)
    connection.bind({
      onText (channel, text) {
        clearTimeout(timer)
        const parsed = parseAppFrame(text, config.maxJsonDepth)
        if (!parsed.ok || parsed.message.type !== 'tpa_connection_init') {
          refuse(channel, 'INVALID_INIT', 'the first message must be a valid tpa_connection_init')
          return
        }
        try {
          admit(channel, parsed.message as AppConnectionInit)
        } catch (error) {
          fastify.log.error({ err: error }, 'app init failed')
          channel.close(CloseCode.INTERNAL_ERROR)
        }
      },
      onBinary (channel) {
        clearTimeout(timer)
        refuse(channel, 'INVALID_INIT', 'the first message must be a valid tpa_connection_init')
      },
      onClose () { clearTimeout(timer) }
    })
  })
}

export default appWsRoutes
