/**
 * The streamed-answer contract every live demo serves (`POST`, `GET` and `DELETE /responses`, see
 * ../answers.js), proven on the running app with real clients: the `eventsource` package, and raw
 * fetch requests read with `eventsource-parser`. The clients are exported for the cluster test.
 */
import { EventSource, type FetchLike } from 'eventsource'
import { createParser } from 'eventsource-parser'
import { describe, expect, it, vi } from 'vitest'
import { Gate } from '../../../test/support/gate.js'
import { post, runExample } from './smoke.js'

/** Name of the terminal event of a response (the hub's default `endEvent`). */
export const END_EVENT = 'rewind-end'
/** Bound of every wait; generous because CI machines are small and shared. */
export const WAIT = { timeout: 15_000, interval: 10 }
/** The demos tell clients to come back after this many milliseconds. */
const RETRY = 1000
/** What a response id may look like (unreserved URL characters). */
const ID_SHAPE = /^[A-Za-z0-9._~-]{1,128}$/

export interface AnswerEvent {
  id: string
  event: string
  data: string
}

/** The data of the fake model's tokens `from` … `to - 1`: `t{from}`, …. */
export function tokens(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `t${from + i}`)
}

export const dataOf = (events: readonly AnswerEvent[]) =>
  events.filter((event) => event.event === 'message').map((event) => event.data)
export const endOf = (events: readonly AnswerEvent[]) => events.find((event) => event.event === END_EVENT)

interface Answered {
  status: number
  type: string
  text: string
}

/** POSTs a JSON value, raw text with a content type, or (body `undefined`) nothing at all. */
export async function postAnswer(
  base: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<Answered> {
  return post(`${base}/responses`, body, contentType)
}

/** Starts a fake answer and resolves with its id. */
export async function startAnswer(
  base: string,
  answer: { tokens: number; interval?: number },
): Promise<string> {
  const answered = await postAnswer(base, answer)
  expect(answered.status, answered.text).toBe(201)
  expect(answered.type).toMatch(/^application\/json/)
  const { id } = JSON.parse(answered.text) as { id: unknown }
  expect(typeof id === 'string' && ID_SHAPE.test(id), answered.text).toBe(true)
  return id as string
}

export async function cancelAnswer(base: string, id: string): Promise<Answered> {
  const response = await fetch(`${base}/responses/${encodeURIComponent(id)}`, { method: 'DELETE' })
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    text: await response.text(),
  }
}

/**
 * Cancels answer `id` with a DELETE to `base` once `follower` has `after` events, checks the 202
 * `cancelled` reply, waits for the follower to see the end, and returns the milliseconds from the
 * DELETE to that end.
 */
export async function cancelWhileFollowed(
  base: string,
  id: string,
  follower: AnswerFollower,
  after: number,
): Promise<number> {
  await vi.waitFor(() => expect(follower.events.length).toBeGreaterThanOrEqual(after), WAIT)
  const cancelledAt = performance.now()
  const cancelled = await cancelAnswer(base, id)
  expect(cancelled.status, cancelled.text).toBe(202)
  expect(JSON.parse(cancelled.text)).toEqual({ status: 'cancelled' })
  await vi.waitFor(() => expect(follower.end()).toBeDefined(), { ...WAIT, interval: 2 })
  return performance.now() - cancelledAt
}

export function expectJsonError(answered: Answered, status: number): void {
  expect(answered.status, answered.text).toBe(status)
  expect(answered.type).toMatch(/^application\/json/)
  const body = JSON.parse(answered.text) as { error?: unknown; id?: unknown }
  expect(typeof body.error === 'string' && body.error.length > 0, answered.text).toBe(true)
  expect(body.id).toBeUndefined()
}

export interface RawRead extends Answered {
  events: AnswerEvent[]
  /** True when the server ended the body; false when the read stopped at `limit` (a drop). */
  ended: boolean
}

/**
 * One request with `fetch`, read with `eventsource-parser`: the status and, for an event stream, the
 * events until the server ends the body or `limit` events have arrived, when the request is aborted
 * as a dropped connection would be (events that came in the same chunk are kept: the client saw them).
 */
export async function readAnswer(
  url: string,
  options: { lastEventId?: string; limit?: number; timeout?: number } = {},
): Promise<RawRead> {
  const { lastEventId, limit, timeout = WAIT.timeout } = options
  const controller = new AbortController()
  const timer = setTimeout(
    () => controller.abort(new Error(`${url} did not end within ${timeout} ms`)),
    timeout,
  )
  try {
    const response = await fetch(url, {
      headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId },
      signal: controller.signal,
    })
    const answered = { status: response.status, type: response.headers.get('content-type') ?? '', text: '' }
    if (response.status !== 200 || !answered.type.startsWith('text/event-stream')) {
      return { ...answered, text: await response.text(), events: [], ended: true }
    }
    const events: AnswerEvent[] = []
    const parser = createParser({
      onEvent: (event) =>
        events.push({ id: event.id ?? '', event: event.event ?? 'message', data: event.data }),
    })
    const decoder = new TextDecoder()
    const reader = response.body!.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { ...answered, events, ended: true }
      parser.feed(decoder.decode(value, { stream: true }))
      if (limit !== undefined && events.length >= limit) {
        await reader.cancel().catch(() => {})
        controller.abort()
        return { ...answered, events, ended: false }
      }
    }
  } finally {
    clearTimeout(timer)
  }
}

/** One connection attempt of an {@link AnswerFollower}. */
interface Attempt {
  /** The `Last-Event-ID` it sent. */
  lastEventId: string | null
  /** How many events the client had received when it made the attempt. */
  seen: number
  status?: number
}

export type AnswerFollower = ReturnType<typeof followAnswer>

/**
 * An `eventsource` client of a response that records the events it receives and every connection
 * attempt (its `Last-Event-ID` and status), and can cut its connection as a network failure would
 * (the client then reconnects by itself) and hold a reconnection back.
 */
export function followAnswer(url: string) {
  const events: AnswerEvent[] = []
  const attempts: Attempt[] = []
  let cutConnection: (() => void) | undefined
  const gate = new Gate()
  const throughCuttableBody: FetchLike = async (input, init) => {
    const attempt: Attempt = {
      lastEventId: new Headers(init.headers).get('last-event-id'),
      seen: events.length,
    }
    attempts.push(attempt)
    if (gate.passage !== undefined) await gate.passage
    const connection = new AbortController()
    init.signal?.addEventListener('abort', () => connection.abort(), { once: true })
    const response = await fetch(input, { ...init, signal: connection.signal })
    attempt.status = response.status
    if (response.status !== 200 || response.body === null) return response
    const reader = response.body.getReader()
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        cutConnection = () => {
          // Not an AbortError: the client takes it for a failed connection and reconnects.
          controller.error(new TypeError('the connection was cut'))
          connection.abort()
        }
      },
      async pull(controller) {
        try {
          const { done, value } = await reader.read()
          if (done) controller.close()
          else controller.enqueue(value)
        } catch (error) {
          // Already errored by a cut: nothing more to tell the client.
          try {
            controller.error(error)
          } catch {}
        }
      },
      cancel() {
        connection.abort()
      },
    })
    return new Response(body, { status: response.status, headers: response.headers })
  }
  const source = new EventSource(url, { fetch: throughCuttableBody })
  const record = (event: MessageEvent) =>
    events.push({ id: event.lastEventId, event: event.type, data: event.data as string })
  source.addEventListener('message', record)
  source.addEventListener(END_EVENT, record)
  return {
    source,
    events,
    attempts,
    tokens: () => dataOf(events),
    end: () => endOf(events),
    /** Cuts the current connection (the client reconnects after the retry delay). */
    cut() {
      cutConnection?.()
    },
    /** Holds the next connection attempts back until `release()`. */
    hold: gate.hold,
    release: gate.release,
  }
}

/** Checks an answer that ended: its tokens are exactly `expected`, then one terminal event `end`, last. */
export function expectAnswer(events: readonly AnswerEvent[], expected: string[], end: string): void {
  expect(dataOf(events)).toEqual(expected)
  expect(events.filter((event) => event.event === END_EVENT).map((event) => event.data)).toEqual([end])
  expect(events.at(-1)?.event).toBe(END_EVENT)
  const ids = events.map((event) => event.id)
  expect(ids.every((id) => id.length > 0)).toBe(true)
  expect(new Set(ids).size).toBe(ids.length)
}

/** The streamed-answer test of one live demo, started from `entry` (with `command`: see `startExample`). */
export function answersTest(name: string, entry: URL, command?: readonly string[]): void {
  describe(`${name}: streamed answers (/responses)`, () => {
    const running = runExample(entry, command)

    function follow(id: string): AnswerFollower {
      const follower = followAnswer(`${running.base}/responses/${id}`)
      running.sources.push(follower.source)
      return follower
    }

    it('starts an answer with 201 and its id as JSON, at both bounds of the input', async () => {
      const first = await startAnswer(running.base, { tokens: 1, interval: 0 })
      const second = await startAnswer(running.base, { tokens: 3, interval: 0 })
      expect(second).not.toBe(first)
      const read = await readAnswer(`${running.base}/responses/${first}`)
      expectAnswer(read.events, ['t0'], 'done')
      // "interval" is optional (50 ms); the largest answer, at its slowest, starts too (then is cancelled).
      const largest = await startAnswer(running.base, { tokens: 100_000, interval: 1000 })
      await startAnswer(running.base, { tokens: 2 })
      const cancelled = await cancelAnswer(running.base, largest)
      expect(cancelled.status, cancelled.text).toBe(202)
    })

    it('answers invalid input with 400 JSON and no id', async () => {
      const invalid: [body: unknown, contentType?: string][] = [
        [{ tokens: 0 }],
        [{ tokens: 100_001 }],
        [{ tokens: 1.5 }],
        [{ tokens: '5' }],
        [{ tokens: null }],
        [{ interval: 10 }],
        [{ tokens: 5, interval: -1 }],
        [{ tokens: 5, interval: 1001 }],
        [{ tokens: 5, interval: 0.5 }],
        [{ tokens: 5, interval: '10' }],
        [{ tokens: 5, model: 'gpt' }],
        [[{ tokens: 5 }]],
        ['null'],
        ['"5"'],
        ['{"tokens": 5'],
        ['tokens=5', 'text/plain'],
        ['', 'application/json'],
        [undefined],
      ]
      for (const [body, contentType] of invalid) {
        expectJsonError(await postAnswer(running.base, body, contentType), 400)
      }
    })

    it('answers 404 JSON for an unknown id, on GET and DELETE, up to the longest id a response may have', async () => {
      for (const id of ['no-such-answer', 'a%20b', 'x'.repeat(128)]) {
        expectJsonError(await readAnswer(`${running.base}/responses/${id}`), 404)
        expectJsonError(await cancelAnswer(running.base, decodeURIComponent(id)), 404)
      }
      // No response has a longer id: the router may refuse the URL (414) before the app sees it.
      const tooLong = 'x'.repeat(129)
      for (const answered of [
        await readAnswer(`${running.base}/responses/${tooLong}`),
        await cancelAnswer(running.base, tooLong),
      ]) {
        expectJsonError(answered, answered.status === 414 ? 414 : 404)
      }
    })

    it('gives a client without a position the whole answer, then done; its EventSource then stops for good', async () => {
      const id = await startAnswer(running.base, { tokens: 60, interval: 10 })
      // Joins late: an answer is replayed from its start, not joined live.
      await readAnswer(`${running.base}/responses/${id}`, { limit: 15 })
      const follower = follow(id)
      await vi.waitFor(() => expect(follower.end()).toBeDefined(), WAIT)
      expectAnswer(follower.events, tokens(0, 60), 'done')

      // The body ended; the client comes back once with the end's id, gets 204 and closes.
      await vi.waitFor(() => expect(follower.attempts).toHaveLength(2), WAIT)
      await vi.waitFor(() => expect(follower.source.readyState).toBe(EventSource.CLOSED), WAIT)
      expect(follower.attempts).toEqual([
        { lastEventId: null, seen: 0, status: 200 },
        { lastEventId: follower.end()!.id, seen: 61, status: 204 },
      ])
      await new Promise((resolve) => setTimeout(resolve, 2.5 * RETRY))
      expect(follower.attempts).toHaveLength(2)
    })

    it('resumes a cut mid-answer exactly, with Last-Event-ID and with ?lastEventId=', async () => {
      const id = await startAnswer(running.base, { tokens: 200, interval: 20 })
      const url = `${running.base}/responses/${id}`
      const follower = follow(id)
      const first = await readAnswer(url, { limit: 20 })
      expect(first.ended).toBe(false)
      await vi.waitFor(() => expect(follower.events.length).toBeGreaterThanOrEqual(30), WAIT)
      follower.cut()

      const last = first.events.at(-1)!.id
      const byHeader = await readAnswer(url, { lastEventId: last })
      const byQuery = await readAnswer(`${url}?lastEventId=${encodeURIComponent(last)}`)
      for (const resumed of [byHeader, byQuery]) {
        expect(resumed.ended).toBe(true)
        expectAnswer([...first.events, ...resumed.events], tokens(0, 200), 'done')
      }

      await vi.waitFor(() => expect(follower.end()).toBeDefined(), WAIT)
      expectAnswer(follower.events, tokens(0, 200), 'done')
      const resume = follower.attempts[1]!
      expect(resume.seen).toBeLessThan(200)
      expect(resume.lastEventId).toBe(follower.events[resume.seen - 1]!.id)
      expect(resume.status).toBe(200)
    })

    it('gives a client that left and came back after the end the rest, then the end, then 204', async () => {
      const id = await startAnswer(running.base, { tokens: 50, interval: 10 })
      const url = `${running.base}/responses/${id}`
      const follower = follow(id)
      await vi.waitFor(() => expect(follower.events.length).toBeGreaterThanOrEqual(10), WAIT)
      follower.hold()
      follower.cut()
      await vi.waitFor(() => expect(follower.attempts).toHaveLength(2), WAIT)
      // The whole answer, read to its end: the follower is away until it has ended.
      const whole = await readAnswer(url)
      expectAnswer(whole.events, tokens(0, 50), 'done')
      follower.release()

      await vi.waitFor(() => expect(follower.end()).toBeDefined(), WAIT)
      expectAnswer(follower.events, tokens(0, 50), 'done')
      expect(follower.events).toEqual(whole.events)
      const back = follower.attempts[1]!
      expect(back.seen).toBeLessThan(50)
      expect(back.lastEventId).toBe(whole.events[back.seen - 1]!.id)
      await vi.waitFor(() => expect(follower.source.readyState).toBe(EventSource.CLOSED), WAIT)
      expect(follower.attempts.map((attempt) => attempt.status)).toEqual([200, 200, 204])

      // Raw clients: the end's id is 204 by header and by query; any earlier id gets the rest.
      const end = whole.events.at(-1)!
      for (const after of [
        await readAnswer(url, { lastEventId: end.id }),
        await readAnswer(`${url}?lastEventId=${encodeURIComponent(end.id)}`),
      ]) {
        expect(after.status).toBe(204)
        expect(after.text).toBe('')
      }
      const rest = await readAnswer(url, { lastEventId: whole.events[39]!.id })
      expect(rest.ended).toBe(true)
      expect(rest.events).toEqual(whole.events.slice(40))
    })

    it('cancels on DELETE: 202 cancelled, clients get cancelled, nothing is added afterwards', async () => {
      const id = await startAnswer(running.base, { tokens: 10_000, interval: 10 })
      const url = `${running.base}/responses/${id}`
      const follower = follow(id)
      const raw = readAnswer(url)
      // Awaited below; this keeps a failure before then from being reported as unhandled.
      raw.catch(() => {})
      const latency = await cancelWhileFollowed(running.base, id, follower, 10)
      console.log(`${name}: DELETE to the cancelled event on a client: ${latency.toFixed(1)} ms`)

      const count = follower.tokens().length
      expectAnswer(follower.events, tokens(0, count), 'cancelled')
      const rawRead = await raw
      expect(rawRead.ended).toBe(true)
      expect(rawRead.events).toEqual(follower.events)
      // The producer stopped: later, the stored answer is still those tokens and the end.
      await new Promise((resolve) => setTimeout(resolve, 200))
      const later = await readAnswer(url)
      expect(later.events).toEqual(follower.events)
      // Cancelling an answer that ended says how it ended.
      expect(JSON.parse((await cancelAnswer(running.base, id)).text)).toEqual({ status: 'cancelled' })
      const done = await startAnswer(running.base, { tokens: 2, interval: 0 })
      await readAnswer(`${running.base}/responses/${done}`)
      const afterDone = await cancelAnswer(running.base, done)
      expect(afterDone.status).toBe(202)
      expect(JSON.parse(afterDone.text)).toEqual({ status: 'done' })
    })

    it('resumes 20,000 tokens from the start (interval 0)', async () => {
      const startedAt = performance.now()
      const id = await startAnswer(running.base, { tokens: 20_000, interval: 0 })
      const url = `${running.base}/responses/${id}`
      const live = await readAnswer(url)
      const produced = performance.now() - startedAt
      expectAnswer(live.events, tokens(0, 20_000), 'done')

      const replayedAt = performance.now()
      const replay = await readAnswer(url)
      const replayed = performance.now() - replayedAt
      expect(replay.events).toEqual(live.events)
      const follower = follow(id)
      await vi.waitFor(() => expect(follower.end()).toBeDefined(), WAIT)
      expect(follower.events).toEqual(live.events)
      const rest = await readAnswer(url, { lastEventId: live.events[9_999]!.id })
      expect(rest.events).toEqual(live.events.slice(10_000))
      console.log(
        `${name}: 20,000 tokens produced and read live in ${produced.toFixed(0)} ms, replayed from the start in ${replayed.toFixed(0)} ms`,
      )
    })

    it('ends an active answer with failed for its clients when the app stops on SIGTERM', async () => {
      const id = await startAnswer(running.base, { tokens: 10_000, interval: 10 })
      const reading = readAnswer(`${running.base}/responses/${id}`)
      reading.catch(() => {})
      const follower = follow(id)
      await vi.waitFor(() => expect(follower.events.length).toBeGreaterThanOrEqual(5), WAIT)
      running.app.child.kill('SIGTERM')
      const read = await reading
      expect(read.ended).toBe(true)
      expectAnswer(read.events, tokens(0, dataOf(read.events).length), 'failed')
      await vi.waitFor(() => expect(follower.end()?.data).toBe('failed'), WAIT)
      expect(await running.app.exited).toEqual({ code: 0, signal: null })
    })
  })
}
