/**
 * A subscriber linked to its response (`ResponseLink`): which of its clients a check of the
 * response's record may end (`waiting`), when it asks for one (`verify`, only past a gap), and how a
 * producer that stopped without a stored end ends it (`endWith`). Served on in-memory sinks; the
 * asynchronous store is driven by hand, so each interleaving is pinned down.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { waitUntil } from '../../../test/support/wait.js'
import { RewindError } from '../src/errors.js'
import { createMemoryStore, type Hub, type HubOptions } from '../src/index.js'
import type { MemoryResponses } from '../src/memory-responses.js'
import { type SinkAnswer, serveSink } from '../src/sink-serve.js'
import type { ResponseLimits, StoreDelivery, StoredEvent } from '../src/store.js'
import type { CloseReason, Subscription } from '../src/types.js'
import { cleanUpAfterEach, hub, sink } from './helpers/hubs.js'
import { ManualStore, microtasks } from './helpers/manual-store.js'
import { flushTurn, lastEventIdOf, type MemorySink } from './helpers/memory-sink.js'

cleanUpAfterEach()

const ID = 'r'
const STREAM = `rewind:response:${ID}`
const LIMITS: ResponseLimits = {
  maxEvents: 100,
  maxBytes: 1 << 20,
  maxLifetime: 60_000,
  ttl: 60_000,
  lease: 10_000,
}

/**
 * A {@link ManualStore} that keeps responses (in its inner memory store), and delivers an event the
 * test hands it as a shared store's tail would: when the test says so.
 */
class ManualResponseStore extends ManualStore {
  readonly responses: MemoryResponses = this.inner.responses
  private tail: StoreDelivery | undefined

  override attach(delivery: StoreDelivery): void {
    super.attach(delivery)
    this.tail = delivery
  }

  deliverEvent(stream: string, event: StoredEvent): void {
    this.tail?.deliver(stream, [event])
  }
}

/** A hub on a {@link ManualResponseStore}; the records' timers are cleared after the test. */
function manualHub(): { store: ManualResponseStore; h: Hub } {
  const store = new ManualResponseStore()
  const h = hub({ store, onError: () => {} })
  onTestFinished(() => store.responses.clear())
  return { store, h }
}

/** A hub on a memory store, with `options`; the records' timers are cleared after the test. */
function memoryHub(options: HubOptions = {}) {
  const store = createMemoryStore()
  const h = hub({ store, onError: () => {}, ...options })
  onTestFinished(() => store.responses.clear())
  return { store, h }
}

/** Response {@link ID} with the tokens `data`, created in `records` directly (no producer). */
function respond(records: MemoryResponses, data: readonly string[]): void {
  records.create(ID, STREAM, LIMITS)
  for (const [i, d] of data.entries())
    records.append(ID, STREAM, { event: undefined, data: d, value: d }, LIMITS, i + 1)
}

/** Ends response {@link ID} in `records` with `done`: its terminal event is in history, delivered to no one. */
function endIn(records: MemoryResponses): StoredEvent {
  const ended = records.end(ID, STREAM, { event: 'rewind-end', data: 'done', value: 'done' }, 'done', LIMITS)
  return ended!.event!
}

/** A client of response `id` on a new sink, from `lastEventId`. */
function client(h: Hub, id: string, lastEventId?: string): { s: MemorySink; answer: Promise<SinkAnswer> } {
  const s = sink()
  return { s, answer: serveSink(h, s, { response: id }, { lastEventId }) }
}

async function subscriptionOf(answer: Promise<SinkAnswer>): Promise<Subscription> {
  const settled = await answer
  if (settled.status !== 200) throw new Error(`answered ${settled.status}`)
  return settled.subscription
}

async function reasonOf(answer: Promise<SinkAnswer>): Promise<CloseReason> {
  return (await subscriptionOf(answer)).done
}

/** What the client got: `[event, data, id]`, `event` undefined for a token. */
const got = (s: MemorySink) => s.parse().events.map((e) => [e.event, e.data, e.id])

/**
 * A producer that yields `data`, then fails when told; the store refuses its terminal event (as a
 * shared store that is down would), so the run is over without a stored end.
 */
function failingWithoutEnd(records: MemoryResponses, data: readonly string[]) {
  records.end = () => {
    throw new RewindError('ERR_STORE_UNAVAILABLE', 'down')
  }
  let fail: (error: Error) => void = () => {}
  const failed = new Promise<never>((_, reject) => {
    fail = reject
  })
  // Handled: it may be rejected before the producer awaits it.
  failed.catch(() => {})
  async function* producer() {
    yield* data
    await failed
  }
  return { producer, fail: () => fail(new Error('model went away')) }
}

describe('verify: a check of the record only past a gap', () => {
  it('a client whose read missed the end, without a gap, is not cut: it gets the end once delivered', async () => {
    const { store, h } = manualHub()
    respond(store.responses, ['t0', 't1'])
    const c = client(h, ID)
    await microtasks()
    expect(store.reads).toHaveLength(1)
    const end = endIn(store.responses)
    // The read ran before the end: the client goes live without it, its delivery still on the way.
    store.answer('call')
    const subscription = await subscriptionOf(c.answer)
    // Time for a check, had one been asked for: it would see the record ended and cut the client.
    await flushTurn()
    expect(subscription.closed).toBe(false)
    store.deliverEvent(STREAM, end)
    expect(await subscription.done).toBe('end')
    const epoch = store.responses.history(STREAM)!.epoch
    expect(got(c.s)).toEqual([
      [undefined, 't0', `${epoch}-1`],
      [undefined, 't1', `${epoch}-2`],
      ['rewind-end', 'done', end.id],
    ])
  })
})

describe('going live: the end delivered while the read was in flight', () => {
  it('is sent after the replay, and ends the body', async () => {
    const { store, h } = manualHub()
    respond(store.responses, ['t0', 't1'])
    const c = client(h, ID)
    await microtasks()
    const end = endIn(store.responses)
    store.deliverEvent(STREAM, end)
    await flushTurn()
    // The read ran before the end: the end comes only from what was queued meanwhile.
    store.answer('call')
    const subscription = await subscriptionOf(c.answer)
    expect(subscription.closed).toBe(true)
    expect(await subscription.done).toBe('end')
    expect(got(c.s).map(([event, data]) => [event, data])).toEqual([
      [undefined, 't0'],
      [undefined, 't1'],
      ['rewind-end', 'done'],
    ])
  })
})

describe('waiting: who a check of an ended response cuts', () => {
  it('a client still catching up is left alone: it gets its replay, then the end; the gapped one that asked is cut', async () => {
    const { store, h } = manualHub()
    respond(store.responses, ['t0', 't1'])
    // From another lifetime of the history: told of the gap, its record is checked once live.
    const gapped = client(h, ID, 'zzzz-3')
    await microtasks()
    // The first read finds the gap; the next one, from the gap's position, runs before the end.
    store.answer()
    await microtasks()
    expect(store.reads).toHaveLength(1)
    endIn(store.responses)
    // Back after its first token (a read of its own: reads of the same page are shared).
    const late = client(h, ID, `${store.responses.history(STREAM)!.epoch}-1`)
    await microtasks()
    expect(store.reads).toHaveLength(2)
    // The gapped client goes live without the end, and asks for a check, which ends it.
    store.answer('call')
    expect(await reasonOf(gapped.answer)).toBe('reset')
    expect(gapped.s.parse().events.map((e) => e.event)).toEqual(['rewind-gap', undefined, undefined])
    // The late client's read was still in flight during the check.
    store.answer()
    expect(await reasonOf(late.answer)).toBe('end')
    expect(got(late.s).map(([event, data]) => [event, data])).toEqual([
      [undefined, 't1'],
      ['rewind-end', 'done'],
    ])
  })
})

describe('endWith: a producer stopped without a stored end', () => {
  it('ends a live client with `failed`, without an id, for the reason `end`', async () => {
    const disconnects: CloseReason[] = []
    const { store, h } = memoryHub({ onDisconnect: ({ reason }) => disconnects.push(reason) })
    const run = failingWithoutEnd(store.responses, ['t0'])
    const { id, done } = await h.responses.start(run.producer, { id: ID })
    const c = client(h, id)
    const subscription = await subscriptionOf(c.answer)
    run.fail()
    expect(await done).toBe('failed')
    expect(await subscription.done).toBe('end')
    expect(disconnects).toEqual(['end'])
    expect(got(c.s).map(([event, data, eventId]) => [event, data, eventId === undefined])).toEqual([
      [undefined, 't0', false],
      ['rewind-end', 'failed', true],
    ])
  })

  it('sends a client whose read is in flight its replay first, then `failed`: never the end before events it missed', async () => {
    const { store, h } = manualHub()
    const run = failingWithoutEnd(store.responses, ['t0', 't1'])
    const { id, done } = await h.responses.start(run.producer, { id: ID })
    await flushTurn()
    expect(store.responses.history(STREAM)?.size).toBe(2)
    const c = client(h, id)
    await microtasks()
    expect(store.reads).toHaveLength(1)
    run.fail()
    expect(await done).toBe('failed')
    await flushTurn()
    store.answer()
    expect(await reasonOf(c.answer)).toBe('end')
    expect(got(c.s).map(([event, data]) => [event, data])).toEqual([
      [undefined, 't0'],
      [undefined, 't1'],
      ['rewind-end', 'failed'],
    ])
    // The end has no id: the client's position stays on its last token.
    expect(lastEventIdOf(c.s.text())).toBe(got(c.s)[1]![2])
  })

  it('sends a client paused mid-replay (its sink full) the rest of the answer first, then `failed`', async () => {
    const { store, h } = memoryHub()
    const tokens = Array.from({ length: 600 }, (_, i) => `${i}:${'x'.repeat(1000)}`)
    const run = failingWithoutEnd(store.responses, tokens)
    const { id, done } = await h.responses.start(run.producer, { id: ID })
    await waitUntil(() => store.responses.history(STREAM)?.size === tokens.length, 'every token stored')
    const s = sink({ full: true })
    const answer = serveSink(h, s, { response: id }, { lastEventId: undefined })
    const subscription = await subscriptionOf(answer)
    // Paused: a page is buffered for a client that does not read, the rest is still in history.
    expect(s.parse().events.length).toBeLessThan(tokens.length)
    run.fail()
    expect(await done).toBe('failed')
    await flushTurn()
    s.drain()
    expect(await subscription.done).toBe('end')
    const received = s.parse().events
    // Every token in order, then the end (tokens compared by number: their data is long).
    expect(received.map((e) => e.data.split(':')[0])).toEqual([...tokens.map((_, n) => String(n)), 'failed'])
    expect(received.at(-1)?.event).toBe('rewind-end')
  })
})
