/**
 * Streamed answers across the two live demos as one cluster: an Express process (A) and a Fastify
 * process (B) sharing a real Redis. An answer produced on A is followed, resumed and cancelled on
 * B, and when A dies its clients on B learn it from the lapsed lease.
 */
import { createRequire } from 'node:module'
import { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  type AnswerFollower,
  cancelAnswer,
  cancelWhileFollowed,
  dataOf,
  END_EVENT,
  expectAnswer,
  expectJsonError,
  followAnswer,
  postAnswer,
  readAnswer,
  startAnswer,
  tokens,
  WAIT,
} from '../../examples/shared/test/answers.js'
import { startExample } from '../../examples/shared/test/smoke.js'
import { deleteKeys, redisForTests, uniquePrefix } from '../../packages/redis/test/helpers/redis-server.js'

/** What this file asks of Redis, beside the demos (ioredis is a dependency of @rewind/redis only). */
interface RedisCommands {
  xlen(key: string): Promise<number>
  scan(cursor: string, ...args: (string | number)[]): Promise<[string, string[]]>
  del(...keys: string[]): Promise<number>
  quit(): Promise<unknown>
}
const { Redis } = createRequire(new URL('../../packages/redis/package.json', import.meta.url))('ioredis') as {
  Redis: new (url: string) => RedisCommands
}

const redis = await redisForTests('streamed answers across the live demos')

/** The producers' lease (RESPONSE_LEASE): short, so a death is told quickly. */
const LEASE = 2000
/**
 * How soon clients must learn that the producing process died: the lease lapses at most one lease
 * after the last renewal (made at most lease/3 before the death), and an instance serving the
 * response checks every lease/2, so 1.5 × lease; plus 1 s for the terminal event to reach the
 * client through Redis on a small, shared machine.
 */
const DEATH_BOUND = 1.5 * LEASE + 1000
/** How soon a cancel on one instance must stop the producer on the other (issue 13). */
const CANCEL_BOUND = 1000
/** Stream names of responses (the library's RESPONSE_STREAM_PREFIX), under the demos' key prefix. */
const RESPONSE_STREAMS = 'rewind:response:'

type Example = Awaited<ReturnType<typeof startExample>>

describe.skipIf(redis === undefined)('streamed answers across two live demos sharing Redis', () => {
  const prefix = uniquePrefix('answers')
  let a: Example
  let b: Example
  let client: RedisCommands
  const sources: EventSource[] = []

  beforeAll(async () => {
    const env = { REDIS_URL: redis!.url, REDIS_PREFIX: prefix, RESPONSE_LEASE: String(LEASE) }
    ;[a, b] = await Promise.all([
      startExample(new URL('../../examples/express-live/index.js', import.meta.url), env),
      startExample(new URL('../../examples/fastify-live/index.js', import.meta.url), env),
    ])
    client = new Redis(redis!.url)
  })

  afterAll(async () => {
    for (const source of sources) source.close()
    for (const example of [a, b]) if (example?.child.exitCode === null) example.child.kill('SIGKILL')
    if (client !== undefined) {
      await deleteKeys(client as never, prefix)
      await client.quit()
    }
    await redis?.close()
  })

  function follow(example: Example, id: string): AnswerFollower {
    const follower = followAnswer(`${example.url}/responses/${id}`)
    sources.push(follower.source)
    return follower
  }

  // The Redis store's key layout: the stream name in a hash tag (packages/redis/README.md, Key layout).
  const streamKey = (id: string) => `${prefix}{${RESPONSE_STREAMS}${id}}`

  async function responseKeys(): Promise<string[]> {
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, found] = await client.scan(
        cursor,
        'MATCH',
        `${prefix}{${RESPONSE_STREAMS}*`,
        'COUNT',
        1000,
      )
      cursor = next
      keys.push(...found)
    } while (cursor !== '0')
    return keys.sort()
  }

  it('follows on Fastify from the start an answer produced on Express, and the other way round', async () => {
    const id = await startAnswer(a.url, { tokens: 100, interval: 10 })
    const onB = follow(b, id)
    const rawOnB = readAnswer(`${b.url}/responses/${id}`)
    rawOnB.catch(() => {})
    await vi.waitFor(() => expect(onB.events.length).toBeGreaterThanOrEqual(20), WAIT)
    // A late client on A gets it from the start too, with the same ids.
    const lateOnA = readAnswer(`${a.url}/responses/${id}`)
    await vi.waitFor(() => expect(onB.end()).toBeDefined(), WAIT)
    expectAnswer(onB.events, tokens(0, 100), 'done')
    expect((await rawOnB).events).toEqual(onB.events)
    expect((await lateOnA).events).toEqual(onB.events)
    // The end is told on B, which did not produce the answer: EventSource stops there too.
    await vi.waitFor(() => expect(onB.source.readyState).toBe(EventSource.CLOSED), WAIT)
    expect(onB.attempts.map((attempt) => [attempt.lastEventId, attempt.status])).toEqual([
      [null, 200],
      [onB.end()!.id, 204],
    ])

    const fromB = await startAnswer(b.url, { tokens: 50, interval: 0 })
    expectAnswer((await readAnswer(`${a.url}/responses/${fromB}`)).events, tokens(0, 50), 'done')
  })

  it('resumes on Fastify, exactly, a client cut on Express mid-answer', async () => {
    const id = await startAnswer(a.url, { tokens: 200, interval: 10 })
    const first = await readAnswer(`${a.url}/responses/${id}`, { limit: 30 })
    const second = await readAnswer(`${a.url}/responses/${id}`, { limit: 60 })
    expect(first.ended || second.ended).toBe(false)
    const byHeader = readAnswer(`${b.url}/responses/${id}`, { lastEventId: first.events.at(-1)!.id })
    const last = second.events.at(-1)!.id
    const byQuery = readAnswer(`${b.url}/responses/${id}?lastEventId=${encodeURIComponent(last)}`)
    // Both resumed while the answer was still being produced on A.
    expect(dataOf(second.events).length).toBeLessThan(200)
    expectAnswer([...first.events, ...(await byHeader).events], tokens(0, 200), 'done')
    expectAnswer([...second.events, ...(await byQuery).events], tokens(0, 200), 'done')

    const end = (await byHeader).events.at(-1)!
    for (const example of [a, b]) {
      const after = await readAnswer(`${example.url}/responses/${id}`, { lastEventId: end.id })
      expect(after.status).toBe(204)
    }
  })

  it('stops the producer on Express within 1 s of a DELETE on Fastify', async () => {
    const id = await startAnswer(a.url, { tokens: 10_000, interval: 10 })
    const onA = follow(a, id)
    const latency = await cancelWhileFollowed(b.url, id, onA, 20)
    const length = await client.xlen(streamKey(id))
    console.log(`DELETE on B to the cancelled event on a client of A: ${latency.toFixed(1)} ms`)
    expect(latency).toBeLessThan(CANCEL_BOUND)

    const count = onA.tokens().length
    expectAnswer(onA.events, tokens(0, count), 'cancelled')
    expect(length).toBe(count + 1)
    // Fifty intervals later nothing has been added: the producer stopped.
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(await client.xlen(streamKey(id))).toBe(length)
    expect((await readAnswer(`${b.url}/responses/${id}`)).events).toEqual(onA.events)
  })

  it('replays on Fastify, from the start, 20,000 tokens produced on Express (interval 0)', async () => {
    const startedAt = performance.now()
    const id = await startAnswer(a.url, { tokens: 20_000, interval: 0 })
    const live = await readAnswer(`${a.url}/responses/${id}`)
    const produced = performance.now() - startedAt
    expectAnswer(live.events, tokens(0, 20_000), 'done')
    const replayedAt = performance.now()
    const replay = await readAnswer(`${b.url}/responses/${id}`)
    const replayed = performance.now() - replayedAt
    expect(replay.events).toEqual(live.events)
    expect(await client.xlen(streamKey(id))).toBe(20_001)
    console.log(
      `20,000 tokens on Redis: produced and read live on A in ${produced.toFixed(0)} ms, replayed from the start on B in ${replayed.toFixed(0)} ms`,
    )
  })

  it('starts nothing on invalid input: no key appears in Redis', async () => {
    const before = await responseKeys()
    for (const example of [a, b]) {
      for (const body of [
        { tokens: 0 },
        { tokens: 100_001 },
        { tokens: 5, interval: 1001 },
        { tokens: 5, x: 1 },
      ]) {
        expectJsonError(await postAnswer(example.url, body), 400)
      }
      expectJsonError(await postAnswer(example.url, '{"tokens":', 'application/json'), 400)
      expectJsonError(await postAnswer(example.url), 400)
    }
    expect(await responseKeys()).toEqual(before)
    // The scan does see a response that starts.
    const id = await startAnswer(b.url, { tokens: 1, interval: 0 })
    await readAnswer(`${a.url}/responses/${id}`)
    expect((await responseKeys()).filter((key) => !before.includes(key)).length).toBeGreaterThan(0)
  })

  it('tells clients on Fastify that the answer failed when the producing Express process is killed', async () => {
    const id = await startAnswer(a.url, { tokens: 100_000, interval: 10 })
    const onB = follow(b, id)
    const rawOnB = readAnswer(`${b.url}/responses/${id}`, { timeout: 30_000 })
    rawOnB.catch(() => {})
    await vi.waitFor(() => expect(onB.events.length).toBeGreaterThanOrEqual(20), WAIT)

    const killedAt = performance.now()
    a.child.kill('SIGKILL')
    await vi.waitFor(() => expect(onB.end()).toBeDefined(), { timeout: 3 * DEATH_BOUND, interval: 2 })
    const told = performance.now() - killedAt
    console.log(
      `SIGKILL of the producer to failed on a client of the other instance: ${told.toFixed(0)} ms (lease ${LEASE} ms, bound ${DEATH_BOUND} ms)`,
    )
    expect(told).toBeLessThan(DEATH_BOUND)
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' })

    const count = onB.tokens().length
    expectAnswer(onB.events, tokens(0, count), 'failed')
    const raw = await rawOnB
    expect(raw.ended).toBe(true)
    expect(raw.events).toEqual(onB.events)
    // A client that comes afterwards gets the tokens produced before the death, then failed.
    const late = await readAnswer(`${b.url}/responses/${id}`)
    expect(late.events).toEqual(onB.events)
    expect(await client.xlen(streamKey(id))).toBe(count + 1)
    expect(late.events.filter((event) => event.event === END_EVENT).map((event) => event.data)).toEqual([
      'failed',
    ])
    const again = await cancelAnswer(b.url, id)
    expect(again.status).toBe(202)
    expect(JSON.parse(again.text)).toEqual({ status: 'failed' })
  })
})
