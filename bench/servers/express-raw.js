/**
 * Express with hand-written SSE, as tutorials show it: set the headers, flush them, keep the
 * response in a set and `res.write` a `data:` frame to each. The frame is serialized once per event.
 */
import express from 'express'
import { announce, control, port } from './shared.js'

const clients = new Set()
let seq = 0

function publish(data) {
  const id = String(++seq)
  const frame = `id: ${id}\ndata: ${JSON.stringify(data)}\n\n`
  for (const res of clients) res.write(frame)
  return id
}

const app = express()

app.get('/events', (req, res) => {
  res.setHeader('Content-Type', 'text/event-stream')
  res.setHeader('Cache-Control', 'no-cache')
  res.setHeader('Connection', 'keep-alive')
  res.flushHeaders()
  clients.add(res)
  req.on('close', () => clients.delete(res))
})

app.all(['/publish', '/clock', '/gc'], async (req, res, next) => {
  try {
    const body = await control(req.method, req.path, req.query, publish)
    if (body === undefined) next()
    else res.json(body)
  } catch (error) {
    next(error)
  }
})

app.listen(port, '127.0.0.1', () => announce())
