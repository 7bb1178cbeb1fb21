/**
 * @fastify/sse: each client's `reply.sse` context is kept in a set and sent every event. It has no
 * broadcast and no history of its own, but a replay callback on Last-Event-ID: this server keeps the
 * last 1000 events in an array and replays after the client's id, as its README shows. The data is
 * serialized once per event (identity serializer), the library's best case; heartbeats are off.
 */
import fastifySse from '@fastify/sse'
import Fastify from 'fastify'
import { announce, fastifyControl, port } from './shared.js'

const HISTORY = 1000
const clients = new Set()
const history = []
let seq = 0

function publish(data) {
  const message = { id: String(++seq), data: JSON.stringify(data) }
  history.push(message)
  if (history.length > HISTORY) history.shift()
  for (const sse of clients) sse.send(message).catch(() => {})
  return message.id
}

const fastify = Fastify()
await fastify.register(fastifySse, { heartbeatInterval: 0, serializer: (data) => data })

fastify.get('/events', { sse: 'only' }, async (request, reply) => {
  const sse = reply.sse
  sse.keepAlive()
  // Headers are otherwise sent with the first event; a subscriber should see them at once.
  sse.sendHeaders()
  reply.raw.flushHeaders()
  await sse.replay(async (lastEventId) => {
    const index = history.findIndex((message) => message.id === lastEventId)
    for (const message of index === -1 ? history : history.slice(index + 1)) await sse.send(message)
  })
  if (!sse.isConnected) return
  clients.add(sse)
  sse.onClose(() => clients.delete(sse))
})

fastifyControl(fastify, publish)

await fastify.listen({ port, host: '127.0.0.1' })
announce(() => fastify.close())
