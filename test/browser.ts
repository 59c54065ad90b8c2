/**
 * A real headless Chromium for the browser tests, from `npm ci` alone: no apt step, no browser
 * download. The binary is the chrome-headless-shell that the npm package @sparticuz/chromium ships
 * brotli-compressed; its executablePath() inflates it (with fonts and SwiftShader) into os.tmpdir()
 * on the first call, a few seconds, and reuses it after. playwright-core drives it.
 *
 * Besides glibc the binary links NSS, NSPR and expat, which slim images lack. So the browser always
 * loads the copies the package bundles (bin/al2023.tar.br, built for Amazon Linux 2023: needs glibc
 * 2.34 or later) ahead of the system's, and fontconfig sees only the bundled Open Sans, so pages lay
 * out and render the same with or without system libraries and fonts.
 *
 * The package's recommended `args` target AWS Lambda and are not used: with --single-process the
 * browser dies when a second context closes, --disable-web-security would hide CORS mistakes, and
 * their --disable-features list replaces Playwright's own.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { brotliDecompressSync } from 'node:zlib'
import chromium from '@sparticuz/chromium'
import { chromium as playwright, type Browser } from 'playwright-core'

export async function launchChromium (): Promise<Browser> {
  const executablePath = await chromium.executablePath()
  const libs = bundledLibraries()
  return await playwright.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
    env: {
      ...process.env,
      LD_LIBRARY_PATH: [libs, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      FONTCONFIG_FILE: join(libs, 'fonts.conf')
    }
  })
}

/**
 * Unpacks the bundled libraries into <tmpdir>/al2023/lib (where the package itself puts them on
 * Lambda) once, with a fonts.conf naming only the fonts executablePath() unpacked, and returns the
 * directory. Unpacked aside and renamed into place, so a run cut short leaves no half directory.
 */
function bundledLibraries (): string {
  const dir = join(tmpdir(), 'al2023', 'lib')
  if (existsSync(dir)) return dir
  const bin = new URL('../../bin/', import.meta.resolve('@sparticuz/chromium'))
  const staging = mkdtempSync(join(tmpdir(), 'al2023-lib-'))
  untar(brotliDecompressSync(readFileSync(new URL('al2023.tar.br', bin))), staging)
  const fonts = join(tmpdir(), 'fonts')
  writeFileSync(join(staging, 'fonts.conf'),
    `<?xml version="1.0"?>\n<fontconfig>\n  <dir>${fonts}</dir>\n  <cachedir>${join(dir, 'fontconfig-cache')}</cachedir>\n</fontconfig>\n`)
  chmodSync(staging, 0o755) // mkdtemp makes it 0700
  mkdirSync(dirname(dir), { recursive: true })
  try {
    renameSync(staging, dir)
  } catch (err) {
    rmSync(staging, { recursive: true, force: true })
    if (!existsSync(dir)) throw err // else a concurrent run got there first
  }
  return dir
}

/** The archive is plain ustar holding only regular files under lib/: write each flat into `dir`. */
function untar (tar: Buffer, dir: string): void {
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0;) {
    const field = (offset: number, length: number): string =>
      tar.toString('latin1', at + offset, at + offset + length).replace(/\0[^]*$/, '')
    const size = parseInt(field(124, 12), 8)
    if (field(156, 1) === '0') writeFileSync(join(dir, basename(field(0, 100))), tar.subarray(at + 512, at + 512 + size), { mode: 0o755 })
    at += 512 + Math.ceil(size / 512) * 512
  }
}
