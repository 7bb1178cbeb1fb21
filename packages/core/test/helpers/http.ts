/** Real sockets for core tests: a hub served on port 0, and what a test opens closed after it. */
import { afterEach } from 'vitest'
import { type Listening, listen } from '../../../../test/support/listen.js'
import type { Hub } from '../../src/hub.js'
import type { HubOptions } from '../../src/hub-options.js'
import { createHub } from '../../src/index.js'

/** Serves `stream` of `hub` at every URL. */
export function serveHub(hub: Hub<string | Promise<string>>, stream = 'test'): Promise<Listening> {
  return listen((req, res) => hub.serve(req, res, stream))
}

/**
 * For a file of socket tests: what a test opens is closed after it, newest first. `hubFor` makes a
 * hub (a short `retry:`), `started` waits for a server, and anything else goes in `cleanups`.
 */
export function closesAfterEach(): {
  cleanups: (() => unknown)[]
  hubFor(options?: HubOptions): Hub<string>
  started(server: Promise<Listening>): Promise<Listening>
} {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  return {
    cleanups,
    hubFor(options = {}) {
      const hub = createHub({ retry: 20, ...options }) as Hub<string>
      cleanups.push(() => hub.close())
      return hub
    },
    async started(server) {
      const s = await server
      cleanups.push(() => s.close())
      return s
    },
  }
}
