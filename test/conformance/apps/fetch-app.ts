/**
 * The conformance app on `@rewind/fetch` and Hono: one file for every runtime (Node through
 * `@hono/node-server`, Bun, Deno), as an application would write it.
 */
import { type FetchSse, sse } from '@rewind/fetch'
import { Hono } from 'hono'
import { type AppOptions, eventsToPublish, type PublishBody, produce, type ResponseBody } from './routes.ts'

export function createFetchApp(options: AppOptions): { app: Hono; events: FetchSse<string> } {
  const events = sse(options)
  const app = new Hono()
  app.get('/events', (c) => events.serve(c.req.raw, 'news'))
  app.post('/publish', async (c) => {
    const ids = eventsToPublish(await c.req.json<PublishBody>()).map((input) => events.publish('news', input))
    return c.json({ ids }, 201)
  })
  app.post('/responses', async (c) => {
    const body = await c.req.json<ResponseBody>()
    const { id } = await events.responses.start(produce(body))
    return c.json({ id }, 201)
  })
  app.get('/responses/:id', (c) => events.serve(c.req.raw, { response: c.req.param('id') }))
  app.get('/stats', (c) => c.json(events.hub.stats()))
  app.post('/close', (c) => {
    const retry = c.req.query('retry')
    void events.close(retry === undefined ? {} : { retry: Number(retry) })
    return c.json({ closing: true })
  })
  return { app, events }
}
