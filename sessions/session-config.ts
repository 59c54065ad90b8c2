import type { Config } from '../config.js'

/** The part of the configuration a session and its managers read. */
export type SessionConfig = Pick<Config,
  'gracePeriodMs' | 'pingIntervalMs' | 'silenceTimeoutMs' | 'maxBadFrames' | 'maxBufferedBytes' | 'maxJsonDepth' |
  'managerDisposeTimeoutMs' | 'nodeId' | 'tokenClockToleranceMs' | 'takeoverLimit' | 'takeoverWindowMs' | 'takeoverCooldownMs'>
