/**
 * The demo page's one script dependency: the browser build of `@rewind/client`, a self-contained ES
 * module the page imports from `/assets/rewind-client.js`. Each app resolves it (this folder is not a
 * package) and serves the bytes read here once.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** Where the page imports the client from. */
export const CLIENT_BUNDLE_PATH = '/assets/rewind-client.js'

/** @param {string} resolved what the app's `import.meta.resolve('@rewind/client/browser')` gives */
export function readClientBundle(resolved) {
  return readFileSync(fileURLToPath(resolved))
}
