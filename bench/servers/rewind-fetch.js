/** @rewind/fetch behind Hono on Node (`@hono/node-server`), with its default history and no heartbeats. */
import { serve } from '@hono/node-server'
import { sse } from '@rewind/fetch'
import { Hono } from 'hono'
import { announce, answerItems, control, port } from './shared.js'

const events = sse({ heartbeatInterval: 0 })
const publish = (data) => events.publish('s', { data })
const startAnswer = async (tokens) => {
  const { id, done } = await events.responses.start(answerItems(tokens))
  await done
  return id
}

const app = new Hono()
app.get('/events', (c) => events.serve(c.req.raw, 's'))
app.get('/answers/:id', (c) => events.serve(c.req.raw, { response: c.req.param('id') }))
app.all('*', async (c) => {
  const url = new URL(c.req.url)
  const body = await control(c.req.method, url.pathname, url.searchParams, publish, startAnswer)
  return body === undefined ? c.notFound() : c.json(body)
})

const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => announce(() => events.close()))
server.on('error', (error) => {
  throw error
})
