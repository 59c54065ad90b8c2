// Tether live admin page: framework-free. The admin token is asked for once and
// kept in sessionStorage; the live feed is read with fetch (not EventSource) so
// the token travels in the Authorization header, never in a URL.
const TOKEN_KEY = 'tether.adminToken'
const HISTORY_MS = 5 * 60 * 1000

const $ = (id) => document.getElementById(id)
const state = { history: [], selected: null, abort: null }

function token () { return sessionStorage.getItem(TOKEN_KEY) }

function authHeaders () { return { authorization: `Bearer ${token()}` } }

function showLogin (message = '') {
  $('login').hidden = false
  $('dashboard').hidden = true
  $('logout').hidden = true
  $('login-error').textContent = message
}

function showDashboard () {
  $('login').hidden = true
  $('dashboard').hidden = false
  $('logout').hidden = false
}

/** Read the Server-Sent Events feed; reconnect with a pause when it ends. */
async function follow () {
  state.abort?.abort()
  const abort = new AbortController()
  state.abort = abort
  try {
    const res = await fetch('/admin/feed', { headers: authHeaders(), signal: abort.signal })
    if (res.status === 401 || res.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY)
      showLogin(res.status === 401 ? 'That token was not accepted.' : 'That identity is not an admin.')
      return
    }
    if (!res.ok || res.body === null) throw new Error(`feed answered ${res.status}`)
    showDashboard()
    $('feed-status').textContent = 'live'
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += value
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = frame.split('\n').filter(l => l.startsWith('data: ')).map(l => l.slice(6)).join('\n')
        if (data !== '') onSnapshot(JSON.parse(data))
      }
    }
  } catch (error) {
    if (abort.signal.aborted) return
    $('feed-status').textContent = `feed lost (${error.message}); retrying`
  }
  if (!abort.signal.aborted && token() !== null) setTimeout(follow, 1000)
}

function onSnapshot (snapshot) {
  const { counts, sessions } = snapshot
  $('count-active').textContent = counts.active
  $('count-grace').textContent = counts.grace
  $('count-total').textContent = counts.total
  const now = Date.now()
  state.history.push({ at: now, active: counts.active, grace: counts.grace })
  while (state.history.length > 0 && state.history[0].at < now - HISTORY_MS) state.history.shift()
  renderTable(sessions)
  drawChart()
  if (state.selected !== null && !sessions.some(s => s.userId === state.selected)) closeDetail()
}

function formatDuration (ms) {
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`
}

function formatBytes (n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`
}

function renderTable (sessions) {
  const body = document.querySelector('#sessions tbody')
  const rows = sessions.map(s => {
    const tr = document.createElement('tr')
    tr.dataset.userId = s.userId
    if (s.userId === state.selected) tr.classList.add('selected')
    const cells = [
      s.userId,
      null,
      formatDuration(s.connectedMs),
      String(s.reconnections),
      String(s.activeApps.length),
      `${s.data.messagesIn} in / ${s.data.messagesOut} out, ${formatBytes(s.data.audioBytes)} audio, ${s.data.transcripts} transcripts`
    ]
    for (const text of cells) {
      const td = document.createElement('td')
      if (text === null) {
        const badge = document.createElement('span')
        badge.className = `badge ${s.state}`
        badge.textContent = s.state
        td.append(badge)
      } else {
        td.textContent = text
      }
      tr.append(td)
    }
    tr.addEventListener('click', () => { void openDetail(s.userId) })
    return tr
  })
  body.replaceChildren(...rows)
}

function drawChart () {
  const canvas = $('chart')
  const ctx = canvas.getContext('2d')
  const { width, height } = canvas
  ctx.clearRect(0, 0, width, height)
  const points = state.history
  const max = Math.max(1, ...points.map(p => p.active + p.grace))
  const now = Date.now()
  const x = (at) => width - ((now - at) / HISTORY_MS) * width
  const y = (v) => height - 10 - (v / max) * (height - 20)
  for (const [key, colour] of [['active', '#1f9d55'], ['grace', '#d69e2e']]) {
    ctx.beginPath()
    ctx.strokeStyle = colour
    ctx.lineWidth = 2
    points.forEach((p, i) => { if (i === 0) ctx.moveTo(x(p.at), y(p[key])); else ctx.lineTo(x(p.at), y(p[key])) })
    ctx.stroke()
  }
  ctx.fillStyle = '#555'
  ctx.fillText(`max ${max}`, 4, 12)
}

async function openDetail (userId) {
  state.selected = userId
  const res = await fetch(`/sessions/${encodeURIComponent(userId)}`, { headers: authHeaders() })
  if (!res.ok) { closeDetail(); return }
  const detail = await res.json()
  $('detail').hidden = false
  $('detail-user').textContent = userId
  $('detail-managers').textContent = JSON.stringify(detail.managers, null, 2)
  $('detail-events').replaceChildren(...detail.events.map(e => {
    const li = document.createElement('li')
    li.textContent = `${e.at} ${e.event}${e.reason ? ` (${e.reason})` : ''}${e.closeCode ? ` code ${e.closeCode}` : ''}`
    return li
  }))
}

function closeDetail () {
  state.selected = null
  $('detail').hidden = true
}

/** End the selected session; with a block, the user is also refused for that many seconds on every node. */
async function endSession (blockSeconds) {
  const userId = state.selected
  if (userId === null) return
  const query = blockSeconds === undefined ? '' : `?blockSeconds=${blockSeconds}`
  const res = await fetch(`/sessions/${encodeURIComponent(userId)}${query}`, { method: 'DELETE', headers: authHeaders() })
  if (res.status === 204 || res.status === 404) closeDetail()
}

$('end-session').addEventListener('click', () => { void endSession() })
$('block-user').addEventListener('click', () => { void endSession(600) })

$('login').addEventListener('submit', (event) => {
  event.preventDefault()
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim())
  $('token').value = ''
  void follow()
})

$('logout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY)
  state.abort?.abort()
  showLogin()
})

if (token() === null) showLogin()
else void follow()
