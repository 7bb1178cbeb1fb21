/**
 * Fastify with hand-written SSE, as a careful user writes it: the route takes the response over
 * (`reply.hijack()`), writes the head itself, flushes it (or writes the missed frames), keeps the raw
 * response in a set and `res.write`s each event's frame, serialized once into a buffer, to each.
 * Broadcast, replay and streamed answers are hand-written as on raw node:http (`handWrittenStream`,
 * `handWrittenAnswers` in shared.js), so what Fastify itself costs can be told from Rewind's part.
 */
import Fastify from 'fastify'
import { announce, fastifyControl, handWrittenAnswers, handWrittenStream, port } from './shared.js'

const stream = handWrittenStream()
const answers = handWrittenAnswers()

const fastify = Fastify()

fastify.get('/events', (request, reply) => {
  reply.hijack()
  stream.subscribe(reply.raw, request.headers['last-event-id'])
})

fastify.get('/answers/:id', (request, reply) => {
  const answer = answers.get(request.params.id)
  if (answer === undefined) return reply.code(404).send()
  return reply.type('text/event-stream').header('cache-control', 'no-cache').send(answer)
})

fastifyControl(fastify, stream.publish, answers.start)

await fastify.listen({ port, host: '127.0.0.1' })
announce(() => fastify.close())
