/**
 * Plain node:http, no library: each event is serialized once into a frame that is written with
 * `res.write` to every open response. The practical limit of a naive implementation. Replay and
 * streamed answers are hand-written as naive code does them (`handWrittenHistory`,
 * `handWrittenAnswers` in shared.js): one write of everything the client is missing.
 */
import http from 'node:http'
import { announce, control, handWrittenAnswers, handWrittenHistory, port } from './shared.js'

const clients = new Set()
const history = handWrittenHistory()
const answers = handWrittenAnswers()
let seq = 0

function publish(data) {
  const id = String(++seq)
  const frame = Buffer.from(`id: ${id}\ndata: ${JSON.stringify(data)}\n\n`)
  history.push(frame)
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
    const lastEventId = req.headers['last-event-id']
    const missed = lastEventId === undefined ? undefined : history.after(lastEventId)
    if (missed !== undefined) res.write(missed)
    else res.flushHeaders()
    clients.add(res)
    res.on('close', () => clients.delete(res))
    return
  }
  if (req.method === 'GET' && url.pathname.startsWith('/answers/')) {
    const answer = answers.get(url.pathname.slice('/answers/'.length))
    if (answer === undefined) return res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.end(answer)
    return
  }
  control(req.method, url.pathname, url.searchParams, publish, answers.start).then(
    (body) => {
      if (body === undefined) res.writeHead(404).end()
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    },
    (error) => res.writeHead(500).end(String(error)),
  )
})

server.listen(port, '127.0.0.1', () => announce())
