/**
 * Every Redis key and channel Tether uses. Keys are hash-tagged so that each
 * script touches one slot of a Redis Cluster: a user's keys share `{u:<userId>}`,
 * a node's set of users `{n:<nodeId>}`, the node list `{nodes}` and the session
 * index `{idx}`.
 */
import type { Cluster, Redis } from 'ioredis'

/** One Redis server or a Redis Cluster: the commands Tether uses are the same on both. */
export type RedisClient = Redis | Cluster

const PREFIX = 'tether:'

const user = (userId: string): string => `${PREFIX}{u:${userId}}:`

export const keys = {
  /** Hash: who owns the user (nodeId, incarnation, token) and its last written summary. */
  owner: (userId: string) => `${user(userId)}own`,
  /** The user's fencing counter: every claim moves it on. */
  fence: (userId: string) => `${user(userId)}fence`,
  /** The session's last written snapshot, to resume from on another node. */
  state: (userId: string) => `${user(userId)}state`,
  apps: (userId: string) => `${user(userId)}apps`,
  /** The phone's settings and audio format. */
  settings: (userId: string) => `${user(userId)}user`,
  block: (userId: string) => `${user(userId)}block`,
  /** Sorted set (all scores 0, ordered by position) of the live sessions in one state. */
  index: (state: 'active' | 'grace') => `${PREFIX}{idx}:${state}`,
  /** Sorted set: positions of sessions of dead nodes, scored by when their kept state runs out. */
  expiring: `${PREFIX}{idx}:expiring`,
  /** Sorted set of node ids, scored by their last liveness write. */
  nodes: `${PREFIX}{nodes}:all`,
  /** A node's liveness: its incarnation and figures, expiring unless renewed. */
  node: (nodeId: string) => `${PREFIX}{nodes}:node:${nodeId}`,
  /** Held by the one node that settles a dead node's users. */
  reaper: (nodeId: string) => `${PREFIX}{nodes}:reap:${nodeId}`,
  /** The users a node owns, so they can be settled when it dies. */
  nodeUsers: (nodeId: string) => `${PREFIX}{n:${nodeId}}:users`
}

export const channels = {
  /** Requests to one node, and answers to the asker. */
  node: (nodeId: string) => `${PREFIX}rpc:${nodeId}`,
  /** Some session changed somewhere: admin feeds refresh. */
  changes: `${PREFIX}changes`
}
