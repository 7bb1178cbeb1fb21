/**
 * The smoke test every live demo passes: it starts the example as a child process (`node index.js`
 * with PORT=0, reading the URL it prints), drives the HTTP contract with the `eventsource` client,
 * and stops it with SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { EventSource, type FetchLike } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { Gate } from '../../../test/support/gate.js'

/** Bound of every wait; generous because CI machines are small and shared. */
const WAIT = { timeout: 15_000, interval: 20 }

interface Received {
  id: string
  event: string
  data: string
}

interface RunningExample {
  url: string
  child: ChildProcess
  output(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Starts `node <entry>` (or `command <entry>`: another runtime) on a free port and resolves with the
 * URL it prints. The background ticker starts paused (TICKER=off), so that the tests see only the
 * events they publish; `env` may override.
 */
export async function startExample(
  entry: URL,
  env: Record<string, string> = {},
  command: readonly string[] = [process.execPath],
): Promise<RunningExample> {
  const [program, ...args] = command
  const child = spawn(program!, [...args, fileURLToPath(entry)], {
    cwd: fileURLToPath(new URL('.', entry)),
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', TICKER: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const url = await vi
    .waitFor(() => {
      if (child.exitCode !== null) throw new Error(`the example exited early:\n${output}`)
      const match = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(output)
      if (match === null) throw new Error(`the example printed no URL yet:\n${output}`)
      return match[1]!
    }, WAIT)
    .catch((error: unknown) => {
      child.kill('SIGKILL')
      throw error
    })
  return { url, child, output: () => output, exited }
}

/**
 * An `eventsource` client that records what it receives and the `Last-Event-ID` of every
 * connection attempt, and can hold a reconnection back (so events are surely published while it is away).
 */
function follow(url: string, names: string[] = []) {
  const received: Received[] = []
  const lastEventIds: (string | null)[] = []
  const gate = new Gate()
  const recordingFetch: FetchLike = async (input, init) => {
    lastEventIds.push(new Headers(init.headers).get('last-event-id'))
    if (gate.passage !== undefined) await gate.passage
    return fetch(input, init)
  }
  const source = new EventSource(url, { fetch: recordingFetch })
  const record = (event: MessageEvent) =>
    received.push({ id: event.lastEventId, event: event.type, data: event.data })
  for (const name of ['message', ...names]) source.addEventListener(name, record)
  const opened = new Promise<void>((resolve) =>
    source.addEventListener('open', () => resolve(), { once: true }),
  )
  return {
    source,
    received,
    lastEventIds,
    opened,
    hold: gate.hold,
    release: gate.release,
  }
}

/** POSTs a JSON value, raw text with a content type, or (body `undefined`) nothing at all. */
export async function post(url: string, body?: unknown, contentType = 'application/json') {
  const response = await fetch(
    url,
    body === undefined
      ? { method: 'POST' }
      : {
          method: 'POST',
          headers: { 'content-type': contentType },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        },
  )
  const text = await response.text()
  return { status: response.status, type: response.headers.get('content-type') ?? '', text }
}

/**
 * Publishes `data` through the demo's `POST /events` at `base`, checks the 201, and returns the
 * reply (the event's `id`, and whatever else the demo tells).
 */
export async function publishData<T extends { id: string } = { id: string }>(
  base: string,
  data: string,
): Promise<T> {
  const answer = await post(`${base}/events`, { data })
  expect(answer.status, answer.text).toBe(201)
  return JSON.parse(answer.text) as T
}

async function publish(base: string, input: { event?: string; data: unknown }): Promise<Received> {
  const answer = await post(`${base}/events`, input)
  expect(answer.status, answer.text).toBe(201)
  const { id } = JSON.parse(answer.text) as { id: string }
  const data = typeof input.data === 'string' ? input.data : JSON.stringify(input.data)
  return { id, event: input.event ?? 'message', data }
}

function expectJsonError(answer: { status: number; type: string; text: string }, status: number): void {
  expect(answer.status, answer.text).toBe(status)
  expect(answer.type).toMatch(/^application\/json/)
  const { error } = JSON.parse(answer.text) as { error: unknown }
  expect(typeof error === 'string' && error.length > 0, answer.text).toBe(true)
}

/** A live demo started for the tests of one `describe` (see {@link runExample}). */
class ExampleFixture {
  app!: RunningExample
  base = ''
  /** Closed after the tests. */
  readonly sources: EventSource[] = []
}

/**
 * Starts the demo at `entry` (with `command`: see {@link startExample}) before the tests of the
 * calling `describe`; after them, closes the sources the tests kept and kills the demo if it runs.
 */
export function runExample(entry: URL, command?: readonly string[]): ExampleFixture {
  const running = new ExampleFixture()
  beforeAll(async () => {
    running.app = await startExample(entry, {}, command)
    running.base = running.app.url
  })
  afterAll(() => {
    for (const source of running.sources) source.close()
    if (running.app !== undefined && running.app.child.exitCode === null) running.app.child.kill('SIGKILL')
  })
  return running
}

/** The smoke test of one live demo, started from `entry` (with `command`: see {@link startExample}). */
export function smokeTest(name: string, entry: URL, command?: readonly string[]): void {
  describe(`${name}: smoke test of the running app`, () => {
    const running = runExample(entry, command)

    function open(client: string, names: string[] = []) {
      const follower = follow(`${running.base}/events?client=${client}`, names)
      running.sources.push(follower.source)
      return follower
    }

    it('serves the demo page', async () => {
      const response = await fetch(`${running.base}/`)
      expect(response.status).toBe(200)
      expect(response.headers.get('content-type')).toMatch(/^text\/html/)
      expect(await response.text()).toContain('new EventSource(')
    })

    it('delivers published events: string, JSON, multi-line, named', async () => {
      const follower = open('smoke-live', ['note'])
      await follower.opened
      const sent = [
        await publish(running.base, { data: 'hello' }),
        await publish(running.base, { event: 'note', data: { sku: 'A-17', qty: 2 } }),
        await publish(running.base, { data: 'first line\nsecond line\r\nthird line' }),
      ]
      // SSE normalises CRLF to LF in data.
      sent[2]!.data = 'first line\nsecond line\nthird line'
      await vi.waitFor(() => expect(follower.received).toHaveLength(3), WAIT)
      expect(follower.received).toEqual(sent)
      follower.source.close()
    })

    it('resumes after a server-side drop with exactly the missed events', async () => {
      const follower = open('smoke-drop', ['note'])
      await follower.opened
      const before = [
        await publish(running.base, { data: 'before 1' }),
        await publish(running.base, { data: 'before 2' }),
      ]
      await vi.waitFor(() => expect(follower.received).toHaveLength(2), WAIT)

      follower.hold()
      const drop = await post(`${running.base}/drop?client=smoke-drop`)
      expect(drop.status, drop.text).toBe(200)
      expect(JSON.parse(drop.text)).toEqual({ dropped: 1 })
      await vi.waitFor(() => expect(follower.lastEventIds).toHaveLength(2), WAIT)
      const missed = [
        await publish(running.base, { data: 'missed 1' }),
        await publish(running.base, { event: 'note', data: { missed: 2 } }),
        await publish(running.base, { data: 'missed\n3' }),
      ]
      follower.release()

      await vi.waitFor(() => expect(follower.received).toHaveLength(5), WAIT)
      expect(follower.lastEventIds).toEqual([null, before[1]!.id])
      expect(follower.received).toEqual([...before, ...missed])
      const live = await publish(running.base, { data: 'live again' })
      await vi.waitFor(() => expect(follower.received).toHaveLength(6), WAIT)
      expect(follower.received[5]).toEqual(live)
      follower.source.close()
    })

    it('replays from ?lastEventId= for clients that cannot set the header', async () => {
      const first = await publish(running.base, { data: 'one' })
      const second = await publish(running.base, { event: 'note', data: { two: 2 } })
      const follower = open(`smoke-query&lastEventId=${encodeURIComponent(first.id)}`, ['note'])
      await vi.waitFor(() => expect(follower.received).toHaveLength(1), WAIT)
      expect(follower.lastEventIds).toEqual([null])
      expect(follower.received).toEqual([second])
      follower.source.close()
    })

    it('answers invalid input with 400 JSON and publishes nothing', async () => {
      const follower = open('smoke-invalid')
      await follower.opened
      const invalid: [body: string, contentType?: string][] = [
        [JSON.stringify({ event: 'a\nb', data: 'x' })],
        [JSON.stringify({ event: 'a\rb', data: 'x' })],
        [JSON.stringify({ event: 'a\u0000b', data: 'x' })],
        ['{"data": "unterminated'],
        [JSON.stringify({ event: 'no data' })],
        [JSON.stringify({ event: 5, data: 'x' })],
        [JSON.stringify({ data: 'x', extra: true })],
        [JSON.stringify([{ data: 'x' }])],
        ['"just a string"'],
        ['data=x', 'text/plain'],
        ['', 'application/json'],
      ]
      for (const [body, contentType] of invalid) {
        expectJsonError(await post(`${running.base}/events`, body, contentType), 400)
      }
      // Nothing was published: the next event the client gets is the marker.
      const marker = await publish(running.base, { data: 'after the invalid ones' })
      await vi.waitFor(() => expect(follower.received).toHaveLength(1), WAIT)
      expect(follower.received).toEqual([marker])
      follower.source.close()
    })

    it('answers oversized bodies with 413 JSON, and takes a 100 KB event', async () => {
      const follower = open('smoke-large')
      await follower.opened
      // Past the 1 MiB body limit.
      expectJsonError(await post(`${running.base}/events`, { data: 'x'.repeat(1_200_000) }), 413)
      // Under the body limit, but more than the hub's maxEventBytes (256 KiB).
      expectJsonError(await post(`${running.base}/events`, { data: 'y'.repeat(400_000) }), 413)
      const large = await publish(running.base, { data: 'z'.repeat(100_000) })
      await vi.waitFor(() => expect(follower.received).toHaveLength(1), WAIT)
      expect(follower.received[0]).toEqual(large)
      follower.source.close()
    })

    it('runs the background ticker on POST /ticker, and pauses it', async () => {
      expect(await (await fetch(`${running.base}/ticker`)).json()).toEqual({ running: false, perSecond: 3 })
      const follower = open('smoke-ticker', ['tick'])
      await follower.opened
      const started = await post(`${running.base}/ticker`, { running: true })
      expect(started.status, started.text).toBe(200)
      expect(JSON.parse(started.text)).toEqual({ running: true, perSecond: 3 })
      await vi.waitFor(() => expect(follower.received.length).toBeGreaterThanOrEqual(3), WAIT)
      const paused = await post(`${running.base}/ticker`, { running: false })
      expect(JSON.parse(paused.text)).toEqual({ running: false, perSecond: 3 })
      for (const tick of follower.received) {
        expect(tick.event).toBe('tick')
        expect(tick.data).toMatch(/^tick \d+ at \d\d:\d\d:\d\d UTC$/)
      }
      // Paused: nothing more after the one tick that may have been under way.
      const settled = follower.received.length
      await new Promise((resolve) => setTimeout(resolve, 1000))
      expect(follower.received.length - settled).toBeLessThanOrEqual(1)
      for (const body of [undefined, { running: 'yes' }, { running: true, extra: 1 }]) {
        expectJsonError(await post(`${running.base}/ticker`, body), 400)
      }
      follower.source.close()
    })

    it('forces a gap on POST /gap: the client resumes with the evicted notice, then the retained events', async () => {
      const follower = open('smoke-gap', ['rewind-gap'])
      await follower.opened
      const before = await publish(running.base, { data: 'before the gap' })
      await vi.waitFor(() => expect(follower.received).toEqual([before]), WAIT)
      const answer = await post(`${running.base}/gap?client=smoke-gap`)
      expect(answer.status, answer.text).toBe(200)
      // The demo's history is 100 events: 110 published while the client is away.
      expect(JSON.parse(answer.text)).toEqual({ dropped: 1, published: 110, history: 100 })
      await vi.waitFor(() => expect(follower.received).toHaveLength(1 + 1 + 100), WAIT)
      expect(follower.lastEventIds).toEqual([null, before.id])
      const [gap, ...retained] = follower.received.slice(1)
      expect(gap).toMatchObject({ event: 'rewind-gap', data: 'evicted' })
      expect(retained.map((event) => event.data)).toEqual(
        Array.from({ length: 100 }, (_, n) => `burst ${n + 11}/110 while the page was away`),
      )
      expectJsonError(await post(`${running.base}/gap`), 400)
      follower.source.close()
    })

    it('answers unknown routes and a drop without a client id with JSON errors', async () => {
      for (const [method, path] of [
        ['GET', '/nope'],
        ['PUT', '/events'],
        ['GET', '/drop'],
      ] as const) {
        const response = await fetch(`${running.base}${path}`, { method })
        expectJsonError(
          {
            status: response.status,
            type: response.headers.get('content-type') ?? '',
            text: await response.text(),
          },
          404,
        )
      }
      expectJsonError(await post(`${running.base}/drop`), 400)
    })

    it('ends open streams and exits with code 0 on SIGTERM', async () => {
      const response = await fetch(`${running.base}/events`)
      const reader = response.body!.getReader()
      await reader.read()
      const ended = (async () => {
        while (!(await reader.read()).done) {}
      })()
      running.app.child.kill('SIGTERM')
      const exit = await Promise.race([
        running.app.exited,
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new Error(`no exit within 10 s of SIGTERM; output:\n${running.app.output()}`)),
            10_000,
          ).unref(),
        ),
      ])
      expect(exit, running.app.output()).toEqual({ code: 0, signal: null })
      await ended
    })
  })
}
