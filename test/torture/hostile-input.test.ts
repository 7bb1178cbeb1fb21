/**
 * Guarantee: bad input from a client or a publisher gets its documented answer, is never turned
 * into an HTTP error on an event stream, never injects a field, and never disturbs anyone else.
 *
 * - Resume positions (`Last-Event-ID` header or `?lastEventId=`) that are non-ASCII, 8 KB long,
 *   negative, huge, from another epoch or another stream: status 200 and the gap signal
 *   (`rewind-gap`, data `malformed` / `unknown` / `epoch`, id just before the oldest retained event),
 *   then every retained event. Control characters in a header never reach the app: Node answers 400.
 * - Publish input with CR/LF/NUL in the event name, an `id` of one's own, huge data, data that
 *   cannot be serialized: a `RewindError` with its documented code, or (in the live demos) 400/413 JSON.
 * A bystander stream, open throughout, must receive exactly the events that were published.
 */

import { RewindError } from '@rewind/core'
import { encodeEvent } from '@rewind/core/frame'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RawHttpClient, rawStatus } from '../support/raw-client.js'
import { thrownAs } from '../support/throws.js'
import { waitUntil } from '../support/wait.js'
import { ADAPTERS, type RunningApp, startApp } from './helpers/app.mjs'
import { type RunningDemo, startDemo } from './helpers/demos.js'
import { report } from './helpers/wait.js'

const HISTORY = 50
const PUBLISHED_BEFORE = 60

/** A GET /events request with one extra header line given as raw bytes. */
const withHeaderBytes = (path: string, header: Buffer) =>
  Buffer.concat([
    Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n`, 'latin1'),
    header,
    Buffer.from('\r\n\r\n', 'latin1'),
  ])

const lastEventId = (value: string | Buffer) =>
  Buffer.concat([
    Buffer.from('Last-Event-ID: ', 'latin1'),
    typeof value === 'string' ? Buffer.from(value, 'latin1') : value,
  ])

/** Calls `publish` and returns the `RewindError` it throws (failing if it throws anything else, or nothing). */
function refusal(publish: () => unknown): RewindError {
  return thrownAs(publish, RewindError)
}

describe.each(ADAPTERS)('%s: hostile input', (adapter) => {
  let app: RunningApp
  let bystander: RawHttpClient
  let epoch: string
  /** Ids the bystander must receive, in order. */
  const expected: string[] = []
  const others: RawHttpClient[] = []

  const publish = (data: string) => {
    const id = app.publish('s', { data })
    expected.push(id)
    return id
  }

  beforeAll(async () => {
    app = await startApp(adapter, { retry: 1000, heartbeatInterval: 0, history: { maxEvents: HISTORY } })
    bystander = new RawHttpClient(app.port)
    await waitUntil(() => bystander.sawId, 'the bystander to open')
    for (let i = 0; i < PUBLISHED_BEFORE; i++) publish(`before ${i}`)
    epoch = expected[0]!.split('-')[0]!
    await bystander.waitForEvents(PUBLISHED_BEFORE)
  })

  afterAll(async () => {
    for (const client of others) client.destroy()
    bystander?.destroy()
    await app?.close()
  })

  /** Opens a stream with `request` (or `path`) and checks the gap answer for `reason`. */
  async function expectGap(
    what: string,
    options: { path?: string; request?: Buffer },
    reason: 'malformed' | 'unknown' | 'epoch',
  ): Promise<void> {
    const client = new RawHttpClient(
      app.port,
      options.request ? { request: options.request } : { path: options.path ?? '/events' },
    )
    others.push(client)
    const newest = Number(expected.at(-1)!.split('-')[1])
    const oldest = newest - HISTORY + 1
    await client.waitForEvents(1 + HISTORY)
    expect(client.status, what).toBe(200)
    expect(client.headers['content-type'], what).toBe('text/event-stream; charset=utf-8')
    expect(client.events[0], what).toEqual({
      id: `${epoch}-${oldest - 1}`,
      event: 'rewind-gap',
      data: reason,
    })
    expect(
      client.events.slice(1).map((e) => e.id),
      what,
    ).toEqual(Array.from({ length: HISTORY }, (_, i) => `${epoch}-${oldest + i}`))
    client.destroy()
  }

  it('answers hostile Last-Event-ID headers with 200 and the gap signal', async () => {
    const cases: [string, Buffer, 'malformed' | 'unknown' | 'epoch'][] = [
      ['UTF-8 bytes', lastEventId(Buffer.from(`${epoch}-12é`, 'utf8')), 'malformed'],
      ['a latin1 byte', lastEventId(Buffer.from([0x61, 0xe9])), 'malformed'],
      ['emoji', lastEventId(Buffer.from('🙂', 'utf8')), 'malformed'],
      ['8 KB', lastEventId('9'.repeat(8192)), 'malformed'],
      ['129 bytes', lastEventId('a'.repeat(129)), 'malformed'],
      ['128 bytes', lastEventId('a'.repeat(128)), 'unknown'],
      ['negative', lastEventId('-1'), 'unknown'],
      ['negative sequence', lastEventId(`${epoch}--5`), 'unknown'],
      ['huge number', lastEventId('99999999999999999999999999999999'), 'unknown'],
      ['huge sequence', lastEventId(`${epoch}-99999999999999999999`), 'unknown'],
      ['future sequence', lastEventId(`${epoch}-999999999999999`), 'unknown'],
      ['exponent', lastEventId(`${epoch}-1e3`), 'unknown'],
      [
        'a repeated header',
        Buffer.from(`Last-Event-ID: ${epoch}-20\r\nLast-Event-ID: ${epoch}-30`, 'latin1'),
        'unknown',
      ],
      ['another epoch', lastEventId('zzzzzzzz-20'), 'epoch'],
      ['an id of another stream', lastEventId(app.publish('other', { data: 'x' })), 'epoch'],
    ]
    for (const [what, header, reason] of cases) {
      await expectGap(what, { request: withHeaderBytes('/events', header) }, reason)
    }
    publish('after headers')
    expect(app.hub.stats().gaps).toBe(cases.length)
  })

  it('answers hostile ?lastEventId= values the same way (control characters included)', async () => {
    const q = (value: string) => `/events?lastEventId=${value}`
    const cases: [string, string, 'malformed' | 'unknown' | 'epoch'][] = [
      ['NUL', q('%00'), 'malformed'],
      ['CR LF', q(`${epoch}-20%0D%0Aevent:%20evil`), 'malformed'],
      ['a UTF-8 character', q(`${epoch}-20%C3%A9`), 'malformed'],
      ['a broken percent sequence', q('%E0%A4%A'), 'malformed'],
      ['8 KB', q('7'.repeat(8192)), 'malformed'],
      ['two values', `${q(`${epoch}-20`)}&lastEventId=${epoch}-30`, 'malformed'],
      ['negative', q('-1'), 'unknown'],
      ['huge', q('1'.repeat(100)), 'unknown'],
      ['another epoch', q('abc-3'), 'epoch'],
    ]
    for (const [what, path, reason] of cases) await expectGap(what, { path }, reason)

    // The header wins over the query: a good header resumes exactly, whatever the query says.
    const resumeFrom = expected.at(-5)!
    const client = new RawHttpClient(app.port, { path: q('%00'), headers: [`Last-Event-ID: ${resumeFrom}`] })
    others.push(client)
    await client.waitForEvents(4)
    expect(client.events.map((e) => e.id)).toEqual(expected.slice(-4))
    // An empty value is a fresh connection: no gap, no replay.
    const fresh = new RawHttpClient(app.port, { path: q(''), headers: ['Last-Event-ID:'] })
    others.push(fresh)
    await waitUntil(() => fresh.sawId, 'the fresh stream')
    expect(fresh.events).toEqual([])
    client.destroy()
    fresh.destroy()
    publish('after queries')
  })

  it('lets Node answer 400 to control characters in a header, and keeps serving', async () => {
    const status = (bytes: number[]) =>
      rawStatus(app.port, withHeaderBytes('/events', lastEventId(Buffer.from(bytes))))
    const nul = await status([0x31, 0x00, 0x32])
    const cr = await status([0x31, 0x0d, 0x32])
    const controls = await status([0x31, 0x7f, 0x01, 0x32])
    expect(nul).toBe(400)
    expect(cr).toBe(400)
    // DEL and other controls: either refused by Node (400) or reach Rewind as malformed (200 + gap).
    expect([200, 400]).toContain(controls)
    publish('after 400s')
    // The server still serves, and the bystander is still there.
    await expectGap('after the 400s', { path: '/events?lastEventId=%01' }, 'malformed')
    expect(bystander.closed).toBe(false)
    report(`${adapter} hostile-headers`, { nul: nul!, cr: cr!, delAndControls: controls! })
  })

  it('refuses bad publish input with RewindError codes, never injects a field, and the bystander gets exactly the good events', async () => {
    const cycle: { name: string; self?: unknown } = { name: 'cycle' }
    cycle.self = cycle
    const refused: Record<string, string> = {}
    const expectCode = (what: string, code: string, publishing: () => unknown) => {
      const error = refusal(publishing)
      expect(error.code, what).toBe(code)
      refused[what] = error.code
    }
    for (const name of ['a\nb', 'a\rb', 'a\0b', 'x\r\nid: evil', 'x\n\ndata: injected']) {
      expectCode(`event ${JSON.stringify(name)}`, 'ERR_INVALID_FIELD', () =>
        app.publish('s', { event: name, data: 'x' }),
      )
    }
    expectCode('event of another type', 'ERR_INVALID_FIELD', () =>
      app.publish('s', { event: 42 as unknown as string, data: 'x' }),
    )
    // An id is the hub's to give: the framing refuses an unsafe one outright.
    for (const id of ['a\nb', 'a\rb', 'a\0b']) {
      expectCode(`id ${JSON.stringify(id)}`, 'ERR_INVALID_FIELD', () => encodeEvent({ id, data: 'x' }))
    }
    expectCode('a cycle', 'ERR_SERIALIZE', () => app.publish('s', { data: cycle }))
    expectCode('a BigInt', 'ERR_SERIALIZE', () => app.publish('s', { data: 10n }))
    expectCode('a BigInt inside', 'ERR_SERIALIZE', () => app.publish('s', { data: { n: 10n } }))
    expectCode('undefined', 'ERR_SERIALIZE', () => app.publish('s', { data: undefined }))
    expectCode('a function', 'ERR_SERIALIZE', () => app.publish('s', { data: () => 1 }))
    expectCode('a throwing toJSON', 'ERR_SERIALIZE', () =>
      app.publish('s', {
        data: {
          toJSON() {
            throw new Error('no')
          },
        },
      }),
    )
    expectCode('256 KiB + 1', 'ERR_EVENT_TOO_LARGE', () =>
      app.publish('s', { data: 'x'.repeat(256 * 1024 + 1) }),
    )
    // Fewer characters than the limit, more bytes (2 per é).
    expectCode('multi-byte', 'ERR_EVENT_TOO_LARGE', () =>
      app.publish('s', { data: 'é'.repeat(128 * 1024 + 1) }),
    )
    expectCode('50 MB', 'ERR_EVENT_TOO_LARGE', () => app.publish('s', { data: 'z'.repeat(50_000_000) }))
    expectCode('an empty stream name', 'ERR_INVALID_STREAM', () => app.publish('', { data: 'x' }))
    expectCode('a long stream name', 'ERR_INVALID_STREAM', () => app.publish('s'.repeat(257), { data: 'x' }))
    expectCode('no event object', 'ERR_INVALID_ARGUMENT', () =>
      app.publish('s', null as unknown as { data: unknown }),
    )

    // What is accepted goes out as exactly one event, with the hub's id.
    const tricky = [
      {
        data: 'a\n\nid: evil\nevent: evil\ndata: injected\n\n',
        expect: 'a\n\nid: evil\nevent: evil\ndata: injected\n\n',
      },
      { data: 'cr\rlf\ncrlf\r\nend', expect: 'cr\nlf\ncrlf\nend' },
      { data: 'nul\0inside', expect: 'nul\0inside' },
      { data: ' leading space', expect: ' leading space' },
      { data: '', expect: '' },
      { data: 'x'.repeat(256 * 1024), expect: 'x'.repeat(256 * 1024) },
    ]
    const countBefore = bystander.events.length
    for (const item of tricky) publish(item.data)
    // Publish input may carry an `id` of its own: it is not part of the input and is ignored.
    const withId = app.publish('s', { data: 'own id', id: 'evil\nevent: x' } as unknown as { data: string })
    expected.push(withId)
    await bystander.waitForEvents(countBefore + tricky.length + 1)
    const got = bystander.events.slice(countBefore)
    expect(got.map((e) => e.data)).toEqual([...tricky.map((t) => t.expect), 'own id'])
    expect(got.map((e) => e.event)).toEqual(new Array(tricky.length + 1).fill(undefined))
    expect(got.at(-1)!.id).toBe(withId)

    // Nothing crashed, nothing was reported as a stream error, and the bystander got exactly the
    // events published, in order.
    publish('the end')
    await bystander.waitForEvents(expected.length)
    expect(bystander.events.map((e) => e.id)).toEqual(expected)
    expect(bystander.closed).toBe(false)
    expect(app.hub.stats().errors).toBe(0)
    report(`${adapter} hostile-publish`, {
      refusedCases: Object.keys(refused).length,
      bystanderEvents: expected.length,
    })
  })
})

describe.each(ADAPTERS)('%s live demo: hostile input', (adapter) => {
  let demo: RunningDemo
  let bystander: RawHttpClient

  beforeAll(async () => {
    demo = await startDemo(adapter)
    bystander = new RawHttpClient(demo.port)
    await waitUntil(() => bystander.sawId, 'the bystander to open')
  })

  afterAll(async () => {
    bystander?.destroy()
    await demo?.close()
  })

  const post = async (body: string, contentType = 'application/json') => {
    const response = await fetch(`${demo.base}/events`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
    })
    const text = await response.text()
    return { status: response.status, type: response.headers.get('content-type') ?? '', text }
  }

  it('answers bad POST /events bodies with 400/413 JSON and keeps streaming the good ones', async () => {
    const good: string[] = []
    const answers: Record<string, number> = {}
    const cases: [string, string, number, string?][] = [
      ['LF in event', JSON.stringify({ event: 'a\nb', data: 'x' }), 400],
      ['CR in event', JSON.stringify({ event: 'a\rb', data: 'x' }), 400],
      ['NUL in event', JSON.stringify({ event: 'a\u0000b', data: 'x' }), 400],
      ['an id of its own', JSON.stringify({ id: 'evil', data: 'x' }), 400],
      ['event not a string', JSON.stringify({ event: 7, data: 'x' }), 400],
      ['no data', JSON.stringify({ event: 'x' }), 400],
      ['not JSON', '{"data": ', 400],
      ['not an object', '[1,2]', 400],
      ['not JSON content', 'data=x', 400, 'text/plain'],
      ['data over maxEventBytes', JSON.stringify({ data: 'y'.repeat(300_000) }), 413],
      ['body over 1 MiB', JSON.stringify({ data: 'z'.repeat(1_200_000) }), 413],
    ]
    for (const [what, body, status, contentType] of cases) {
      const answer = await post(body, contentType)
      answers[what] = answer.status
      expect(answer.status, `${what}: ${answer.text}`).toBe(status)
      expect(answer.type, what).toMatch(/^application\/json/)
      expect(typeof (JSON.parse(answer.text) as { error: unknown }).error, what).toBe('string')
      // A good event right after each bad one: the bystander must get them all.
      const ok = await post(JSON.stringify({ data: `good after ${what}` }))
      expect(ok.status).toBe(201)
      good.push(`good after ${what}`)
    }
    // Resume positions reach the demo's stream as documented, too.
    const hostile = new RawHttpClient(demo.port, { path: '/events?lastEventId=%00' })
    await hostile.waitForEvents(1)
    expect(hostile.status).toBe(200)
    expect(hostile.events[0]).toMatchObject({ event: 'rewind-gap', data: 'malformed' })
    hostile.destroy()

    await bystander.waitForEvents(good.length)
    expect(bystander.events.map((e) => e.data)).toEqual(good)
    expect(bystander.closed).toBe(false)
    report(`${adapter} demo-hostile`, { badRequests: cases.length, goodEventsDelivered: good.length })
  })
})
