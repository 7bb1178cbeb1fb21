/**
 * Real HTTP for the Redis tests: a `node:http` server that serves hub streams at `/<stream>`. The
 * clients that read them are in test/support/sse-clients.ts.
 */
import { createServer, type Server } from 'node:http'
import { createHub, type Hub, type HubOptions, type ServeOptions } from '@rewind/core'
import { listen } from '../../../../test/support/listen.js'
import type { RedisStore } from '../../src/index.js'

/** A hub on a store, served over HTTP at `/<stream>`. */
export interface App {
  readonly hub: Hub<Promise<string>>
  readonly server: Server
  /** URL of a stream; `lastEventId` goes in the query string. */
  url(stream: string, lastEventId?: string): string
  /** Closes the hub, then the server (the store stays open: the hub does not own it). */
  close(): Promise<void>
}

export async function startApp(
  store: RedisStore,
  options: Omit<HubOptions, 'store'> = {},
  serve: ServeOptions = {},
): Promise<App> {
  const hub = createHub({ retry: 50, closeGrace: 200, ...options, store })
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    hub.serve(req, res, decodeURIComponent(path.slice(1)), serve)
  })
  const listening = await listen(server)
  return {
    hub,
    server,
    url(stream, lastEventId) {
      const base = `${listening.url}/${encodeURIComponent(stream)}`
      return lastEventId === undefined ? base : `${base}?lastEventId=${encodeURIComponent(lastEventId)}`
    },
    async close() {
      await hub.close()
      await listening.close()
    },
  }
}
