/**
 * Plain node:http, no library: each event is serialized once into a frame that is written with
 * `res.write` to every open response. The practical limit of a naive implementation.
 */
import http from 'node:http'
import { announce, control, port } from './shared.js'

const clients = new Set()
let seq = 0

function publish(data) {
  const id = String(++seq)
  const frame = Buffer.from(`id: ${id}\ndata: ${JSON.stringify(data)}\n\n`)
  for (const res of clients) res.write(frame)
  return id
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (req.method === 'GET' && url.pathname === '/events') {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    })
    res.flushHeaders()
    clients.add(res)
    res.on('close', () => clients.delete(res))
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

server.listen(port, '127.0.0.1', () => announce())
