/**
 * @fastify/compress works in onSend, which a hijacked reply never reaches: event streams go out
 * uncompressed and unbuffered, while ordinary routes are still compressed.
 */
import { gunzipSync } from 'node:zlib'
import compress from '@fastify/compress'
import { describe, expect, it } from 'vitest'
import { rawResponse } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { ssePlugin } from '../src/index.js'
import { createApp, listen } from './helpers/app.js'

async function compressedApp() {
  const app = createApp()
  await app.register(compress, { global: true })
  await app.register(ssePlugin, { heartbeatInterval: 0 })
  app.get('/events', (_request, reply) => reply.sse('news'))
  app.get('/report', async () => ({
    rows: Array.from({ length: 200 }, (_, n) => ({ n, label: `row ${n}` })),
  }))
  return app
}

describe('with @fastify/compress registered globally', () => {
  it('an event arrives at once and uncompressed, even when the client accepts gzip and br', async () => {
    const app = await compressedApp()
    const { port } = await listen(app)

    // A raw socket sees the bytes as sent (fetch would decompress them transparently).
    const response = rawResponse(
      port,
      Buffer.from('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n'),
      (body) => body.includes('data: not squeezed\n\n'),
    )
    // Awaited below; this only keeps a failure of the wait from leaving it unhandled.
    response.catch(() => {})
    await waitUntil(() => app.sse.stats().subscribers === 1, 'the subscriber')
    // One small event, with the stream still open: a compressor would hold it in its buffer.
    app.sse.publish('news', { data: 'not squeezed' })
    const { status, headers, body } = await response

    expect(status).toBe(200)
    expect(headers['content-encoding']).toBeUndefined()
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(headers['cache-control']).toContain('no-transform')
    expect(body).toContain('data: not squeezed\n\n')
  })

  it('an ordinary JSON route is still compressed', async () => {
    const app = await compressedApp()

    const response = await app.inject({ url: '/report', headers: { 'accept-encoding': 'gzip' } })

    expect(response.statusCode).toBe(200)
    expect(response.headers['content-encoding']).toBe('gzip')
    const json = JSON.parse(gunzipSync(response.rawPayload).toString('utf8')) as { rows: unknown[] }
    expect(json.rows).toHaveLength(200)
  })
})
