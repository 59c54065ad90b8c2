/**
 * The audio manager without a socket server: PCM relayed to `audio_chunk` subscribers,
 * LC3 decoded by the real decoding (inline) when configured or remembered for the
 * user, and nothing decoded or relayed when no app wants audio.
 */
import t from 'tap'
import { PCM_BYTES_PER_FRAME } from '../../audio/lc3-decoder.js'
import { createLc3Decoding } from '../../audio/lc3-decoding.js'
import { AudioManager } from '../../managers/audio-manager.js'
import { MicrophoneManager } from '../../managers/microphone-manager.js'
import { SubscriptionManager } from '../../managers/subscription-manager.js'
import { MemoryUserStore, type AudioFormat } from '../../sessions/user-store.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { lc3Frames, referencePcm, samples, snrAgainstReference, type VectorFrameSize } from '../lc3-vectors.js'
import { FakeSession, RecordingOutlet } from './fake-session.js'

/** The memory directory, counting format writes, or failing its reads. */
class Directory extends MemoryUserStore {
  formatWrites = 0
  failReads = false

  override async setAudioFormat (userId: string, format: AudioFormat): Promise<void> {
    this.formatWrites += 1
    await super.setAudioFormat(userId, format)
  }

  override async audioFormat (userId: string): Promise<AudioFormat | null> {
    if (this.failReads) throw new Error('directory away')
    return await super.audioFormat(userId)
  }
}

function setup (t: Teardown) {
  const session = new FakeSession()
  const subscriptions = new SubscriptionManager()
  const outlet = new RecordingOutlet()
  subscriptions.outlet = outlet
  const decodingErrors: Error[] = []
  const decoding = createLc3Decoding({ thread: 'main', onError: error => { decodingErrors.push(error) } })
  t.teardown(async () => { await decoding.close() })
  const directory = new Directory()
  const microphone = new MicrophoneManager(session, subscriptions, { micDebounceMs: 10, micOffDelayMs: 50, micMinIntervalMs: 50, micRefreshMs: 5000 })
  const audio = new AudioManager(session, subscriptions, outlet, decoding, directory, microphone)
  t.teardown(() => { audio.dispose(); microphone.dispose() })
  /** The PCM an app received, joined. */
  const pcmOf = (packageName: string): Buffer => Buffer.concat(outlet.audio.filter(a => a.packageName === packageName).map(a => a.data))
  return { session, subscriptions, outlet, decoding, decodingErrors, directory, microphone, audio, pcmOf }
}

/** An LC3 vector cut into phone messages of a varying number of whole frames. */
function lc3Messages (size: VectorFrameSize, counts = [3, 1, 7, 10, 2, 9, 5]): Buffer[] {
  const frames = lc3Frames(size)
  const out: Buffer[] = []
  for (let offset = 0, i = 0; offset < frames.length; i += 1) {
    const n = counts[i % counts.length] as number
    out.push(Buffer.from(frames.subarray(offset, offset + n * size)))
    offset += n * size
  }
  return out
}

const FRAMES_IN_VECTOR = 201

const bytes = (...values: number[]): Buffer => Buffer.from(values)

t.test('PCM: every phone message to every audio_chunk subscriber, as whole samples', async t => {
  const { subscriptions, outlet, audio, directory, pcmOf } = setup(t)
  audio.configure({ format: 'pcm' })
  subscriptions.set('com.a', ['audio_chunk'])
  subscriptions.set('com.b', ['AUDIO_CHUNK'])
  subscriptions.set('com.c', ['transcription'])
  audio.handleBinary(bytes(1, 2, 3, 4))
  t.same(outlet.audio.map(a => [a.packageName, [...a.data]]), [['com.a', [1, 2, 3, 4]], ['com.b', [1, 2, 3, 4]]],
    'synchronously, to the audio subscribers only')
  audio.handleBinary(bytes(5, 6, 7))
  audio.handleBinary(bytes(8, 9, 10))
  audio.handleBinary(bytes(11))
  audio.handleBinary(bytes(12))
  t.same(outlet.audio.filter(a => a.packageName === 'com.a').map(a => [...a.data]), [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10], [11, 12]],
    'an odd byte waits for the next message; a lone byte sends nothing')
  t.same([...pcmOf('com.b')], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'nothing lost or repeated')
  t.match(audio.snapshot(), { format: { format: 'pcm' }, chunksRelayed: 8, pcmBytesOut: 24, framesDecoded: 0, subscribers: ['com.a', 'com.b'] })
  t.same(await directory.audioFormat('unit@example.com'), { format: 'pcm' }, 'the format is remembered for the user')
})

t.test('LC3 once configured: decoded in order by the real decoder, the same PCM to each subscriber', async t => {
  const { subscriptions, audio, decoding, decodingErrors, directory, pcmOf } = setup(t)
  subscriptions.set('com.a', ['audio_chunk'])
  subscriptions.set('com.b', ['audio_chunk'])
  audio.configure({ format: 'lc3', frameSizeBytes: 20 })
  const messages = lc3Messages(20)
  for (const message of messages) audio.handleBinary(message)
  const pcm = pcmOf('com.a')
  t.equal(pcm.length, FRAMES_IN_VECTOR * PCM_BYTES_PER_FRAME, '320 bytes of PCM per frame')
  const snr = snrAgainstReference(samples(pcm), samples(referencePcm(20)))
  t.ok(snr > 80, `matches the reference decode (SNR ${snr.toFixed(1)} dB)`)
  t.same(pcmOf('com.b'), pcm)
  t.match(audio.snapshot(), { format: { format: 'lc3', frameSizeBytes: 20 }, framesDecoded: FRAMES_IN_VECTOR, chunksRelayed: 2 * messages.length })
  t.equal(decoding.stats().streams, 1, 'one decoder stream for the session')
  t.same(await directory.audioFormat('unit@example.com'), { format: 'lc3', frameSizeBytes: 20 })
  t.same(decodingErrors, [])
})

t.test('before any configure: the user\'s last format is read at the first audio, and what came meanwhile is held', async t => {
  const { subscriptions, outlet, audio, directory, pcmOf } = setup(t)
  await directory.setAudioFormat('unit@example.com', { format: 'lc3', frameSizeBytes: 40 })
  subscriptions.set('com.a', ['audio_chunk'])
  const messages = lc3Messages(40)
  audio.handleBinary(messages[0] as Buffer)
  audio.handleBinary(messages[1] as Buffer)
  t.same(outlet.audio, [], 'held while the directory answers')
  await eventually(() => outlet.audio.length === 2, 'the held messages decoded')
  for (const message of messages.slice(2)) audio.handleBinary(message)
  const pcm = pcmOf('com.a')
  t.equal(pcm.length, FRAMES_IN_VECTOR * PCM_BYTES_PER_FRAME, 'decoded as LC3, not passed on as PCM')
  t.ok(snrAgainstReference(samples(pcm), samples(referencePcm(40))) > 80, 'held and later messages in order')
})

t.test('no stored format, or a directory that fails: PCM', async t => {
  for (const failReads of [false, true]) {
    const { subscriptions, outlet, audio, directory } = setup(t)
    directory.failReads = failReads
    subscriptions.set('com.a', ['audio_chunk'])
    audio.handleBinary(bytes(1, 2))
    audio.handleBinary(bytes(3, 4))
    await eventually(() => outlet.audio.length === 2, 'relayed')
    t.same(outlet.audio.map(a => [...a.data]), [[1, 2], [3, 4]], failReads ? 'directory away: PCM' : 'never configured: PCM')
    t.equal(directory.formatWrites, 0, 'reading the format writes nothing')
  }
})

t.test('audio no app wants: not decoded, not relayed, and the phone is told "off"', async t => {
  const { session, subscriptions, outlet, audio, decoding } = setup(t)
  subscriptions.set('com.t', ['transcription'])
  audio.configure({ format: 'lc3', frameSizeBytes: 40 })
  const messages = lc3Messages(40)
  audio.handleBinary(messages[0] as Buffer)
  audio.handleBinary(messages[1] as Buffer)
  t.same(outlet.audio, [])
  t.equal(decoding.stats().framesDecoded, 0, 'not decoded')
  t.equal(decoding.stats().streams, 0, 'no decoder opened')
  t.match(session.of('microphone_state_change'), [{ requiredData: [], bypassVad: false }], 'told to stop, at once')
  t.match(audio.snapshot(), { unwantedChunks: 2, chunksRelayed: 0 })

  subscriptions.set('com.a', ['audio_chunk'])
  audio.handleBinary(messages[2] as Buffer)
  t.equal(decoding.stats().streams, 1, 'a listener: a decoder')
  t.equal(outlet.audio.length, 1)
  subscriptions.remove('com.a')
  audio.handleBinary(messages[3] as Buffer)
  t.equal(decoding.stats().streams, 0, 'nobody listens again: the decoder is dropped (its state would be stale)')
  t.equal(outlet.audio.length, 1)
})

t.test('a configure that changes the format starts afresh; the same format again is no news', async t => {
  const { subscriptions, outlet, audio, decoding, directory } = setup(t)
  subscriptions.set('com.a', ['audio_chunk'])
  audio.configure({ format: 'lc3', frameSizeBytes: 60 })
  audio.handleBinary(lc3Messages(60)[0] as Buffer)
  t.equal(decoding.stats().streams, 1)
  audio.configure({ format: 'lc3', frameSizeBytes: 60 })
  t.equal(decoding.stats().streams, 1, 'the same format: the decoder is kept')
  t.equal(directory.formatWrites, 1, 'and not written again')
  audio.configure({ format: 'pcm' })
  t.equal(decoding.stats().streams, 0, 'another format: the decoder is dropped')
  t.equal(directory.formatWrites, 2)
  outlet.audio.length = 0
  audio.handleBinary(bytes(1, 2, 3))
  audio.configure({ format: 'lc3', frameSizeBytes: 20 })
  audio.configure({ format: 'pcm' })
  audio.handleBinary(bytes(4, 5))
  t.same(outlet.audio.map(a => [...a.data]), [[1, 2], [4, 5]], 'a byte carried from before a format change is dropped')
})

t.test('dispose: the decoder closed, held audio dropped, nothing relayed after', async t => {
  const first = setup(t)
  first.subscriptions.set('com.a', ['audio_chunk'])
  first.audio.configure({ format: 'lc3', frameSizeBytes: 20 })
  first.audio.handleBinary(lc3Messages(20)[0] as Buffer)
  t.equal(first.decoding.stats().streams, 1)
  first.audio.dispose()
  first.audio.dispose()
  t.equal(first.decoding.stats().streams, 0, 'closed, and dispose may be called twice')
  const relayed = first.outlet.audio.length
  first.audio.handleBinary(lc3Messages(20)[1] as Buffer)
  t.equal(first.outlet.audio.length, relayed, 'nothing after dispose')

  const second = setup(t)
  second.subscriptions.set('com.a', ['audio_chunk'])
  second.audio.handleBinary(bytes(1, 2))
  second.audio.dispose()
  await delay(20)
  t.same(second.outlet.audio, [], 'audio held for the directory\'s answer is dropped at dispose')
})

t.test('after dispose, neither a late frame nor a configure opens a decoder or stores a format', async t => {
  const { subscriptions, audio, directory, decoding, session } = setup(t)
  subscriptions.set('com.a', ['audio_chunk'])
  audio.dispose()
  audio.configure({ format: 'lc3', frameSizeBytes: 40 })
  audio.handleBinary(Buffer.from(lc3Frames(40).subarray(0, 40)))
  await delay(50)
  t.equal(directory.formatWrites, 0, 'no format stored')
  t.equal(await directory.audioFormat(session.userId), null)
  t.equal(decoding.stats().framesDecoded, 0, 'nothing decoded')
})
