/**
 * Local transcripts from the glasses (docs/PROTOCOL.md 1.4): relayed to
 * `transcription:<lang>` subscribers in the shape the SDK's onTranscription
 * handlers read. Counting lives in SessionStats.
 */
import type { GlassesMessage } from '../protocol/glasses-messages.js'
import type { Manager } from '../sessions/manager.js'
import { keysOf, transcriptLanguage } from './streams.js'
import type { SubscriptionManager } from './subscription-manager.js'

export class TranscriptManager implements Manager {
  readonly name = 'transcripts'
  private relayed = 0
  /** The languages seen, made with the first transcript (most sessions never send one). */
  private languages: Set<string> | null = null

  constructor (private readonly subscriptions: SubscriptionManager) {}

  handle (message: GlassesMessage): boolean {
    if (message.type !== 'local_transcription') return false
    const language = transcriptLanguage(message)
    this.languages ??= new Set()
    this.languages.add(language)
    this.relayed += this.subscriptions.relay(keysOf(message), {
      type: 'transcription',
      text: message.text,
      isFinal: message.isFinal,
      transcribeLanguage: language,
      startTime: message.startTime ?? Date.now(),
      endTime: message.endTime ?? Date.now()
    })
    return true
  }

  snapshot (): unknown {
    return { relayed: this.relayed, languages: [...(this.languages ?? [])] }
  }

  dispose (): void { this.languages = null }
}
