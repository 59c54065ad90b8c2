/**
 * A phone for the README's try-out: behaves towards Tether as the MentraOS phone
 * app does (phone/emulator.ts): start-up REST calls, the socket with the token in
 * the query, a ping every 5 s, reconnects 5 s after anything, the microphone
 * turned on and off by the server (streaming a recorded LC3 vector while it asks
 * for audio). Prints every message received and every REST call, one line each.
 * Keys: a = start the app (REST), s = stop it, l = list apps, b = button press,
 * t = say something (a transcript), q = quit.
 *
 *   npm run phone -- --token <JWT> [--url http://127.0.0.1:8002] [--app com.example.counter]
 *                    [--lc3 test/vectors/lc3/frames-40.lc3] [--frame-bytes 40] [--platform ios|android]
 */
import { existsSync, readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { PhoneEmulator, wantsTranscripts } from '../phone/emulator.js'
import { isLc3FrameSize, type Lc3FrameSize } from '../phone/lc3-stream.js'

function usage (problem: string): never {
  process.stderr.write(`${problem}\nusage: npm run phone -- --token <JWT> [--url http://host:port] [--app <package>] ` +
    '[--lc3 <raw LC3 frames>] [--frame-bytes 20|40|60] [--platform ios|android]\n')
  process.exit(2)
}

/** The options; a leading `--` (as passed through some runners) is skipped. */
function parse () {
  const args = process.argv.slice(2)
  if (args[0] === '--') args.shift()
  try {
    return parseArgs({
      args,
      options: {
        url: { type: 'string', default: 'http://127.0.0.1:8002' },
        token: { type: 'string' },
        app: { type: 'string', default: 'com.example.counter' },
        lc3: { type: 'string', default: 'test/vectors/lc3/frames-40.lc3' },
        'frame-bytes': { type: 'string', default: '40' },
        platform: { type: 'string', default: 'ios' }
      }
    }).values
  } catch (error) {
    return usage(error instanceof Error ? error.message : String(error))
  }
}
const values = parse()

function print (line: string): void { process.stdout.write(`${new Date().toISOString()} ${line}\n`) }

const token = values.token ?? usage('--token is required')
const frameBytes = Number(values['frame-bytes'])
if (!isLc3FrameSize(frameBytes)) usage('--frame-bytes must be 20, 40 or 60')
const platform = values.platform
if (platform !== 'ios' && platform !== 'android') usage('--platform must be ios or android')

let lc3: { frames: Buffer, frameSizeBytes: Lc3FrameSize } | undefined
if (existsSync(values.lc3)) {
  const frames = readFileSync(values.lc3)
  if (frames.length >= frameBytes) {
    lc3 = { frames, frameSizeBytes: frameBytes }
    print(`audio: ${Math.floor(frames.length / frameBytes)} LC3 frames of ${frameBytes} bytes from ${values.lc3}`)
  } else {
    print(`audio: ${values.lc3} holds no whole ${frameBytes}-byte frame: running without audio`)
  }
} else {
  print(`audio: no LC3 vector at ${values.lc3}: running without audio`)
}

const phone = new PhoneEmulator({
  baseUrl: values.url,
  token,
  platform,
  ...(lc3 === undefined ? { frameSizeBytes: frameBytes } : { lc3 }),
  log: print
})

phone.on('mic', state => {
  const wanted = state.requiredData.length === 0 ? 'off' : state.requiredData.join(', ')
  print(`microphone: ${wanted}${state.bypassVad ? ' (bypassing VAD)' : ''}`)
  if (wantsTranscripts(state)) print('the server wants transcripts from the phone: press t to say something')
})

const phrases = ['hello from the phone', 'what time is it', 'count my button presses', 'goodbye for now']
let phraseIndex = 0

/** An interim transcript, then the final one, as a phone's speech recogniser sends them. */
function speak (): void {
  const phrase = phrases[phraseIndex % phrases.length] ?? 'hello'
  phraseIndex += 1
  const words = phrase.split(' ')
  phone.sendTranscript(words.slice(0, Math.max(1, words.length - 1)).join(' '), false)
  setTimeout(() => { phone.sendTranscript(phrase, true) }, 300)
}

async function listApps (): Promise<void> {
  await phone.listApps()
  const summary = phone.apps.map(app => {
    if (typeof app !== 'object' || app === null) return '?'
    const { packageName, running } = app as { packageName?: unknown, running?: unknown }
    return `${String(packageName)}${running === true ? ' (running)' : ''}`
  })
  print(`apps: ${summary.length === 0 ? 'none' : summary.join(', ')}`)
}

let quitting = false
async function quit (): Promise<void> {
  if (quitting) return
  quitting = true
  await phone.stop()
  process.exit(0)
}

if (process.stdin.isTTY) {
  process.stdin.setRawMode(true)
  process.stdin.on('data', (key: Buffer) => {
    const k = key.toString()
    if (k === 'a') void phone.startApp(values.app)
    else if (k === 's') void phone.stopApp(values.app)
    else if (k === 'l') void listApps()
    else if (k === 'b') phone.sendButton()
    else if (k === 't') speak()
    else if (k === 'q' || k === '\u0003') void quit()
  })
  print(`keys: a/s = start/stop ${values.app}, l = list apps, b = button press, t = say something, q = quit`)
}

process.on('SIGINT', () => { void quit() })
process.on('SIGTERM', () => { void quit() })
await phone.start()
