/**
 * `GET /app-ws` (docs/PROTOCOL.md 2.2): a plain upgrade; the app's first message must be
 * its `tpa_connection_init`, checked in the documented order, within
 * APP_INIT_TIMEOUT_MS; the apps service admits it to its session's app manager or says why not.
 */
import type {} from '@fastify/websocket'
import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../config.js'
import type { AppConnectionInit } from '../protocol/app-messages.js'
import { CloseCode } from '../protocol/close-codes.js'
import type { AppConnectionErrorCode } from '../protocol/error-codes.js'
import { parseAppFrame } from '../protocol/parse-frame.js'
import { AppConnection } from '../sessions/app-connection.js'
import { releaseUpgrade } from '../http/release-upgrade.js'
import { isoNow } from '../protocol/timestamp.js'

const appWsRoutes: FastifyPluginAsync<{ config: Config }> = async function (fastify, { config }) {
  const apps = fastify.apps

  /** An init that names no valid app (bad key, or not an init at all) spends the address's budget of refusals. */
  const ADDRESS_COUNTED = new Set<AppConnectionErrorCode>(['INVALID_API_KEY', 'INVALID_INIT'])

  function refuse (connection: AppConnection, address: string, code: AppConnectionErrorCode, message: string): void {
    fastify.events.emit('app.init_refused', code)
    if (ADDRESS_COUNTED.has(code)) fastify.upgradeGuard.countRefusal(address)
    connection.send({ type: 'tpa_connection_error', code, message, timestamp: isoNow() })
    connection.unbind()
    connection.close(CloseCode.POLICY_VIOLATION, code)
  }

  fastify.get('/app-ws', {
    websocket: true,
    config: { websocketRoute: true },
    onRequest: async (request, reply) => {
      if (!request.ws) return
      await (fastify.upgradeGuard.addressLimit(request, reply) ?? fastify.upgradeGuard.refuseOrigin(request, reply))
    }
  }, (socket, request) => {
    const address = request.ip
    releaseUpgrade(socket, request.raw)
    const connection = new AppConnection(socket, config, fastify.events)
    const timer = setTimeout(() => {
      connection.unbind()
      connection.close(CloseCode.POLICY_VIOLATION, 'no tpa_connection_init in time')
    }, config.appInitTimeoutMs)
    connection.bind({
      onText (channel, text) {
        clearTimeout(timer)
        const parsed = parseAppFrame(text, config.maxJsonDepth)
        if (!parsed.ok || parsed.message.type !== 'tpa_connection_init') {
          refuse(channel, address, 'INVALID_INIT', 'the first message must be a valid tpa_connection_init')
          return
        }
        try {
          const refusal = apps.admit(parsed.message as AppConnectionInit, channel)
          if (refusal !== null) refuse(channel, address, refusal.code, refusal.message)
        } catch (error) {
          fastify.log.error({ err: error }, 'app init failed')
          channel.close(CloseCode.INTERNAL_ERROR)
        }
      },
      onBinary (channel) {
        clearTimeout(timer)
        refuse(channel, address, 'INVALID_INIT', 'the first message must be a valid tpa_connection_init')
      },
      onClose () { clearTimeout(timer) }
    })
  })
}

export default appWsRoutes
