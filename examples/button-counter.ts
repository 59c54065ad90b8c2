/**
 * Example Tether app on the unmodified @mentra/sdk: counts the glasses' button
 * presses and shows the count on the display; shows final transcripts, and how
 * much audio it has heard (it subscribes to audio, so the phone streams its
 * microphone: Tether decodes the phone's LC3 to the PCM this app receives).
 *
 *   npm run example -- [--port 7010] [--api-key tether-demo-key] [--package com.example.counter]
 *
 * It serves the SDK's webhook on 127.0.0.1 with getExpressApp().listen rather
 * than AppServer.start(), which would first try to reach the internet.
 */
import { parseArgs } from 'node:util'
import { AppServer, type AppSession } from '@mentra/sdk'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7010' },
    'api-key': { type: 'string', default: 'tether-demo-key' },
    package: { type: 'string', default: 'com.example.counter' }
  }
})

class ButtonCounter extends AppServer {
  protected override async onSession (session: AppSession, sessionId: string, userId: string): Promise<void> {
    let presses = 0
    session.layouts.showTextWall(`Hello ${userId}: press a button`)
    session.events.onButtonPress(() => {
      presses += 1
      session.layouts.showTextWall(`Button presses: ${presses}`)
    })
    session.events.onTranscription(data => {
      if (data.isFinal) session.layouts.showTextWall(`You said: ${data.text}`)
    })
    let audioBytes = 0
    let shownSeconds = 0
    session.events.onAudioChunk(chunk => {
      audioBytes += chunk.arrayBuffer.byteLength
      // 16 kHz, 16-bit mono: 32,000 bytes a second. One line per whole second heard.
      const seconds = Math.floor(audioBytes / 32_000)
      if (seconds > shownSeconds) {
        shownSeconds = seconds
        session.layouts.showTextWall(`Heard ${seconds} s of audio`)
      }
    })
    this.logger.info({ sessionId, userId }, 'session started')
  }

  protected override async onStop (sessionId: string, userId: string, reason: string): Promise<void> {
    this.logger.info({ sessionId, userId, reason }, 'session stopped')
    await super.onStop(sessionId, userId, reason)
  }
}

const port = Number(values.port)
const app = new ButtonCounter({ packageName: values.package, apiKey: values['api-key'], port })
app.getExpressApp().listen(port, '127.0.0.1', () => {
  process.stdout.write(`button counter (${values.package}) listening on http://127.0.0.1:${port}/webhook\n`)
})
