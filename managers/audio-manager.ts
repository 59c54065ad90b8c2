/**
 * Binary audio from the glasses (PCM16 LE, PROTOCOL 1.4): relayed as binary
 * frames to `audio_chunk` subscribers. A slow app loses chunks (counted) rather
 * than buffering them without bound. Counting of received audio is SessionMetrics'.
 */
import type { Manager } from '../sessions/manager.js'
import { AUDIO_STREAM } from './streams.js'
import type { AppOutlet, SubscriptionManager } from './subscription-manager.js'

export class AudioManager implements Manager {
  readonly name = 'audio'
  private chunksRelayed = 0

  constructor (private readonly subscriptions: SubscriptionManager, private readonly outlet: AppOutlet) {}

  handleBinary (data: Buffer): void {
    for (const { packageName } of this.subscriptions.subscribersOf(AUDIO_STREAM)) {
      this.outlet.sendAudio(packageName, data)
      this.chunksRelayed += 1
    }
  }

  snapshot (): unknown {
    return { chunksRelayed: this.chunksRelayed, subscribers: this.subscriptions.subscribersOf(AUDIO_STREAM).map(s => s.packageName) }
  }

  dispose (): void {}
}
