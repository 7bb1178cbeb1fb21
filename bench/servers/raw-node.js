/**
 * Plain node:http, no library: each event is serialized once into a frame that is written with
 * `res.write` to every open response. The practical limit of a naive implementation. Replay and
 * streamed answers are hand-written as naive code does them (`handWrittenStream`,
 * `handWrittenAnswers` in shared.js): one write of everything the client is missing.
 */
import http from 'node:http'
import { announce, control, handWrittenAnswers, handWrittenStream, port } from './shared.js'

const stream = handWrittenStream()
const answers = handWrittenAnswers()

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (req.method === 'GET' && url.pathname === '/events') {
    stream.subscribe(res, req.headers['last-event-id'])
    return
  }
  if (req.method === 'GET' && url.pathname.startsWith('/answers/')) {
    const answer = answers.get(url.pathname.slice('/answers/'.length))
    if (answer === undefined) return res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.end(answer)
    return
  }
  control(req.method, url.pathname, url.searchParams, stream.publish, answers.start).then(
    (body) => {
      if (body === undefined) res.writeHead(404).end()
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    },
    (error) => res.writeHead(500).end(String(error)),
  )
})

server.listen(port, '127.0.0.1', () => announce())
