/**
 * The session's own stats (the admin Summary's `data`, docs/PROTOCOL.md 3): connected time,
 * message and audio counts, transcripts. Not a manager: the session feeds it directly and
 * tells it when a socket attaches and detaches.
 */
import type { GlassesMessage } from '../protocol/glasses-messages.js'
import type { SessionData } from './session-snapshot.js'

export class SessionStats {
  private readonly data: SessionData = { audioBytes: 0, audioChunks: 0, transcripts: 0, messagesIn: 0, messagesOut: 0 }
  private connectedBeforeMs = 0
  private connectedSince: number | null = null
  private currentConnectionSince: number | null = null

  /** Counters carried over from another node (cluster handover). */
  constructor (restored?: { data: SessionData, connectedMs: number }) {
    if (restored !== undefined) {
      Object.assign(this.data, restored.data)
      this.connectedBeforeMs = restored.connectedMs
    }
  }

  onAttach (): void {
    const now = Date.now()
    // A replacement keeps the connected span running: the glasses were never away.
    this.connectedSince ??= now
    this.currentConnectionSince = now
  }

  onDetach (): void { this.closeSpan() }

  recordInbound (message: GlassesMessage): void {
    this.data.messagesIn += 1
    if (message.type === 'local_transcription') this.data.transcripts += 1
  }

  /** A text frame not counted by type (rejected, or of an unlisted type) still counts as traffic. */
  recordUntypedFrame (): void { this.data.messagesIn += 1 }

  recordAudio (bytes: number): void {
    this.data.audioBytes += bytes
    this.data.audioChunks += 1
  }

  recordOutbound (): void { this.data.messagesOut += 1 }

  /** Total connected time so far, the current connection included. */
  connectedMs (now = Date.now()): number {
    return this.connectedBeforeMs + (this.connectedSince === null ? 0 : now - this.connectedSince)
  }

  counts (): SessionData { return { ...this.data } }

  snapshot (): unknown {
    const now = Date.now()
    return {
      ...this.counts(),
      connectedMs: this.connectedMs(now),
      currentConnectionMs: this.currentConnectionSince === null ? null : now - this.currentConnectionSince
    }
  }

  dispose (): void { this.closeSpan() }

  private closeSpan (): void {
    if (this.connectedSince !== null) this.connectedBeforeMs += Date.now() - this.connectedSince
    this.connectedSince = null
    this.currentConnectionSince = null
  }
}
