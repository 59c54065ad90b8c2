/**
 * Real phones end to end, audio: the microphone state the phone obeys, and its
 * LC3 decoded to the reference PCM at an @mentra/sdk app.
 */
import t from 'tap'
import { delay, eventually } from '../helper.js'
import { lc3Frames, referencePcm, samples, snrAgainstReference, type VectorFrameSize } from '../lc3-vectors.js'
import { pcmOf, phone, world } from '../phone-world.js'
import type { RunningApp } from '../sdk-app.js'

t.test('microphone: on when an app takes audio or transcripts, off after the hold-down, re-sent after a resume', async t => {
  const { server, sdk } = await world(t, [
    { packageName: 'com.example.ears', options: { withAudio: true } },
    { packageName: 'com.example.scribe', entry: { type: 'background' } }
  ])
  const [ears, scribe] = sdk as [RunningApp, RunningApp]
  const p = await phone(t, server, 'mic@example.com', { lc3: { frames: lc3Frames(20), frameSizeBytes: 20 } })
  // The phone's first device state says the glasses are connected: the microphone state follows.
  await eventually(() => p.messages('microphone_state_change').length >= 1, 'the state once the glasses are connected')
  t.same(p.micState.requiredData, [], 'off until an app needs it')

  await p.startApp(scribe.packageName)
  await eventually(() => p.micState.requiredData.includes('transcription'), 'transcripts asked for', 3000)
  t.equal(p.micState.bypassVad, false)
  t.notOk(p.isStreamingAudio, 'transcripts alone need no audio')

  await p.request('POST', `/apps/${ears.packageName}/start`)
  await eventually(() => p.micState.requiredData.includes('pcm'), 'audio asked for', 3000)
  t.equal(p.micState.bypassVad, true, 'audio_chunk bypasses the phone\'s VAD')
  // The first LC3 stream starts the node's decoding worker: seconds under tap's TypeScript loader.
  await eventually(() => ears.app.of('audio_chunk').length > 3, 'audio reaches the app', 10_000)

  // The hold-down starts when the last subscriber leaves, which is after this moment.
  const stoppingAt = Date.now()
  await p.stopApp(ears.packageName)
  await p.stopApp(scribe.packageName)
  await eventually(() => p.micState.requiredData.length === 0, 'off', 3000)
  t.ok(Date.now() - stoppingAt >= 300, 'not before the hold-down')
  const audioStopped = p.audioMessagesSent
  await delay(200)
  t.ok(p.audioMessagesSent - audioStopped <= 1, 'the phone stopped streaming')

  const before = p.messages('microphone_state_change').length
  server.app.sessions.get('mic@example.com')?.currentConnection?.terminate()
  await p.waitForAcks(2, 3000)
  await eventually(() => p.messages('microphone_state_change').length > before, 're-sent after the resume', 3000)
  t.same(p.micState.requiredData, [], 'and it says off')
})

for (const size of [20, 40, 60] as VectorFrameSize[]) {
  t.test(`LC3 at ${size} bytes a frame reaches the app as the reference PCM`, async t => {
    const { server, sdk } = await world(t, [{ packageName: 'com.example.ears', options: { withAudio: true } }])
    const ears = sdk[0] as RunningApp
    const frames = lc3Frames(size)
    const frameCount = frames.length / size
    const p = await phone(t, server, `lc3-${size}@example.com`, { lc3: { frames, frameSizeBytes: size }, framesPerMessage: 7 })
    await eventually(() => p.restCalls.some(c => c.path === '/api/client/audio/configure' && c.status === 200), 'configured')
    await p.startApp(ears.packageName)
    await eventually(() => pcmOf(ears.app).length >= frameCount * 320, 'the whole vector decoded', 10_000)
    const decoded = samples(pcmOf(ears.app).subarray(0, frameCount * 320))
    const snr = snrAgainstReference(decoded, samples(referencePcm(size)))
    t.ok(snr > 60, `SNR ${snr.toFixed(1)} dB against the reference decode`)
    const audio = server.app.sessions.get(`lc3-${size}@example.com`)?.managers.find(m => m.name === 'audio')?.snapshot()
    t.match(audio, { format: { format: 'lc3', frameSizeBytes: size } })
  })
}
