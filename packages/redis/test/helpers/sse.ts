/**
 * Real HTTP for the Redis tests: a `node:http` server that serves hub streams at `/<stream>`. The
 * clients that read them are in test/support/sse-clients.ts.
 */
import { createServer, type Server } from 'node:http'
import { createHub, type Hub, type HubOptions, type ServeOptions } from '@rewind/core'
import { listen } from '../../../../test/support/listen.js'
import { BrowserClient, RawClient } from '../../../../test/support/sse-clients.js'
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

/**
 * What a test opens: apps and clients, all closed (clients first) by `closeAll`, which the suite
 * calls in its `afterEach` before it closes the stores the apps were on.
 */
export class Opened {
  private readonly apps: App[] = []
  private readonly clients: { close(): void }[] = []

  /** {@link startApp}, closed by `closeAll`. */
  readonly app = async (
    on: RedisStore,
    options: Parameters<typeof startApp>[1] = {},
    serve: Parameters<typeof startApp>[2] = {},
  ): Promise<App> => {
    const started = await startApp(on, options, serve)
    this.apps.push(started)
    return started
  }

  /** A byte-level client of `url`, closed by `closeAll`. */
  readonly raw = async (url: string, lastEventId?: string): Promise<RawClient> => {
    const client = await RawClient.open(url, lastEventId)
    this.clients.push(client)
    return client
  }

  /** A browser-like client of `url`, closed by `closeAll`. */
  readonly browser = (url: string, names: string[] = []): BrowserClient => {
    const client = new BrowserClient(url, names)
    this.clients.push(client)
    return client
  }

  async closeAll(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close()
    await Promise.all(this.apps.splice(0).map((app) => app.close()))
  }
}
