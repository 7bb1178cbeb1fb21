/**
 * The two live demos as one cluster on Postgres: an Express process (A) and a Fastify process (B)
 * started with the same DATABASE_URL and DATABASE_SCHEMA share history and streamed answers. An event
 * published on A reaches a client of B live and resumes there; an answer produced on A is followed,
 * resumed and cancelled on B, and when A dies its clients on B learn it from the lapsed lease.
 */
import type { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  type AnswerFollower,
  cancelWhileFollowed,
  expectAnswer,
  followAnswer,
  readAnswer,
  startAnswer,
  tokens,
  WAIT,
} from '../../examples/shared/test/answers.js'
import { publishData, startExample } from '../../examples/shared/test/smoke.js'
import { databaseForTests, dropSchemas, uniqueSchema } from '../../packages/postgres/test/helpers/database.js'
import { readEvents } from '../support/sse-clients.js'

const url = await databaseForTests('the live demos on Postgres')

/** The producers' lease (RESPONSE_LEASE): short, so a death is told quickly. */
const LEASE = 2000
/** As in responses-cluster.test.ts: 1.5 × the lease, plus 1 s on a small shared machine. */
const DEATH_BOUND = 1.5 * LEASE + 1000

type Example = Awaited<ReturnType<typeof startExample>>

interface Received {
  id: string
  data: string
}

/** Reads `count` events of the demo's feed from `base`, after `lastEventId` if given. */
async function readFeed(base: string, count: number, lastEventId?: string): Promise<Received[]> {
  const controller = new AbortController()
  const response = await fetch(`${base}/events`, {
    headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId },
    signal: controller.signal,
  })
  return readEvents(response, controller, count, WAIT.timeout, (event) =>
    event.event === undefined || event.event === 'message' ? { id: event.id!, data: event.data } : undefined,
  )
}

async function publish(base: string, data: string): Promise<Received> {
  return { id: (await publishData(base, data)).id, data }
}

describe.skipIf(url === undefined)('the live demos, Express and Fastify, sharing Postgres', () => {
  const schema = uniqueSchema('demos')
  let a: Example
  let b: Example
  const sources: EventSource[] = []

  beforeAll(async () => {
    const env = { DATABASE_URL: url!, DATABASE_SCHEMA: schema, RESPONSE_LEASE: String(LEASE) }
    ;[a, b] = await Promise.all([
      startExample(new URL('../../examples/express-live/index.js', import.meta.url), env),
      startExample(new URL('../../examples/fastify-live/index.js', import.meta.url), env),
    ])
  })

  afterAll(async () => {
    for (const source of sources) source.close()
    for (const example of [a, b]) if (example?.child.exitCode === null) example.child.kill('SIGKILL')
    await dropSchemas(url!, [schema])
  })

  function follow(example: Example, id: string): AnswerFollower {
    const follower = followAnswer(`${example.url}/responses/${id}`)
    sources.push(follower.source)
    return follower
  }

  it('delivers an event published on Express to a client of Fastify, and resumes it there', async () => {
    const first = await publish(a.url, 'one')
    const live = readFeed(b.url, 2, first.id)
    const sent = [await publish(a.url, 'two'), await publish(b.url, 'three')]
    expect(await live).toEqual(sent)
    expect(await readFeed(a.url, 1, sent[0]!.id)).toEqual([sent[1]])
  })

  it('follows on Fastify from the start an answer produced on Express, and resumes it exactly', async () => {
    const id = await startAnswer(a.url, { tokens: 100, interval: 5 })
    const cut = await readAnswer(`${a.url}/responses/${id}`, { limit: 30 })
    const rest = await readAnswer(`${b.url}/responses/${id}`, { lastEventId: cut.events.at(-1)!.id })
    expectAnswer([...cut.events, ...rest.events], tokens(0, 100), 'done')
    const onB = await readAnswer(`${b.url}/responses/${id}`)
    expectAnswer(onB.events, tokens(0, 100), 'done')
    expect(
      (await readAnswer(`${a.url}/responses/${id}`, { lastEventId: onB.events.at(-1)!.id })).status,
    ).toBe(204)
  })

  it('stops the producer on Express within 1 s of a DELETE on Fastify', async () => {
    const id = await startAnswer(a.url, { tokens: 10_000, interval: 10 })
    const onA = follow(a, id)
    expect(await cancelWhileFollowed(b.url, id, onA, 10)).toBeLessThan(1000)
    expectAnswer(onA.events, tokens(0, onA.tokens().length), 'cancelled')
  })

  it('tells clients on Fastify that the answer failed when the producing Express process is killed', async () => {
    const id = await startAnswer(a.url, { tokens: 100_000, interval: 10 })
    const onB = follow(b, id)
    await vi.waitFor(() => expect(onB.events.length).toBeGreaterThanOrEqual(10), WAIT)
    const killedAt = performance.now()
    a.child.kill('SIGKILL')
    await vi.waitFor(() => expect(onB.end()).toBeDefined(), { timeout: 3 * DEATH_BOUND, interval: 2 })
    expect(performance.now() - killedAt).toBeLessThan(DEATH_BOUND)
    expectAnswer(onB.events, tokens(0, onB.tokens().length), 'failed')
  })
})
