/**
 * Print the sha256 of an app's API key for the apps catalogue (`apiKeySha256`).
 * With no argument, generates a new random key and prints both.
 *
 *   npm run app-key -- [key]
 */
import { createHash, randomBytes } from 'node:crypto'

const given = process.argv[2]
const key = given ?? randomBytes(24).toString('base64url')
const digest = createHash('sha256').update(key, 'utf8').digest('hex')
if (given === undefined) process.stdout.write(`apiKey:       ${key}\n`)
process.stdout.write(`apiKeySha256: ${digest}\n`)
