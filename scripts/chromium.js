/**
 * Debian's Chromium, as every browser run of the repository starts it (the e2e tests, the client's
 * browser tests, the bench's chart): headless, as root, and without the background traffic that this
 * machine's closed network refuses (update checks, sync, QUIC).
 */

/** Where Debian installs it (scripts/provision.sh installs it when missing). */
export const CHROMIUM_PATH = '/usr/bin/chromium'

/** The flags it is launched with. */
export const CHROMIUM_ARGS = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
])
