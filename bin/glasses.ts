/**
 * A tiny glasses client for the README's try-out: connects, prints every message,
 * answers the heartbeat, and drops/reconnects on a key press (or on a timer with
 * --drop-after-ms). Keys: d = drop (server sees 1006, session enters grace),
 * r = reconnect, b = button press, a = start the app, s = stop the app,
 * t = send a transcript, q = quit.
 *
 *   npm run glasses -- --token <JWT> [--url ws://127.0.0.1:8002/glasses-ws] [--app com.example.counter]
 *                      [--start-app] [--drop-after-ms N] [--reconnect-after-ms N]
 */
import { parseArgs } from 'node:util'
import WebSocket from 'ws'

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'ws://127.0.0.1:8002/glasses-ws' },
    token: { type: 'string' },
    'drop-after-ms': { type: 'string' },
    'reconnect-after-ms': { type: 'string', default: '1000' },
    app: { type: 'string', default: 'com.example.counter' },
    'start-app': { type: 'boolean', default: false }
  }
})

if (values.token === undefined) {
  process.stderr.write('usage: npm run glasses -- --token <JWT> [--url ws://host:port/glasses-ws] [--drop-after-ms N]\n')
  process.exit(2)
}
const token = values.token
const reconnectAfterMs = Number(values['reconnect-after-ms'])
let socket: WebSocket | null = null
let quitting = false
let reconnectTimer: NodeJS.Timeout | null = null
let dropped = false
let appStartSent = false

function print (line: string): void { process.stdout.write(`${new Date().toISOString()} ${line}\n`) }

function connect (): void {
  if (reconnectTimer !== null) clearTimeout(reconnectTimer)
  reconnectTimer = null
  const ws = new WebSocket(values.url, { headers: { authorization: `Bearer ${token}` } })
  socket = ws
  ws.on('open', () => {
    print('open')
    if (values['start-app'] && !appStartSent) {
      appStartSent = true
      send({ type: 'start_app', packageName: values.app })
    }
  })
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? `<binary ${(data as Buffer).length} bytes>` : data.toString()
    print(`<- ${text}`)
  })
  ws.on('unexpected-response', (_request, response) => {
    let body = ''
    response.on('data', (chunk: Buffer) => { body += chunk.toString() })
    response.on('end', () => { print(`refused: HTTP ${response.statusCode} ${body}`); process.exit(1) })
  })
  ws.on('close', (code, reason) => {
    print(`closed ${code} ${reason.toString()}`)
    if (socket === ws && !quitting && code !== 4001 && code !== 4002) reconnectTimer = setTimeout(connect, reconnectAfterMs)
  })
  ws.on('error', error => print(`error: ${error.message}`))
  // --drop-after-ms drops once, so the try-out shows one grace period and one resume.
  const dropAfter = values['drop-after-ms']
  if (dropAfter !== undefined && !dropped) {
    dropped = true
    setTimeout(() => drop(), Number(dropAfter))
  }
}

/** Drop without a close frame, like a phone losing its network. */
function drop (): void {
  print('dropping the connection (no close frame)')
  socket?.terminate()
}

function send (message: object): void {
  if (socket?.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(message))
    print(`-> ${JSON.stringify(message)}`)
  }
}

if (process.stdin.isTTY) {
  process.stdin.setRawMode(true)
  process.stdin.on('data', (key: Buffer) => {
    const k = key.toString()
    if (k === 'd') drop()
    else if (k === 'r' && socket?.readyState !== WebSocket.OPEN) connect()
    else if (k === 'b') send({ type: 'button_press', buttonId: 'main', pressType: 'short' })
    else if (k === 'a') send({ type: 'start_app', packageName: values.app })
    else if (k === 's') send({ type: 'stop_app', packageName: values.app })
    else if (k === 't') send({ type: 'local_transcription', text: 'hello from the glasses', isFinal: true, transcribeLanguage: 'en-US' })
    else if (k === 'q' || k === '\u0003') { quitting = true; socket?.close(1000); process.exit(0) }
  })
  print('keys: d = drop, r = reconnect now, b = button press, a/s = start/stop the app, t = transcript, q = quit')
}

process.on('SIGINT', () => { quitting = true; socket?.close(1000); process.exit(0) })
connect()
