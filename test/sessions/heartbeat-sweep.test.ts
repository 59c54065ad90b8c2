import t from 'tap'
import { HeartbeatSweep, type SweepMember } from '../../sessions/heartbeat-sweep.js'
import { silentLog } from '../../sessions/log.js'
import { delay, eventually } from '../helper.js'

class Counting implements SweepMember {
  visits = 0
  sweep (): void { this.visits += 1 }
}

t.test('the tick is a tenth of the shorter of the ping interval and the silence timeout', async t => {
  t.equal(new HeartbeatSweep({ pingIntervalMs: 25_000, silenceTimeoutMs: 75_000 }, silentLog).tickMs, 2500)
  t.equal(new HeartbeatSweep({ pingIntervalMs: 1000, silenceTimeoutMs: 150 }, silentLog).tickMs, 15)
  t.equal(new HeartbeatSweep({ pingIntervalMs: 5, silenceTimeoutMs: 5 }, silentLog).tickMs, 1, 'never zero')
})

t.test('members are visited while added and not after; the timer stops with the last one', async t => {
  const sweep = new HeartbeatSweep({ pingIntervalMs: 100, silenceTimeoutMs: 300 }, silentLog)
  const a = new Counting()
  const b = new Counting()
  sweep.add(a)
  sweep.add(b)
  await eventually(() => a.visits >= 3 && b.visits >= 3, 'both visited')
  sweep.remove(a)
  const frozen = a.visits
  await eventually(() => b.visits >= frozen + 3, 'b still visited')
  t.equal(a.visits, frozen, 'a removed member is not visited')
  sweep.remove(b)
  t.equal(sweep.size, 0)
  const last = b.visits
  await delay(60)
  t.equal(b.visits, last, 'nothing runs once the last member left')
  t.equal((sweep as unknown as { timer: unknown }).timer, null, 'and the interval is cleared')
})

t.test('a member that throws does not stop the others, and one may leave while visited', async t => {
  const sweep = new HeartbeatSweep({ pingIntervalMs: 50, silenceTimeoutMs: 150 }, silentLog)
  const leaving: SweepMember = { sweep: () => { sweep.remove(leaving) } }
  const broken: SweepMember = { sweep: () => { throw new Error('broken member') } }
  const fine = new Counting()
  sweep.add(leaving)
  sweep.add(broken)
  sweep.add(fine)
  await eventually(() => fine.visits >= 3, 'the good member keeps being visited')
  t.notOk(sweep.has(leaving), 'the member that left during its visit is gone')
  sweep.remove(broken)
  sweep.remove(fine)
})
