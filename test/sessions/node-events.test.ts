/** The node's one event emitter: typed names, listeners in order, unsubscribe, and a throwing listener contained. */
import t from 'tap'
import type { Log } from '../../sessions/log.js'
import { silentLog } from '../../sessions/log.js'
import { NodeEvents } from '../../sessions/node-events.js'

function recordingLog (): { log: Log, errors: Array<{ obj: object, msg?: string }> } {
  const errors: Array<{ obj: object, msg?: string }> = []
  const log: Log = { ...silentLog, error (obj, msg) { errors.push({ obj, msg }) }, child: () => log }
  return { log, errors }
}

t.test('listeners hear their own event, in the order they were added, with its arguments', async t => {
  const events = new NodeEvents(silentLog)
  const heard: string[] = []
  events.on('glasses.traffic', (direction, kind, bytes) => { heard.push(`first ${direction} ${kind} ${bytes}`) })
  events.on('glasses.traffic', (direction, kind) => { heard.push(`second ${direction} ${kind}`) })
  events.on('app.stopped', packageName => { heard.push(`stopped ${packageName}`) })
  events.emit('glasses.traffic', 'in', 'ping', 16)
  t.same(heard, ['first in ping 16', 'second in ping'])
})

t.test('an event nobody listens to costs nothing and throws nothing', async t => {
  const events = new NodeEvents(silentLog)
  t.doesNotThrow(() => events.emit('app.relayed', 'button_press'))
})

t.test('the returned function stops one listener, the others still hear', async t => {
  const events = new NodeEvents(silentLog)
  const heard: string[] = []
  const stop = events.on('app.relayed', stream => { heard.push(`a ${stream}`) })
  events.on('app.relayed', stream => { heard.push(`b ${stream}`) })
  stop()
  stop()
  events.emit('app.relayed', 'touch_event')
  t.same(heard, ['b touch_event'])
})

t.test('a listener that throws is logged; the emitter and later listeners go on', async t => {
  const { log, errors } = recordingLog()
  const events = new NodeEvents(log)
  const heard: number[] = []
  events.on('socket.close_sent', () => { throw new Error('broken listener') })
  events.on('socket.close_sent', (_side, code) => { heard.push(code) })
  t.doesNotThrow(() => events.emit('socket.close_sent', 'glasses', 4001))
  t.same(heard, [4001])
  t.equal(errors.length, 1)
  t.match(errors[0], { obj: { event: 'socket.close_sent' }, msg: 'event listener failed' })
})
