/** The conformance app on Express and on Fastify, in the test's own process. */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { sse } from '@rewind/express'
import { ssePlugin } from '@rewind/fastify'
import express from 'express'
import Fastify from 'fastify'
import { type AppOptions, eventsToPublish, type PublishBody, produce, type ResponseBody } from './routes.ts'

/** A running app: its base URL, and how to stop it. */
export interface RunningApp {
  base: string
  stop(): Promise<void>
}

export async function startExpress(options: AppOptions): Promise<RunningApp> {
  const events = sse(options)
  const app = express()
  app.use(events)
  app.get('/events', events.handler('news'))
  app.post('/publish', express.json(), (req, res) => {
    const ids = eventsToPublish(req.body as PublishBody).map((input) => events.publish('news', input))
    res.status(201).json({ ids })
  })
  app.post('/responses', express.json(), async (req, res) => {
    const { id } = await events.responses.start(produce(req.body as ResponseBody))
    res.status(201).json({ id })
  })
  app.get('/responses/:id', (req, res) => {
    res.sse({ response: req.params.id })
  })
  app.get('/stats', (_req, res) => {
    res.json(events.hub.stats())
  })
  app.post('/close', (req, res) => {
    const { retry } = req.query
    void events.close(retry === undefined ? {} : { retry: Number(retry) })
    res.json({ closing: true })
  })
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening))
  })
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      await events.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

export async function startFastify(options: AppOptions): Promise<RunningApp> {
  const fastify = Fastify()
  await fastify.register(ssePlugin, options)
  fastify.get('/events', (_request, reply) => reply.sse('news'))
  fastify.post('/publish', async (request, reply) => {
    const ids = await Promise.all(
      eventsToPublish(request.body as PublishBody).map((input) => fastify.sse.publish('news', input)),
    )
    return reply.code(201).send({ ids })
  })
  fastify.post('/responses', async (request, reply) => {
    const { id } = await fastify.sse.responses.start(produce(request.body as ResponseBody))
    return reply.code(201).send({ id })
  })
  fastify.get('/responses/:id', (request, reply) =>
    reply.sse({ response: (request.params as { id: string }).id }),
  )
  fastify.get('/stats', async () => fastify.sse.stats())
  fastify.post('/close', async (request) => {
    const retry = (request.query as { retry?: string }).retry
    void fastify.sse.close(retry === undefined ? {} : { retry: Number(retry) })
    return { closing: true }
  })
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  return {
    base: `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`,
    stop: async () => {
      fastify.server.closeAllConnections()
      await fastify.close()
    },
  }
}
