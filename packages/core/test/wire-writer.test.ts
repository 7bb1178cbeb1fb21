/**
 * The bytes on the way out (wire-writer.ts): HTTP/1.1 chunk framing and the direct socket
 * transport, checked on the wire over real sockets, and the turn accounting that tells a burst from
 * a backlog, checked on its own.
 */
import type http from 'node:http'
import net from 'node:net'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { listen } from '../../../test/support/listen.js'
import { RawHttpClient } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { frameChunk, TurnClock } from '../src/wire-writer.js'
import { closesAfterEach, serveHub } from './helpers/http.js'

const { cleanups, hubFor, started } = closesAfterEach()

describe('frameChunk', () => {
  it('frames any bytes as one HTTP/1.1 chunk: hex size, CRLF, the bytes, CRLF', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const framed = frameChunk(bytes)
        const lineEnd = framed.indexOf('\r\n')
        expect(framed.subarray(0, lineEnd).toString('latin1')).toBe(bytes.length.toString(16))
        expect(framed.subarray(lineEnd + 2, lineEnd + 2 + bytes.length)).toEqual(Buffer.from(bytes))
        expect(framed.subarray(lineEnd + 2 + bytes.length).toString('latin1')).toBe('\r\n')
        expect(framed.length).toBe(lineEnd + 2 + bytes.length + 2)
      }),
    )
  })
})

describe('TurnClock', () => {
  it('moves once per turn of the event loop in which something was marked, and only then', async () => {
    const clock = new TurnClock()
    expect(clock.mark()).toBe(0)
    expect(clock.mark()).toBe(0)
    expect(clock.turn).toBe(0)
    await new Promise<void>((resolve) => process.nextTick(resolve))
    expect(clock.turn).toBe(1)
    // Nothing marked in this turn: the counter stays.
    await new Promise<void>((resolve) => setImmediate(resolve))
    expect(clock.turn).toBe(1)
    expect(clock.mark()).toBe(1)
  })
})

describe('the path of the bytes', () => {
  it('serves an HTTP/1.0 client without chunked framing', async () => {
    const hub = hubFor()
    const server = await started(serveHub(hub, 'news'))
    const socket = net.connect(server.port, '127.0.0.1')
    cleanups.push(() => socket.destroy())
    socket.write('GET /events HTTP/1.0\r\n\r\n')
    let raw = ''
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      raw += chunk
    })
    await waitUntil(() => hub.stats().subscribers === 1, 'hub.stats().subscribers === 1', 5000)
    hub.publish('news', { data: 'one' })
    hub.publish('news', { data: 'two\nlines' })
    await waitUntil(
      () => raw.includes('data: lines'),
      () => raw,
      5000,
    )
    const [head, body] = raw.split('\r\n\r\n') as [string, string]
    expect(head).toMatch(/^HTTP\/1\.[01] 200/)
    expect(head.toLowerCase()).not.toContain('transfer-encoding')
    const events: EventSourceMessage[] = []
    createParser({ onEvent: (event) => events.push(event) }).feed(body)
    expect(events.map((event) => event.data)).toEqual(['one', 'two\nlines'])
    // No chunk sizes in the body: the bytes are the frames themselves.
    expect(body).toMatch(/^retry: 20\n\nid: /)
  })

  it('goes through res.write when middleware wraps it, so the wrapper sees every frame', async () => {
    const hub = hubFor()
    const seen: string[] = []
    const server = await started(
      listen((req, res) => {
        const write = res.write.bind(res) as (chunk: Uint8Array) => boolean
        res.write = ((chunk: Uint8Array) => {
          seen.push(Buffer.from(chunk).toString())
          return write(chunk)
        }) as typeof res.write
        hub.serve(req, res, 'news')
      }),
    )
    const client = new RawHttpClient(server.port, { path: '/' })
    cleanups.push(() => client.destroy())
    await client.until(() => client.retries.length === 1)
    hub.publish('news', { data: 'watched' })
    await client.until(() => client.events.length === 1)
    expect(client.events[0]!.data).toBe('watched')
    expect(seen.join('')).toContain('data: watched\n\n')
  })
})

describe('the end of a response', () => {
  /** Parses one chunked response from `raw`; returns what follows its terminating chunk, or undefined. */
  function afterChunkedResponse(raw: Buffer): Buffer | undefined {
    const headEnd = raw.indexOf('\r\n\r\n')
    if (headEnd === -1) return undefined
    let at = headEnd + 4
    for (;;) {
      const lineEnd = raw.indexOf('\r\n', at)
      if (lineEnd === -1) return undefined
      const size = Number.parseInt(raw.subarray(at, lineEnd).toString('latin1'), 16)
      if (Number.isNaN(size)) throw new Error(`not a chunk size at byte ${at}`)
      if (raw.length < lineEnd + 2 + size + 2) return undefined
      at = lineEnd + 2 + size + 2
      if (size === 0) return raw.subarray(at)
    }
  }

  it('writes nothing after the application ends a response with a backlog, so keep-alive stays in sync', async () => {
    // A queue limit far above the backlog: the client must not be cut for being slow.
    const hub = hubFor({ heartbeatInterval: 0, maxQueueBytes: 64 * 2 ** 20 })
    let response: http.ServerResponse | undefined
    const server = await started(
      listen((req, res) => {
        if (req.url === '/plain') {
          res.end('plain')
          return
        }
        response = res
        hub.serve(req, res, 'news')
      }),
    )
    const socket = net.connect(server.port, '127.0.0.1')
    cleanups.push(() => socket.destroy())
    let raw = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      raw = Buffer.concat([raw, chunk])
    })
    socket.write('GET /events HTTP/1.1\r\nhost: x\r\n\r\n')
    await waitUntil(() => hub.stats().subscribers === 1, 'hub.stats().subscribers === 1', 5000)
    socket.pause()
    // Fill the kernel's buffers, then some: a backlog waits in the server.
    const data = 'x'.repeat(64 * 1024)
    for (let i = 0; i < 400 && hub.stats().queuedBytes < 512 * 1024; i++) {
      hub.publish('news', { data })
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(hub.stats().queuedBytes).toBeGreaterThanOrEqual(512 * 1024)
    response!.end()
    // Events published after the end: none may reach the socket.
    for (let i = 0; i < 4; i++) {
      hub.publish('news', { data: 'late' })
      await new Promise((resolve) => setImmediate(resolve))
    }
    socket.resume()
    await waitUntil(
      () => afterChunkedResponse(raw) !== undefined,
      'afterChunkedResponse(raw) !== undefined',
      10_000,
    )
    await new Promise((resolve) => setTimeout(resolve, 100))
    const trailing = afterChunkedResponse(raw)!
    expect(trailing.toString('latin1').slice(0, 80)).toBe('')
    // The same connection serves the next request with a well-formed response.
    const before = raw.length
    socket.write('GET /plain HTTP/1.1\r\nhost: x\r\n\r\n')
    await waitUntil(
      () => raw.subarray(before).includes('plain'),
      () => raw.subarray(before).toString(),
      5000,
    )
    expect(raw.subarray(before).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(hub.stats().subscribers).toBe(0)
  })
})
