/**
 * A real `eventsource` client for the recipe tests, with headers of its own (as a fetch-based client
 * sets them), and the server of a recipe's app for the tests of one `describe`.
 */
import type { Server } from 'node:http'
import { EventSource } from 'eventsource'
import { afterAll, beforeAll } from 'vitest'

export const WAIT = { timeout: 15_000, interval: 20 }

export interface Received {
  event: string
  id: string
  data: string
}

/**
 * Follows `url`, recording the events of `names` and the `Last-Event-ID` of every connection
 * attempt. `headers` go on every request (an `Authorization` header, a `Cookie`, a first `Last-Event-ID`).
 */
export function follow(
  url: string,
  { headers = {}, names = ['message'] }: { headers?: Record<string, string>; names?: string[] } = {},
) {
  const received: Received[] = []
  const attempts: (string | null)[] = []
  const statuses: number[] = []
  const source = new EventSource(url, {
    fetch: async (input, init) => {
      const merged = new Headers(init.headers)
      for (const [name, value] of Object.entries(headers)) if (!merged.has(name)) merged.set(name, value)
      attempts.push(merged.get('last-event-id'))
      const response = await fetch(input, { ...init, headers: merged })
      statuses.push(response.status)
      return response
    },
  })
  for (const name of names) {
    source.addEventListener(name, (event) =>
      received.push({ event: event.type, id: event.lastEventId, data: event.data }),
    )
  }
  const opened = new Promise<void>((resolve) =>
    source.addEventListener('open', () => resolve(), { once: true }),
  )
  return { source, received, attempts, statuses, opened }
}

/** Starts an Express app on 127.0.0.1:0. */
export async function listen(app: { listen(port: number, host: string): import('node:http').Server }) {
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as import('node:net').AddressInfo
  return { server, base: `http://127.0.0.1:${port}` }
}

/**
 * Serves `app` for the tests of the calling `describe`: it listens before them; after them, every
 * source in `sources` is closed, then `events` with the server.
 */
export function serveRecipe(
  app: { listen(port: number, host: string): Server },
  events: { close(options: { server: Server }): Promise<unknown> },
) {
  const served = { base: '', sources: [] as EventSource[] }
  let server: Server
  beforeAll(async () => {
    ;({ server, base: served.base } = await listen(app))
  })
  afterAll(async () => {
    for (const source of served.sources) source.close()
    await events.close({ server })
  })
  return served
}
