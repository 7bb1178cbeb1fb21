/**
 * @rewind/express served by a route handler alone (`events.handler('s')`), without `app.use(events)`:
 * what connection setup costs when no middleware adds `res.sse` to every response.
 */
import { sse } from '@rewind/express'
import express from 'express'
import { announce, expressControl, port } from './shared.js'

const events = sse({ heartbeatInterval: 0 })
const publish = (data) => events.publish('s', { data })

const app = express()
app.get('/events', events.handler('s'))

app.all(['/publish', '/clock', '/gc'], expressControl(publish))

const server = app.listen(port, '127.0.0.1', () => announce(() => events.close({ server })))
