/** @rewind/express with its default history (1000 events) and no heartbeats. */
import { sse } from '@rewind/express'
import { serveRewindExpress } from './rewind-express-app.js'

serveRewindExpress(sse({ heartbeatInterval: 0 }))
