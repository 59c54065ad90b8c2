/**
 * What happens on a node, told to whoever listens (logs, metrics): the one way
 * Tether's layers report outward. Sessions, app services, sockets and the
 * ownership emit here; nothing they do depends on who listens.
 *
 * One emitter per app rather than `node:diagnostics_channel`, whose channels are
 * global to the process: tests and benchmarks run several apps in one process,
 * and each app's metrics must count only its own sessions. Node's EventEmitter is
 * not used because a throwing listener would throw into the session that emitted,
 * and its `error` event has a meaning of its own.
 */
import type { DisposeFailure, LifecycleEvent } from './lifecycle.js'
import type { Log } from './log.js'

/** user: start_app; restore: a fresh session; restart: after app grace; handover: the session moved here. */
export type StartReason = 'user' | 'restore' | 'restart' | 'handover'
/** Why a start failed: no init in time, the webhook failed, or the app's init was refused (wrong key). */
export type StartFailure = 'timeout' | 'webhook' | 'refused'

/** What a Redis operation or a request to another node was for: the `operation` label of the directory metrics. */
export type DirectoryOperation = 'claim' | 'takeover' | 'last_state' | 'write' | 'release' | 'liveness' | 'reassert' |
  'reap' | 'owner' | 'revoke' | 'page' | 'counts' | 'nodes' | 'handover' | 'detail' | 'delete' | 'yield' | 'forward'

/** `timeout`: a request to another node that got no answer in time (a Redis command that times out is an `error`). */
export type DirectoryOutcome = 'ok' | 'error' | 'timeout'

/** Which kind of client a socket belongs to. */
export type SocketSide = 'glasses' | 'app'

/** Every event a node emits, with its arguments. */
export interface NodeEventMap {
  /** A session's lifecycle transition (docs/ARCHITECTURE.md, the state diagram). */
  'session.lifecycle': [event: LifecycleEvent]
  /** A manager failed or timed out while its session was disposed. */
  'session.dispose_failed': [failure: DisposeFailure]
  /** One message with the glasses: kind is its type, `invalid` for a rejected frame, `audio` for binary. */
  'glasses.traffic': [direction: 'in' | 'out', kind: string, bytes: number]
  /** A WebSocket upgrade (glasses or app) answered with an HTTP error instead. */
  'upgrade.refused': [status: number, code: string]
  /** A new socket of a user refused 409 during that user's takeover cool-down. */
  'session.takeover_refused': []
  /** The server closed a socket with this code. */
  'socket.close_sent': [side: SocketSide, code: number]
  /** An app socket's `tpa_connection_init` refused, with the code it was told. */
  'app.init_refused': [code: string]
  'app.start_requested': [packageName: string, reason: StartReason]
  'app.started': [packageName: string, reason: StartReason]
  'app.start_failed': [packageName: string, failure: StartFailure]
  'app.stopped': [packageName: string]
  /** A glasses message of this base stream went to an app. */
  'app.relayed': [stream: string]
  /** An audio chunk an app was too far behind to take. */
  'app.audio_dropped': [packageName: string]
  /** A Redis operation or a request to another node, with its outcome and duration. */
  'directory.operation': [operation: DirectoryOperation, outcome: DirectoryOutcome, seconds: number]
}

export type NodeEventName = keyof NodeEventMap
export type NodeEventListener<K extends NodeEventName> = (...args: NodeEventMap[K]) => void

type Listeners = { [K in NodeEventName]?: Array<NodeEventListener<K>> }

export class NodeEvents {
  private readonly listeners: Listeners = {}

  constructor (private readonly log: Log) {}

  /** Listen to one event; returns the function that stops listening. */
  on<K extends NodeEventName>(name: K, listener: NodeEventListener<K>): () => void {
    const list: Array<NodeEventListener<K>> = this.listeners[name] ??= []
    list.push(listener)
    return () => {
      const index = list.indexOf(listener)
      if (index >= 0) list.splice(index, 1)
    }
  }

  /** Tell every listener; a listener that throws is logged and never reaches the emitter. */
  emit<K extends NodeEventName>(name: K, ...args: NodeEventMap[K]): void {
    const list: Array<NodeEventListener<K>> | undefined = this.listeners[name]
    if (list === undefined) return
    for (const listener of list) {
      try {
        listener(...args)
      } catch (error) {
        this.log.error({ err: error, event: name }, 'event listener failed')
      }
    }
  }
}
