/**
 * The pieces of wire-writer.ts on their own: which transport `directTransport` picks for a real
 * `node:http` or `node:http2` response, `concatFrames` over a range, and a `WireWriter` over an
 * in-memory sink: when its head goes out and with which bytes, where later bytes go, and how it
 * counts a backlog. The wire as a client sees it is in wire-writer.test.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { connectH2 } from '../../../test/support/h2-client.js'
import { listen } from '../../../test/support/listen.js'
import { waitUntil } from '../../../test/support/wait.js'
import type { StoredEvent } from '../src/store.js'
import {
  concatFrames,
  directTransport,
  frameChunk,
  SharedFrames,
  type StartStream,
  type Transport,
  TurnClock,
  WireWriter,
} from '../src/wire-writer.js'
import { closesAfterEach, serveHub } from './helpers/http.js'
import { MemorySink } from './helpers/memory-sink.js'

const { cleanups, hubFor, started } = closesAfterEach()

/** What `directTransport` said about a response, and that response's socket. */
interface Picked {
  transport: Transport | undefined
  socket: net.Socket | null
}

/**
 * Serves each request with `prepare(req, res)` and then `directTransport(res)` after `writeHead`,
 * as serving does; the response then ends. Resolves the picks in request order.
 */
async function pickFor(
  requests: string,
  count: number,
  prepare: (req: IncomingMessage, res: ServerResponse) => void = () => {},
): Promise<Picked[]> {
  const picks: Picked[] = []
  const server = await started(
    listen((req, res) => {
      prepare(req, res)
      res.writeHead(200, { 'content-type': 'text/plain' })
      picks.push({ transport: directTransport(res), socket: res.socket })
      res.end('done')
    }),
  )
  const socket = net.connect(server.port, '127.0.0.1')
  cleanups.push(() => socket.destroy())
  socket.on('error', () => {})
  socket.write(requests)
  await waitUntil(() => picks.length === count, 'every request served', 5000)
  return picks
}

const GET = 'GET / HTTP/1.1\r\nhost: x\r\n\r\n'

describe('directTransport', () => {
  it('takes the socket of an HTTP/1.1 response, with chunked framing', async () => {
    const [pick] = await pickFor(GET, 1)
    expect(pick!.transport).toBeDefined()
    expect(pick!.transport!.out).toBe(pick!.socket)
    expect(pick!.transport!.chunked).toBe(true)
  })

  it('takes the socket of an HTTP/1.0 response, unframed (the body ends with the connection)', async () => {
    const [pick] = await pickFor('GET / HTTP/1.0\r\n\r\n', 1)
    expect(pick!.transport!.out).toBe(pick!.socket)
    expect(pick!.transport!.chunked).toBe(false)
  })

  it('leaves the bytes to res when middleware wraps res.write', async () => {
    const [pick] = await pickFor(GET, 1, (_req, res) => {
      const write = res.write.bind(res)
      res.write = ((...args: Parameters<typeof write>) => write(...args)) as typeof res.write
    })
    expect(pick!.transport).toBeUndefined()
  })

  it('leaves the bytes to res when the socket is already gone', async () => {
    const [pick] = await pickFor(GET, 1, (_req, res) => res.socket!.destroy())
    expect(pick!.transport).toBeUndefined()
  })

  it('leaves the bytes to res while a pipelined request waits for its turn (no socket yet)', async () => {
    let held: ServerResponse | undefined
    const picks: Picked[] = []
    const server = await started(
      listen((req, res) => {
        if (req.url === '/first') {
          // The first response stays open until the second request has been handled.
          held = res
          res.writeHead(200)
          return
        }
        res.writeHead(200, { 'content-type': 'text/plain' })
        picks.push({ transport: directTransport(res), socket: res.socket })
        res.end('second')
        held?.end('first')
      }),
    )
    const socket = net.connect(server.port, '127.0.0.1')
    cleanups.push(() => socket.destroy())
    let raw = ''
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      raw += chunk
    })
    socket.write('GET /first HTTP/1.1\r\nhost: x\r\n\r\nGET /second HTTP/1.1\r\nhost: x\r\n\r\n')
    await waitUntil(
      () => raw.includes('second'),
      () => raw,
      5000,
    )
    expect(picks).toEqual([{ transport: undefined, socket: null }])
    // Both responses, in order.
    expect(raw.indexOf('first')).toBeLessThan(raw.indexOf('second'))
  })

  it('leaves the bytes to res when res holds bytes of its own (written while its socket was not writable)', async () => {
    const picks: Picked[] = []
    const server = await started(
      listen((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' })
        // A socket that no longer takes writes: what res writes stays in res, not in the socket.
        res.socket!.end()
        res.write('held')
        expect(res.writableLength).toBeGreaterThan(res.socket!.writableLength)
        picks.push({ transport: directTransport(res), socket: res.socket })
        res.destroy()
      }),
    )
    const socket = net.connect(server.port, '127.0.0.1')
    cleanups.push(() => socket.destroy())
    socket.on('error', () => {})
    socket.write(GET)
    await waitUntil(() => picks.length === 1, 'the request served', 5000)
    expect(picks[0]!.transport).toBeUndefined()
  })

  it('leaves the bytes to res on HTTP/2', async () => {
    const picks: (Transport | undefined)[] = []
    const server = await listen(
      http2.createServer((_req, res) => {
        res.writeHead(200)
        picks.push(directTransport(res))
        res.end()
      }),
    )
    cleanups.push(() => server.close())
    const session = connectH2(server.url)
    cleanups.push(() => session.close())
    const stream = session.request({ ':path': '/' })
    stream.resume()
    await new Promise((resolve) => stream.on('end', resolve))
    expect(picks).toEqual([undefined])
  })
})

describe('closing a connection at shutdown', () => {
  it('ends a pipelined stream queued behind another, then closes the connection', async () => {
    const hub = hubFor({ heartbeatInterval: 0 })
    const server = await started(serveHub(hub, 'news'))
    const socket = net.connect(server.port, '127.0.0.1')
    cleanups.push(() => socket.destroy())
    let raw = ''
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      raw += chunk
    })
    const closed = new Promise((resolve) => socket.on('close', resolve))
    socket.write('GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n')
    await waitUntil(() => hub.stats().subscribers === 2, 'both requests subscribed', 5000)
    await hub.close()
    await closed
    // Two complete chunked responses, the second one's head and end flushed once the first ended.
    expect(raw.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2)
    expect(raw.match(/\r\n0\r\n\r\n/g)).toHaveLength(2)
  })
})

describe('concatFrames', () => {
  const events = ['a', 'bb', 'ccc', 'dddd'].map(
    (data, i) => ({ id: String(i + 1), frame: Buffer.from(`data: ${data}\n\n`) }) as StoredEvent,
  )
  const total = (from: number, to: number): number =>
    events.slice(from, to).reduce((sum, event) => sum + event.frame.length, 0)

  it("uses a single event's frame as it is, not a copy", () => {
    for (const at of [0, 2, 3]) {
      expect(concatFrames(events, events[at]!.frame.length, at, at + 1)).toBe(events[at]!.frame)
    }
  })

  it('joins the frames of exactly the range asked for', () => {
    for (const [start, end] of [
      [0, 4],
      [0, 2],
      [1, 3],
      [2, 4],
      [1, 2],
    ] as const) {
      expect(concatFrames(events, total(start, end), start, end).toString()).toBe(
        events
          .slice(start, end)
          .map((event) => event.frame.toString())
          .join(''),
      )
    }
  })
})

/** A `StartStream` that records its calls and hands back `transport`. */
function recordingStart(transport?: Transport): { start: StartStream; flushes: boolean[] } {
  const flushes: boolean[] = []
  return {
    flushes,
    start: (flush) => {
      flushes.push(flush)
      return transport
    },
  }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
const PREAMBLE = Buffer.from('retry: 20\n\n')
const FRAME = Buffer.from('data: one\n\n')

describe('WireWriter: the head', () => {
  it('sends the head at open, flushed, when there is nothing to send with it', () => {
    const { start, flushes } = recordingStart()
    const sink = new MemorySink()
    new WireWriter(sink, new TurnClock(), start).open(undefined, false)
    expect(flushes).toEqual([true])
    expect(sink.written).toEqual([])
  })

  it('sends the head at open with the opening hint, in the same packet (not flushed alone)', () => {
    const { start, flushes } = recordingStart()
    const sink = new MemorySink()
    new WireWriter(sink, new TurnClock(), start).open(PREAMBLE, false)
    expect(flushes).toEqual([false])
    expect(sink.text()).toBe('retry: 20\n\n')
  })

  it('defers the head to the first write, which carries the hint and the frame as one write', () => {
    const { start, flushes } = recordingStart()
    const sink = new MemorySink()
    const writer = new WireWriter(sink, new TurnClock(), start)
    writer.open(PREAMBLE, true)
    expect(flushes).toEqual([])
    writer.sendPendingHead()
    expect(flushes).toEqual([false])
    expect(sink.written.map(String)).toEqual(['retry: 20\n\n'])
    writer.write(FRAME)
    expect(sink.written.map(String)).toEqual(['retry: 20\n\n', 'data: one\n\n'])

    const later = recordingStart()
    const other = new MemorySink()
    const deferred = new WireWriter(other, new TurnClock(), later.start)
    deferred.open(PREAMBLE, true)
    deferred.write(FRAME)
    expect(later.flushes).toEqual([false])
    expect(other.written.map(String)).toEqual(['retry: 20\n\ndata: one\n\n'])
  })

  it('sends a deferred head with a heartbeat or the last bytes, whichever comes first', () => {
    const beat = recordingStart()
    const beating = new MemorySink()
    const first = new WireWriter(beating, new TurnClock(), beat.start)
    first.open(PREAMBLE, true)
    first.heartbeat()
    expect(beat.flushes).toEqual([false])
    expect(beating.text()).toBe('retry: 20\n\n:\n\n')

    const last = recordingStart()
    const ending = new MemorySink()
    const second = new WireWriter(ending, new TurnClock(), last.start)
    second.open(undefined, true)
    second.writeLast(Buffer.from('retry: 500\n\n'))
    expect(last.flushes).toEqual([false])
    expect(ending.text()).toBe('retry: 500\n\n')

    const bare = recordingStart()
    const third = new WireWriter(new MemorySink(), new TurnClock(), bare.start)
    third.open(undefined, true)
    third.writeLast(undefined)
    expect(bare.flushes).toEqual([true])
  })
})

describe('WireWriter: the transport the head chose', () => {
  it('writes later bytes to the chosen output, each framed as one chunk', () => {
    const socket = new MemorySink()
    const sink = new MemorySink()
    const writer = new WireWriter(sink, new TurnClock(), recordingStart({ out: socket, chunked: true }).start)
    writer.open(PREAMBLE, false)
    expect(writer.output).toBe(socket)
    writer.write(FRAME)
    writer.heartbeat()
    writer.writeLast(Buffer.from('retry: 5\n\n'))
    expect(sink.written).toEqual([])
    expect(socket.written.map(String)).toEqual(
      [PREAMBLE, FRAME, Buffer.from(':\n\n'), Buffer.from('retry: 5\n\n')].map((bytes) =>
        frameChunk(bytes).toString(),
      ),
    )
  })

  it('frames the deferred hint and the first frame as one chunk', () => {
    const socket = new MemorySink()
    const writer = new WireWriter(
      new MemorySink(),
      new TurnClock(),
      recordingStart({ out: socket, chunked: true }).start,
    )
    writer.open(PREAMBLE, true)
    writer.write(FRAME)
    expect(socket.written.map(String)).toEqual([frameChunk(Buffer.concat([PREAMBLE, FRAME])).toString()])
  })

  it('uses the frames shared with other writers as framed once, unless the hint goes with them', () => {
    const shared = new SharedFrames(FRAME)
    const withHint = new MemorySink()
    const hinted = new WireWriter(
      new MemorySink(),
      new TurnClock(),
      recordingStart({ out: withHint, chunked: true }).start,
    )
    hinted.open(PREAMBLE, true)
    hinted.writeShared(shared)
    expect(withHint.written.map(String)).toEqual([frameChunk(Buffer.concat([PREAMBLE, FRAME])).toString()])

    // The very buffer framed once for every writer, not a copy framed again.
    const handed: Uint8Array[] = []
    const bare = new MemorySink()
    const write = bare.write.bind(bare)
    bare.write = (chunk) => {
      handed.push(chunk)
      return write(chunk)
    }
    const plain = new WireWriter(
      new MemorySink(),
      new TurnClock(),
      recordingStart({ out: bare, chunked: true }).start,
    )
    plain.open(undefined, true)
    plain.writeShared(shared)
    expect(handed).toHaveLength(1)
    expect(handed[0]).toBe(shared.framed)
  })

  it('writes unframed to the sink when the head chose no transport', () => {
    const sink = new MemorySink()
    const writer = new WireWriter(sink, new TurnClock(), recordingStart(undefined).start)
    writer.open(PREAMBLE, false)
    writer.write(FRAME)
    expect(writer.output).toBe(sink)
    expect(sink.text()).toBe('retry: 20\n\ndata: one\n\n')
  })
})

describe('WireWriter: silence and backlog', () => {
  it('has written nothing until it writes, for the heartbeat tick', () => {
    const writer = new WireWriter(new MemorySink(), new TurnClock(), undefined)
    writer.open(PREAMBLE, false)
    expect(writer.takeWrote()).toBe(false)
    writer.write(FRAME)
    expect(writer.takeWrote()).toBe(true)
    expect(writer.takeWrote()).toBe(false)
  })

  it("does not count this turn's bytes as a backlog, and counts them once the turn is over", async () => {
    const sink = new MemorySink({ full: true })
    const writer = new WireWriter(sink, new TurnClock(), undefined)
    writer.open(undefined, false)
    writer.write(FRAME)
    writer.write(FRAME)
    expect(writer.queuedBytes).toBe(2 * FRAME.length)
    expect(writer.backlog).toBe(0)
    await nextTurn()
    expect(writer.backlog).toBe(2 * FRAME.length)
    // A new turn's writes: only the earlier turn's bytes are a backlog.
    writer.write(FRAME)
    writer.writeShared(new SharedFrames(FRAME))
    expect(writer.queuedBytes).toBe(4 * FRAME.length)
    expect(writer.backlog).toBe(2 * FRAME.length)
    await nextTurn()
    expect(writer.backlog).toBe(4 * FRAME.length)
  })
})
