/**
 * Plain node:http, no library: each event is serialized once into a frame that is written with
 * `res.write` to every open response. The practical limit of a naive implementation.
 */
import http from 'node:http'
import { announce, answerItems, control, port } from './shared.js'

const clients = new Set()
let seq = 0

/**
 * Streamed answers, as a hand-written server keeps them: every frame of each answer in an array,
 * replayed to a client in one write (the best case for naive code: no history bounds, no resume
 * position, nothing shared between clients but the frames).
 */
const answers = new Map()
async function startAnswer(tokens) {
  const id = String(answers.size + 1)
  const frames = []
  let n = 0
  for await (const item of answerItems(tokens))
    frames.push(`id: ${++n}\ndata: ${JSON.stringify(item.data)}\n\n`)
  frames.push(`id: ${++n}\nevent: end\ndata: done\n\n`)
  answers.set(id, Buffer.from(frames.join('')))
  return id
}

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
  if (req.method === 'GET' && url.pathname.startsWith('/answers/')) {
    const answer = answers.get(url.pathname.slice('/answers/'.length))
    if (answer === undefined) return res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.end(answer)
    return
  }
  control(req.method, url.pathname, url.searchParams, publish, startAnswer).then(
    (body) => {
      if (body === undefined) res.writeHead(404).end()
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    },
    (error) => res.writeHead(500).end(String(error)),
  )
})

server.listen(port, '127.0.0.1', () => announce())
