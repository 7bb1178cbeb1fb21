/**
 * Express with hand-written SSE, as tutorials show it: set the headers, flush them, keep the
 * response in a set and `res.write` a `data:` frame to each. The frame is serialized once per event.
 * Replay and streamed answers are hand-written as on raw node:http (`handWrittenHistory`,
 * `handWrittenAnswers` in shared.js), so what Express itself costs can be told from Rewind's part.
 */
import express from 'express'
import { announce, expressControl, handWrittenAnswers, handWrittenHistory, port } from './shared.js'

const clients = new Set()
const history = handWrittenHistory()
const answers = handWrittenAnswers()
let seq = 0

function publish(data) {
  const id = String(++seq)
  const frame = `id: ${id}\ndata: ${JSON.stringify(data)}\n\n`
  history.push(Buffer.from(frame))
  for (const res of clients) res.write(frame)
  return id
}

const app = express()

app.get('/events', (req, res) => {
  res.setHeader('Content-Type', 'text/event-stream')
  res.setHeader('Cache-Control', 'no-cache')
  res.setHeader('Connection', 'keep-alive')
  const lastEventId = req.get('last-event-id')
  const missed = lastEventId === undefined ? undefined : history.after(lastEventId)
  if (missed !== undefined) res.write(missed)
  else res.flushHeaders()
  clients.add(res)
  req.on('close', () => clients.delete(res))
})

app.get('/answers/:id', (req, res) => {
  const answer = answers.get(req.params.id)
  if (answer === undefined) return res.status(404).end()
  res.setHeader('Content-Type', 'text/event-stream')
  res.setHeader('Cache-Control', 'no-cache')
  res.end(answer)
})

app.all(['/publish', '/clock', '/gc', '/answer'], expressControl(publish, answers.start))

app.listen(port, '127.0.0.1', () => announce())
