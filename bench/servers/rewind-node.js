/**
 * @rewind/core's hub on plain node:http, no framework: the same stream as rewind-express without
 * Express, so that connection setup can be split into what Rewind costs and what Express costs.
 */
import http from 'node:http'
import { createHub } from '@rewind/core'
import { announce, control, port } from './shared.js'

const hub = createHub({ heartbeatInterval: 0 })
const publish = (data) => hub.publish('s', { data })

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (req.method === 'GET' && url.pathname === '/events') {
    hub.serve(req, res, 's')
    return
  }
  control(req.method, url.pathname, url.searchParams, publish).then(
    (body) => {
      if (body === undefined) res.writeHead(404).end()
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    },
    (error) => res.writeHead(500).end(String(error)),
  )
})

server.listen(port, '127.0.0.1', () => announce(() => hub.close().then(() => server.close())))
