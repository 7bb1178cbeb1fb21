/**
 * One suite for every adapter and runtime: the behaviours an event stream promises (framing, resume,
 * the gap signal, answers with their end, 204 and 404, shutdown, a slow client cut off within its
 * bound, clean-up after a disconnect), run over real sockets with real clients against the same app
 * on Express, Fastify, and the Fetch adapter on Node (Hono through `@hono/node-server`), Bun and Deno.
 * Each adapter's own test files keep only what is theirs.
 */
import { connect as connectTcp, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '../../packages/express/test/helpers/event-source.js'
import { openStream } from '../support/raw-client.js'
import { sleep, waitUntil } from '../support/wait.js'
import { type RunningApp, startExpress, startFastify } from './apps/node-apps.ts'
import type { AppOptions } from './apps/routes.ts'
import { runtimeBinary, startHonoNode, startRuntime } from './apps/runtimes.ts'

interface Adapter {
  name: string
  start(options: AppOptions): Promise<RunningApp>
  /** Why it cannot run here, if it cannot (outside CI only: under CI a missing runtime fails). */
  missing?: string | undefined
}

function runtime(name: 'bun' | 'deno'): Adapter {
  const missing =
    runtimeBinary(name) === undefined && CI !== 'true'
      ? `${name} is not installed (pnpm install puts it in node_modules/.bin)`
      : undefined
  return { name: `fetch on ${name}`, start: (options) => startRuntime(name, options), missing }
}

const { CI } = process.env
const ADAPTERS: Adapter[] = [
  { name: 'express', start: startExpress },
  { name: 'fastify', start: startFastify },
  { name: 'fetch on node (hono)', start: startHonoNode },
  runtime('bun'),
  runtime('deno'),
]

/** Bytes each client may have waiting before it is cut off, in the slow-client test. */
const MAX_QUEUE_BYTES = 64 * 1024
const OPTIONS: AppOptions = {
  retry: 50,
  maxQueueBytes: MAX_QUEUE_BYTES,
  maxEventBytes: 32 * 1024,
  heartbeatInterval: 1000,
  history: { maxEvents: 5000 },
}

interface Stats {
  connections: number
  subscribers: number
  slowClosed: number
  queuedBytes: number
  published: number
}

for (const adapter of ADAPTERS) {
  if (adapter.missing !== undefined) {
    describe.skip(`${adapter.name}: ${adapter.missing}`, () => {
      it('conforms', () => {})
    })
    continue
  }

  describe(`conformance: ${adapter.name}`, () => {
    let app: RunningApp
    // One app per adapter for the whole suite (a runtime takes a second to start); every test uses
    // fresh positions, and waits for the counts it asserts on.
    beforeAll(async () => {
      app = await adapter.start(OPTIONS)
    })
    afterAll(async () => {
      await app?.stop()
    })

    const url = (path: string) => `${app.base}${path}`
    const stats = async (): Promise<Stats> => (await fetch(url('/stats'))).json() as Promise<Stats>
    const publish = async (body: object): Promise<string[]> => {
      const response = await fetch(url('/publish'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      expect(response.status).toBe(201)
      return ((await response.json()) as { ids: string[] }).ids
    }
    const startResponse = async (items: string[], interval?: number): Promise<string> => {
      const response = await fetch(url('/responses'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ items, interval }),
      })
      expect(response.status).toBe(201)
      return ((await response.json()) as { id: string }).id
    }
    const until = async (check: (s: Stats) => boolean, what: string, timeout = 5000): Promise<Stats> => {
      const deadline = Date.now() + timeout
      for (;;) {
        const current = await stats()
        if (check(current)) return current
        if (Date.now() > deadline) throw new Error(`still waiting for ${what}: ${JSON.stringify(current)}`)
        await sleep(20)
      }
    }

    it('frames: the event-stream head, the opening retry and position, then events as a parser reads them', async () => {
      const stream = await openStream(url('/events'))
      expect(stream.status).toBe(200)
      expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8')
      expect(stream.headers['cache-control']).toContain('no-transform')
      expect(stream.headers['cache-control']).toContain('no-cache')
      expect(stream.headers['x-accel-buffering']).toBe('no')
      await waitUntil(() => stream.text.includes('id: '), 'the opening position')
      expect(stream.retries).toEqual([50])
      const [plain] = await publish({ data: 'line one\nline two\r\nline three' })
      const [named] = await publish({ event: 'update', data: { n: 1 } })
      const [message, update] = await stream.waitForEvents(2)
      expect(message).toEqual({ id: plain, event: undefined, data: 'line one\nline two\nline three' })
      expect(update).toEqual({ id: named, event: 'update', data: '{"n":1}' })
      expect(stream.text).toContain('data: line one\ndata: line two\ndata: line three\n\n')
    })

    it('delivers live events to a real EventSource', async () => {
      const client = connect(url('/events'))
      await client.opened()
      const [id] = await publish({ data: 'live' })
      expect(await client.take(1)).toEqual([{ type: 'message', data: 'live', lastEventId: id }])
    })

    it('resumes after Last-Event-ID (header or query) with exactly the missed events', async () => {
      const [first, ...missed] = await publish({ data: 'r', count: 4 })
      const fromHeader = await openStream(url('/events'), { 'last-event-id': first! })
      const fromQuery = await openStream(url(`/events?lastEventId=${first}`))
      for (const stream of [fromHeader, fromQuery]) {
        expect((await stream.waitForEvents(3)).map((event) => event.id)).toEqual(missed)
      }
      const [next] = await publish({ data: 'after' })
      for (const stream of [fromHeader, fromQuery]) {
        expect((await stream.waitForEvents(4))[3]!.id).toBe(next)
      }
    })

    it('signals a gap for a position it does not know, then replays what it holds', async () => {
      const stream = await openStream(url('/events'), { 'last-event-id': 'not-an-id-of-this-stream' })
      const [gap] = await stream.waitForEvents(1)
      expect(stream.status).toBe(200)
      expect(gap!.event).toBe('rewind-gap')
      expect(['unknown', 'epoch']).toContain(gap!.data)
      const { published } = await stats()
      const replayed = await stream.waitForEvents(1 + Math.min(published, 5000))
      expect(replayed.length - 1).toBe(published)
    })

    it('serves an answer to its end, then 204 to a client that has the end, and 404 for an unknown id', async () => {
      const id = await startResponse(['a', 'b', 'c'], 5)
      const stream = await openStream(url(`/responses/${id}`))
      await stream.waitForEnd()
      const events = stream.events
      expect(events.map((event) => event.data)).toEqual(['a', 'b', 'c', 'done'])
      expect(events[3]!.event).toBe('rewind-end')
      const again = await fetch(url(`/responses/${id}`), { headers: { 'last-event-id': events[3]!.id! } })
      expect(again.status).toBe(204)
      const middle = await openStream(url(`/responses/${id}`), { 'last-event-id': events[0]!.id! })
      await middle.waitForEnd()
      expect(middle.events.map((event) => event.data)).toEqual(['b', 'c', 'done'])
      const unknown = await fetch(url('/responses/no-such-answer'))
      expect(unknown.status).toBe(404)
      expect(await unknown.json()).toEqual({ error: expect.stringContaining('unknown response') })
    })

    it('releases a client that disconnects within a second', async () => {
      await until((s) => s.connections === 0, 'earlier clients to be gone')
      const stream = await openStream(url('/events'))
      await until((s) => s.subscribers === 1, 'the subscriber')
      stream.close()
      const started = Date.now()
      await until((s) => s.connections === 0, 'the disconnect to be seen', 1000)
      expect(Date.now() - started).toBeLessThanOrEqual(1000)
    })

    it('cuts off a client that stops reading, within its bound, and it resumes without loss', async () => {
      await until((s) => s.connections === 0, 'earlier clients to be gone')
      const before = await stats()
      const socket = await stalledClient(app.base)
      await until((s) => s.subscribers === 1, 'the stalled subscriber')
      const ids: string[] = []
      let peak = 0
      // Bursts of 64 KiB, each in its own turn: the socket buffers fill, then the server's queue,
      // which must never hold much more than the bound before the client is cut off.
      for (let round = 0; round < 400; round++) {
        ids.push(...(await publish({ count: 4, size: 16 * 1024 })))
        const current = await stats()
        peak = Math.max(peak, current.queuedBytes)
        if (current.slowClosed > before.slowClosed) break
      }
      const after = await until((s) => s.slowClosed > before.slowClosed, 'the slow client to be cut off')
      expect(after.connections).toBe(0)
      // The bound, plus one burst written in the turn that found it passed.
      expect(peak).toBeLessThanOrEqual(MAX_QUEUE_BYTES + 4 * (16 * 1024 + 64))
      socket.destroy()
      const resumed = await openStream(url('/events'), { 'last-event-id': ids[0]! })
      const replayed = await resumed.waitForEvents(ids.length - 1, 10_000)
      expect(replayed.map((event) => event.id)).toEqual(ids.slice(1))
    })

    // Last: it closes the hub.
    it('shuts down: every stream ends with a retry hint, and new clients are told to come back', async () => {
      const stream = await openStream(url('/events'))
      await waitUntil(() => stream.text.includes('id: '), 'the opening position')
      const closing = await fetch(url('/close?retry=1000'), { method: 'POST' })
      expect(closing.status).toBe(200)
      await stream.waitForEnd()
      const hint = stream.retries.at(-1)!
      expect(hint).toBeGreaterThanOrEqual(500)
      expect(hint).toBeLessThanOrEqual(1500)
      const late = await openStream(url('/events'))
      await late.waitForEnd()
      expect(late.status).toBe(200)
      expect(late.retries.length).toBeGreaterThan(0)
    })
  })
}

/** A client that sends its request and never reads the response. */
async function stalledClient(base: string): Promise<Socket> {
  const { hostname, port } = new URL(base)
  const socket = connectTcp(Number(port), hostname)
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.pause()
  socket.write(`GET /events HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`)
  return socket
}
