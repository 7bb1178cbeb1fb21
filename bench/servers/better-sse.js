/**
 * better-sse: one session per client, registered with a Channel; each event is a channel broadcast.
 * It keeps no history (no replay). The data is serialized once per event (identity serializer),
 * the library's best case; keep-alive pings are off.
 */
import { createChannel, createSession } from 'better-sse'
import express from 'express'
import { announce, expressControl, port } from './shared.js'

const channel = createChannel()
const sessionOptions = { keepAlive: null, serializer: (data) => data }
let seq = 0

function publish(data) {
  const id = String(++seq)
  channel.broadcast(JSON.stringify(data), 'message', { eventId: id })
  return id
}

const app = express()

app.get('/events', async (req, res) => {
  const session = await createSession(req, res, sessionOptions)
  if (session.isConnected) channel.register(session)
})

app.all(['/publish', '/clock', '/gc'], expressControl(publish))

app.listen(port, '127.0.0.1', () => announce())
