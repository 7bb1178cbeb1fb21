/** @rewind/express with its default history (1000 events) and no heartbeats. */
import { sse } from '@rewind/express'
import express from 'express'
import { announce, answerItems, control, port } from './shared.js'

const events = sse({ heartbeatInterval: 0 })
const publish = (data) => events.publish('s', { data })
const startAnswer = async (tokens) => {
  const { id, done } = await events.responses.start(answerItems(tokens))
  await done
  return id
}

const app = express()
app.use(events)

app.get('/events', (req, res) => {
  res.sse('s')
})

app.get('/answers/:id', (req, res) => {
  res.sse({ response: req.params.id })
})

app.all(['/publish', '/clock', '/gc', '/answer'], async (req, res, next) => {
  try {
    const body = await control(req.method, req.path, req.query, publish, startAnswer)
    if (body === undefined) next()
    else res.json(body)
  } catch (error) {
    next(error)
  }
})

const server = app.listen(port, '127.0.0.1', () => announce(() => events.close({ server })))
