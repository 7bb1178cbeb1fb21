/**
 * The live demos (`examples/express-live`, `examples/fastify-live`) started in this process on an
 * ephemeral port. They are plain JavaScript without declarations, hence the typed dynamic import.
 */
import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import { listen } from '../../support/listen.js'
import type { Adapter } from './app.mjs'

export interface RunningDemo {
  base: string
  port: number
  close(): Promise<void>
}

interface ExpressDemo extends RequestListener {
  locals: { events: { close(options: { server: unknown }): Promise<void> } }
}
interface FastifyDemo {
  listen(options: { port: number; host: string }): Promise<string>
  close(): Promise<void>
  server: { address(): AddressInfo }
}

const EXPRESS_DEMO = new URL('../../../examples/express-live/index.js', import.meta.url).href
const FASTIFY_DEMO = new URL('../../../examples/fastify-live/index.js', import.meta.url).href

export async function startDemo(adapter: Adapter): Promise<RunningDemo> {
  if (adapter === 'express') {
    const { createApp } = (await import(EXPRESS_DEMO)) as {
      createApp(options?: { retry?: number; ticker?: boolean }): ExpressDemo
    }
    // The ticker off: the tests count exactly the events they publish, however slow the machine.
    const app = createApp({ retry: 100, ticker: false })
    const { server, url, port } = await listen(createServer(app))
    return { base: url, port, close: () => app.locals.events.close({ server }) }
  }
  const { buildApp } = (await import(FASTIFY_DEMO)) as {
    buildApp(options?: { retry?: number; ticker?: boolean }): FastifyDemo
  }
  const fastify = buildApp({ retry: 100, ticker: false })
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const { port } = fastify.server.address()
  return { base: `http://127.0.0.1:${port}`, port, close: () => fastify.close() }
}
