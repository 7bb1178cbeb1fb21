/**
 * The @rewind/express server of the benches, on whatever history `events` was given: the memory one
 * (rewind-express.js) or Redis (rewind-redis.js).
 */
import express from 'express'
import { announce, expressControl, port, rewindControls } from './shared.js'

/**
 * Serves stream `s` at /events, answers at /answers/:id and the control routes, on `port`; on
 * SIGTERM closes `events` with the server, then `store` if given (a store stays its creator's).
 */
export function serveRewindExpress(events, store) {
  const { publish, startAnswer } = rewindControls(events)
  const app = express()
  app.use(events)

  app.get('/events', (req, res) => {
    res.sse('s')
  })

  app.get('/answers/:id', (req, res) => {
    res.sse({ response: req.params.id })
  })

  app.all(['/publish', '/clock', '/gc', '/answer'], expressControl(publish, startAnswer))

  const server = app.listen(port, '127.0.0.1', () =>
    announce(async () => {
      await events.close({ server })
      await store?.close()
    }),
  )
}
