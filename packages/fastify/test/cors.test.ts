/**
 * CORS with @fastify/cors: its headers are set on the reply in a hook, before the handler; the plugin
 * copies reply headers onto the raw response it hijacks, so the stream carries them.
 */
import cors from '@fastify/cors'
import { describe, expect, it } from 'vitest'
import { waitUntil } from '../../../test/support/wait.js'
import { ssePlugin } from '../src/index.js'
import { createApp, listen } from './helpers/app.js'
import { FetchStream } from './helpers/clients.js'

const ORIGIN = 'https://app.example'

async function corsApp(options: Parameters<typeof cors>[1] = { origin: true, credentials: true }) {
  const app = createApp()
  await app.register(cors, options)
  await app.register(ssePlugin, { heartbeatInterval: 0 })
  app.get('/events', (_request, reply) => reply.sse('news'))
  return app
}

/** A browser's preflight for a cross-origin `GET /events` that sends `Last-Event-ID`. */
function preflight(app: Awaited<ReturnType<typeof corsApp>>) {
  return app.inject({
    method: 'OPTIONS',
    url: '/events',
    headers: {
      origin: ORIGIN,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'last-event-id',
    },
  })
}

describe('with @fastify/cors', () => {
  it('a preflight allows the Last-Event-ID header and credentials', async () => {
    const app = await corsApp()

    const response = await preflight(app)

    expect(response.statusCode).toBe(204)
    expect(response.headers['access-control-allow-origin']).toBe(ORIGIN)
    expect(response.headers['access-control-allow-credentials']).toBe('true')
    expect(String(response.headers['access-control-allow-headers']).toLowerCase()).toContain('last-event-id')
  })

  it('with restricted allowedHeaders, Last-Event-ID must be listed for a preflight to allow it', async () => {
    const app = await corsApp({
      origin: ORIGIN,
      credentials: true,
      allowedHeaders: ['Content-Type', 'Last-Event-ID'],
    })

    const response = await preflight(app)

    expect(response.statusCode).toBe(204)
    expect(response.headers['access-control-allow-headers']).toBe('Content-Type, Last-Event-ID')
  })

  it('the event stream carries the CORS headers, and events still flow', async () => {
    const app = await corsApp()
    const { url } = await listen(app)

    const stream = await FetchStream.open(`${url}/events`, { origin: ORIGIN })
    await waitUntil(() => app.sse.stats().subscribers === 1, 'the subscriber')
    app.sse.publish('news', { data: 'cross-origin' })
    await stream.waitForEvents(1)

    const headers = stream.response.headers
    expect(stream.response.status).toBe(200)
    expect(headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(headers.get('access-control-allow-origin')).toBe(ORIGIN)
    expect(headers.get('access-control-allow-credentials')).toBe('true')
    expect(headers.get('vary')).toMatch(/origin/i)
    expect(stream.messages()).toEqual(['cross-origin'])
  })
})
