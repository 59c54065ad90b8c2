/**
 * Binary audio from the phone (docs/PROTOCOL.md 1.7): PCM16 LE
 * until the phone configures LC3, then N whole LC3 frames a message, decoded
 * by one stateful decoder per session. Apps subscribed to `audio_chunk` get
 * PCM, one binary message per phone message; a slow app loses chunks (counted)
 * rather than buffering them without bound. Audio no app needs is not decoded,
 * and the microphone manager tells the phone to stop. Counting of what arrived
 * is SessionStats'; this manager counts what it decoded and relayed.
 *
 * The format is the user's, not only the session's: a new session starts with
 * the one the user last configured (the phone may be streaming already).
 */
import { PCM_BYTES_PER_FRAME } from '../audio/lc3-decoder.js'
import type { Lc3Decoding, StreamDecoder } from '../audio/lc3-decoding.js'
import type { AudioFormat, UserStore } from '../sessions/user-store.js'
import type { Manager, SessionContext } from '../sessions/manager.js'
import type { MicrophoneManager } from './microphone-manager.js'
import { AUDIO_STREAM } from './streams.js'
import type { AppOutlet, SubscriptionManager } from './subscription-manager.js'

/** Messages held while the user's last format is being read (a few ms at most). */
const MAX_HELD = 64

export class AudioManager implements Manager {
  readonly name = 'audio'
  private format: AudioFormat = { format: 'pcm' }
  /** Set once the user's stored format is known (or a configure came first). */
  private formatKnown = false
  private reading = false
  private held: Buffer[] | null = null
  private decoder: StreamDecoder | null = null
  /** PCM mode: an odd trailing byte carried to the next message. */
  private carry: Buffer | null = null
  private chunksRelayed = 0
  private pcmBytesOut = 0
  private framesDecoded = 0
  private unwanted = 0
  private disposed = false

  constructor (
    private readonly session: SessionContext,
    private readonly subscriptions: SubscriptionManager,
    private readonly outlet: AppOutlet,
    private readonly decoding: Lc3Decoding,
    private readonly userStore: UserStore,
    private readonly microphone: MicrophoneManager
  ) {}

  /** `POST /api/client/audio/configure`: the session's format from now on, remembered for the user. */
  configure (format: AudioFormat): void {
    // A call racing the session's end changes nothing: no decoder to open, no format to store.
    if (this.disposed) return
    // The phone configures after every ack: a format already known and unchanged is no news to store.
    const unchanged = this.formatKnown && JSON.stringify(format) === JSON.stringify(this.format)
    this.format = format
    if (unchanged) return
    this.dropDecoder()
    this.known()
    this.userStore.setAudioFormat(this.session.userId, format).catch((error: unknown) => {
      this.session.log.warn({ err: error }, 'could not remember the user\'s audio format')
    })
  }

  handleBinary (data: Buffer): void {
    // After dispose a late frame must not open a decoder stream nobody would close.
    if (this.disposed) return
    if (!this.formatKnown) {
      this.held ??= []
      if (this.held.length < MAX_HELD) this.held.push(data)
      this.readStoredFormat()
      return
    }
    if (this.subscriptions.subscribersOf(AUDIO_STREAM).length === 0) {
      this.unwanted += 1
      // A decoder that skipped frames has stale state: the next listener starts from a fresh one.
      this.dropDecoder()
      this.microphone.unwantedAudio()
      return
    }
    if (this.format.format === 'lc3') {
      this.decoder ??= this.decoding.open(this.format.frameSizeBytes, pcm => this.relay(pcm))
      this.decoder.push(data)
      return
    }
    this.relay(this.wholeSamples(data))
  }

  snapshot (): unknown {
    return {
      format: this.format,
      chunksRelayed: this.chunksRelayed,
      pcmBytesOut: this.pcmBytesOut,
      framesDecoded: this.framesDecoded,
      unwantedChunks: this.unwanted,
      subscribers: this.subscriptions.subscribersOf(AUDIO_STREAM).map(s => s.packageName)
    }
  }

  dispose (): void {
    this.disposed = true
    this.held = null
    this.dropDecoder()
  }

  /**
   * Audio before any configure: the phone may be streaming in the format it set for an earlier
   * session of this user. Read at the first audio, not at creation: most sessions never stream.
   */
  private readStoredFormat (): void {
    if (this.reading) return
    this.reading = true
    this.userStore.audioFormat(this.session.userId).then(stored => {
      if (!this.formatKnown && stored !== null) this.format = stored
      this.known()
    }, (error: unknown) => {
      this.session.log.warn({ err: error }, 'could not read the user\'s audio format: PCM until configured')
      this.known()
    })
  }

  private known (): void {
    if (this.formatKnown || this.disposed) return
    this.formatKnown = true
    const held = this.held
    this.held = null
    for (const data of held ?? []) this.handleBinary(data)
  }

  private relay (pcm: Buffer): void {
    if (this.disposed || pcm.length === 0) return
    if (this.format.format === 'lc3') this.framesDecoded += pcm.length / PCM_BYTES_PER_FRAME
    for (const { packageName } of this.subscriptions.subscribersOf(AUDIO_STREAM)) {
      this.outlet.sendAudio(packageName, pcm)
      this.chunksRelayed += 1
      this.pcmBytesOut += pcm.length
    }
  }

  /** PCM16 is whole 2-byte samples: an odd trailing byte waits for the next message. */
  private wholeSamples (data: Buffer): Buffer {
    const joined = this.carry === null ? data : Buffer.concat([this.carry, data])
    const even = joined.length & ~1
    this.carry = even === joined.length ? null : joined.subarray(even)
    return even === joined.length ? joined : joined.subarray(0, even)
  }

  private dropDecoder (): void {
    this.decoder?.dispose()
    this.decoder = null
    this.carry = null
  }
}
