/** @rewind/fastify with its default history (1000 events) and no heartbeats. */
import { ssePlugin } from '@rewind/fastify'
import Fastify from 'fastify'
import { announce, fastifyControl, port, rewindControls } from './shared.js'

const fastify = Fastify()
await fastify.register(ssePlugin, { heartbeatInterval: 0 })
const { publish, startAnswer } = rewindControls(fastify.sse)

fastify.get('/events', (request, reply) => reply.sse('s'))
fastify.get('/answers/:id', (request, reply) => reply.sse({ response: request.params.id }))

fastifyControl(fastify, publish, startAnswer)

await fastify.listen({ port, host: '127.0.0.1' })
announce(() => fastify.close())
