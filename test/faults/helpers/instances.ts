/**
 * The two instances an answer crosses: an Express app (`@rewind/express`) and a Fastify app
 * (`@rewind/fastify`), in this process, each on 127.0.0.1 with an ephemeral port and its own hub on
 * the store it is given. `GET /answers/:id` serves an answer (`{ response: id }`).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { HubOptions, HubResponses, StreamItem } from '@rewind/core'
import { sse } from '@rewind/express'
import { ssePlugin } from '@rewind/fastify'
import express from 'express'
import Fastify from 'fastify'
import { listen } from '../../support/listen.js'
import { sleep } from '../../support/wait.js'

export type Adapter = 'express' | 'fastify'
export const ADAPTERS: readonly Adapter[] = ['express', 'fastify']

export interface Instance {
  readonly adapter: Adapter
  readonly responses: HubResponses
  /** The URL of an answer on this instance. */
  url(id: string): string
  /** Closes the app (its hub ends the producers it runs with `failed`, then every stream). */
  close(): Promise<void>
}

/**
 * Starts `adapter` with a hub on `store` (its own memory store when undefined). Errors are expected while the store is faulty: they are
 * counted, not thrown; the readers say what the clients see.
 */
export async function startInstance(
  adapter: Adapter,
  store: HubOptions['store'],
  options: Omit<HubOptions, 'store'> = {},
): Promise<Instance> {
  const hubOptions: HubOptions = {
    retry: 100,
    heartbeatInterval: 500,
    closeGrace: 100,
    onError: () => {},
    ...options,
    ...(store === undefined ? {} : { store }),
  }
  if (adapter === 'express') {
    const events = sse(hubOptions)
    const app = express()
    app.use(events)
    app.get('/answers/:id', (req, res) => {
      res.sse({ response: req.params.id })
    })
    const server = createServer(app)
    server.keepAliveTimeout = 50
    const { url } = await listen(server)
    return {
      adapter,
      responses: events.responses,
      url: (id) => `${url}/answers/${id}`,
      async close() {
        server.closeAllConnections()
        await events.close({ server })
      },
    }
  }
  // Fastify answers 503 by itself while closing; the hub's own answer is what readers should get.
  const fastify = Fastify({ logger: false, return503OnClosing: false })
  await fastify.register(ssePlugin, hubOptions)
  fastify.get<{ Params: { id: string } }>('/answers/:id', (request, reply) =>
    reply.sse({ response: request.params.id }),
  )
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const { port } = fastify.server.address() as AddressInfo
  return {
    adapter,
    responses: fastify.sse.responses,
    url: (id) => `http://127.0.0.1:${port}/answers/${id}`,
    async close() {
      fastify.server.closeAllConnections()
      await fastify.close()
    },
  }
}

/** What a producer does: `tokens` tokens `t0..`, one every `interval` ms, maybe throwing at one. */
export interface ProducerPlan {
  readonly tokens: number
  readonly interval: number
  /** Throw instead of yielding this token (a producer that fails mid-answer). */
  readonly throwAt?: number | undefined
  /** Characters appended to every token's data, to make the answer bigger. */
  readonly padding?: number | undefined
}

export function producer(plan: ProducerPlan) {
  const pad = plan.padding ? ` ${'x'.repeat(plan.padding)}` : ''
  return async function* tokens(signal: AbortSignal): AsyncGenerator<StreamItem> {
    for (let i = 0; i < plan.tokens && !signal.aborted; i++) {
      if (i > 0 && plan.interval > 0) await sleep(plan.interval)
      if (i === plan.throwAt) throw new Error(`the producer fails at t${i}`)
      yield `t${i}${pad}`
    }
  }
}
