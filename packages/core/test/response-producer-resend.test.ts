/**
 * A response's producer (response-producer.ts) on a shared store that fails: the window of appends
 * in flight, the resend that recovers a failed append without a hole or a duplicate, the end sent
 * again while the store is down, and how the run stops (halt, cancel, lifetime, a lost lease).
 *
 * The store is the in-memory one behind a decorator that makes it behave as a shared store does: every
 * call answers after a round trip, appends run in the order they are sent, an append whose number is
 * stored already answers as stored, and chosen appends, ends, lookups or renewals fail. The clock is
 * faked (timers and `Date`; the round trips use real `setImmediate`), so the pauses between attempts
 * and the lease's bound are read off exactly, whatever the machine's load.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RewindError } from '../src/errors.js'
import { MemoryResponses } from '../src/memory-responses.js'
import { ProducerRun, type ResponseHost, type ResponseProducer } from '../src/response-producer.js'
import type {
  NewEvent,
  ResponseEnd,
  ResponseLimits,
  ResponseRecords,
  ResponseState,
  ResponseStatus,
  StoredEvent,
} from '../src/store.js'

const END = 'rewind-end'
const ID = 'r1'
const STREAM = `rewind:response:${ID}`
const LIMITS: ResponseLimits = {
  maxEvents: 10_000,
  maxBytes: 10_000_000,
  maxLifetime: 600_000,
  ttl: 600_000,
  lease: 3000,
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
})
afterEach(() => {
  for (const store of stores.splice(0)) store.clear()
  vi.useRealTimers()
})

/** The records of the store of each test: an ended response keeps an expiry timer there. */
const stores: MemoryResponses[] = []

/** Timers left by the runs: every timer but the stores' expiry timers of ended responses. */
function runTimers(): number {
  const expiries = stores.filter((store) => {
    const status = store.get(ID)?.status
    return status !== undefined && status !== 'active'
  }).length
  return vi.getTimerCount() - expiries
}

/** Lets every round trip under way answer (real `setImmediate` turns; the fake clock stands still). */
async function flush(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** Runs the fake clock by `ms`, letting round trips answer on the way. */
async function advance(ms: number): Promise<void> {
  await flush()
  await vi.advanceTimersByTimeAsync(ms)
  await flush()
}

/** What becomes of one attempt of an append (or of an end): see {@link SharedRecords}. */
type Fault =
  /** Runs as usual. */
  | 'ok'
  /** Never reaches the store; the reply is an error (a connection lost before the command ran). */
  | 'drop'
  /** Runs; its reply is lost (a connection lost after the command ran). */
  | 'lose-reply'
  /** Refused with ERR_HISTORY_LOST (the store lost the append's predecessor). */
  | 'refuse'
  /** Throws at once instead of returning a promise. */
  | 'throw'
  /** Fails with the store's ERR_STORE_UNAVAILABLE (it is down): not a refusal. */
  | 'unavailable'
  /** Fails with an error that carries the refusal's code without being the store's RewindError. */
  | 'foreign'

/**
 * The in-memory records, behaving as a shared store's: see the file's comment. `sent` lists each
 * append's number with the (fake) time it was sent; `hold` keeps the replies until `release`.
 */
class SharedRecords implements ResponseRecords {
  readonly inner = newMemoryResponses()
  readonly sent: { seq: number; at: number }[] = []
  readonly ends: { reason: ResponseEnd; at: number }[] = []
  readonly renewals: number[] = []
  /** Faults of the next attempts of each append, by number; of the next ends; of the next lookups. */
  readonly faults = new Map<number, Fault[]>()
  endFaults: Fault[] = []
  /** When set, every append fails this way (a store that is down). */
  down: Fault | undefined
  getFails = false
  /** Lookups of the response's state so far. */
  lookups = 0
  /** What a renewal answers (false: the lease is lost). */
  renewal: boolean | Error = true
  hold = false
  private held: (() => void)[] = []
  /** Ids of the stored appends, by number - 1. */
  private readonly ids: string[] = []

  create(id: string, stream: string, limits: ResponseLimits): Promise<boolean> {
    return Promise.resolve(this.inner.create(id, stream, limits))
  }

  append(
    id: string,
    stream: string,
    event: NewEvent,
    limits: ResponseLimits,
    seq: number,
  ): Promise<string | undefined> {
    this.sent.push({ seq, at: Date.now() })
    const fault = this.down ?? this.faults.get(seq)?.shift() ?? 'ok'
    if (fault === 'throw') throw new Error('store client closed')
    // The command runs now, in the order sent, as on a shared store's one connection.
    let outcome: () => string | undefined
    if (fault === 'drop') outcome = lostConnection
    else if (fault === 'unavailable') outcome = unavailable
    else if (fault === 'foreign') outcome = foreign
    else if (fault === 'refuse') outcome = () => refused(seq)
    else {
      let ran: string | undefined
      let error: unknown
      try {
        ran = this.run(id, stream, event, limits, seq)
      } catch (e) {
        error = e
      }
      outcome = () => {
        if (error !== undefined) throw error
        if (fault === 'lose-reply') return lostConnection()
        return ran
      }
    }
    return this.reply().then(outcome)
  }

  end(
    id: string,
    stream: string,
    event: NewEvent,
    reason: ResponseEnd,
    limits: ResponseLimits,
  ): Promise<{ readonly state: ResponseState } | undefined> {
    this.ends.push({ reason, at: Date.now() })
    const fault = this.endFaults.shift() ?? 'ok'
    if (fault === 'throw') throw new Error('store client closed')
    if (fault === 'drop') return this.reply().then(lostConnection)
    // A shared store's tail delivers the terminal event: its end answers the state only.
    const ended = this.inner.end(id, stream, event, reason, limits)
    return this.reply().then(() => (ended === undefined ? undefined : { state: ended.state }))
  }

  get(id: string): Promise<ResponseState | undefined> {
    this.lookups++
    if (this.getFails) return this.reply().then(lostConnection)
    const state = this.inner.get(id)
    return this.reply().then(() => state)
  }

  renew(_id: string, _lease: number): Promise<boolean> {
    this.renewals.push(Date.now())
    const renewal = this.renewal
    return this.reply().then(() => {
      if (renewal instanceof Error) throw renewal
      return renewal
    })
  }

  release(): void {
    for (const reply of this.held.splice(0)) reply()
  }

  /** Lets the oldest reply held come. */
  releaseOne(): void {
    this.held.shift()?.()
  }

  /** Ends the response as another instance would (a cancel through the store). */
  endElsewhere(reason: ResponseEnd): void {
    this.inner.end(ID, STREAM, { event: END, data: reason, value: reason }, reason, LIMITS)
  }

  /** The events a reader of the response's stream gets, end included. */
  events(): string[] {
    const history = this.inner.history(STREAM)
    if (history === undefined) return []
    const oldest = history.read(null, 0).position.id
    return history
      .read(oldest, 10_000)
      .events.map((e) => (e.event === undefined ? e.data : `${e.event}:${e.data}`))
  }

  private run(
    id: string,
    stream: string,
    event: NewEvent,
    limits: ResponseLimits,
    seq: number,
  ): string | undefined {
    // An append sent again after its reply was lost: stored already, not stored twice.
    if (seq <= this.ids.length) return this.ids[seq - 1]
    const stored = this.inner.append(id, stream, event, limits, seq)
    if (stored === undefined) return undefined
    this.ids.push(stored.id)
    return stored.id
  }

  private reply(): Promise<void> {
    if (this.hold) return new Promise((resolve) => this.held.push(() => resolve()))
    return new Promise((resolve) => setImmediate(resolve))
  }
}

function newMemoryResponses(): MemoryResponses {
  const store = new MemoryResponses(10, () => Date.now())
  stores.push(store)
  return store
}

function lostConnection(): never {
  throw new Error('connection lost')
}

function unavailable(): never {
  throw new RewindError('ERR_STORE_UNAVAILABLE', 'the store is down')
}

function foreign(): never {
  throw Object.assign(new Error('refused elsewhere'), { code: 'ERR_HISTORY_LOST' })
}

function refused(seq: number): never {
  throw new RewindError('ERR_HISTORY_LOST', `append ${seq} does not follow what is stored`)
}

/** A host that records what the run asks of it. */
function newHost(pin?: () => Promise<void> | undefined): {
  host: ResponseHost
  errors: unknown[]
  fanned: StoredEvent[]
  prepared: { data: unknown; event?: string | undefined }[]
  unpins: number
} {
  const seen = {
    errors: [] as unknown[],
    fanned: [] as StoredEvent[],
    prepared: [] as { data: unknown; event?: string | undefined }[],
    unpins: 0,
  }
  const host: ResponseHost = {
    store: undefined as never,
    endEvent: END,
    prepare(stream, input) {
      expect(stream).toBe(STREAM)
      seen.prepared.push(input)
      const data = typeof input.data === 'string' ? input.data : JSON.stringify(input.data)
      return { event: input.event, data, value: input.data }
    },
    fanOut(stream, event) {
      expect(stream).toBe(STREAM)
      seen.fanned.push(event)
    },
    pin: (stream) => {
      expect(stream).toBe(STREAM)
      return pin?.()
    },
    unpin(stream) {
      expect(stream).toBe(STREAM)
      seen.unpins++
    },
    reportError(error, stream) {
      expect(stream).toBe(STREAM)
      seen.errors.push(error)
    },
  }
  return Object.assign(seen, { host })
}

interface Started {
  run: ProducerRun
  records: SharedRecords
  errors: unknown[]
  fanned: StoredEvent[]
  prepared: { data: unknown; event?: string | undefined }[]
  forgotten: { status: ResponseStatus | undefined; stored: boolean }[]
  unpins: () => number
  /** How the run ended, once it has. */
  outcome: () => ResponseEnd | undefined
}

async function start(
  producer: ResponseProducer,
  setup: (records: SharedRecords) => void = () => {},
  limits: ResponseLimits = LIMITS,
  records: SharedRecords = new SharedRecords(),
): Promise<Started> {
  setup(records)
  expect(await records.create(ID, STREAM, limits)).toBe(true)
  const seen = newHost()
  const forgotten: Started['forgotten'] = []
  const run = new ProducerRun(seen.host, records, ID, STREAM, limits, (status, stored) =>
    forgotten.push({ status, stored }),
  )
  let outcome: ResponseEnd | undefined
  void run.done.then((end) => {
    outcome = end
  })
  await run.start(producer)
  return { run, records, ...seen, forgotten, unpins: () => seen.unpins, outcome: () => outcome }
}

/** Runs a producer of `n` events on a store with `faults` (by append number) until it ends `expected`. */
async function runWith(n: number, faults: Record<number, Fault[]>, expected: ResponseEnd): Promise<Started> {
  const started = await start(items(...letters(n)), (records) => {
    for (const [seq, list] of Object.entries(faults)) records.faults.set(Number(seq), list)
  })
  expect(await untilDone(started)).toBe(expected)
  return started
}

/** Starts `producer` with a lease of `lease` ms on a store that fails every attempt of the first append, or of the end. */
function storeDown(lease: number, what: 'appends' | 'end', producer: ResponseProducer): Promise<Started> {
  const drops: Fault[] = Array(20).fill('drop')
  return start(
    producer,
    (records) => {
      if (what === 'end') records.endFaults = drops
      else records.faults.set(1, drops)
    },
    { ...LIMITS, lease },
  )
}

/**
 * Cancels the response elsewhere while the replies are held, then lets them come: the run stops
 * with the store's status, ends nothing itself and reports nothing.
 */
async function endedWhileHeld(started: Started): Promise<void> {
  const { records } = started
  await flush()
  records.endElsewhere('cancelled')
  records.hold = false
  records.release()
  expect(await untilDone(started)).toBe('cancelled')
  expect(records.ends).toEqual([])
  expect(started.errors).toEqual([])
  expect(started.forgotten).toEqual([{ status: 'cancelled', stored: true }])
}

/** Runs round trips and the clock (by `step` ms at a time) until the run has ended. */
async function untilDone(started: Started, step = 10, most = 100_000): Promise<ResponseEnd> {
  for (let waited = 0; started.outcome() === undefined; waited += step) {
    if (waited > most) throw new Error(`the run has not ended after ${most} ms (fake)`)
    await advance(step)
  }
  await flush()
  return started.outcome()!
}

/** A promise the test resolves when it chooses. */
function latch(): { gate: Promise<void>; open: () => void } {
  let open: () => void = () => {}
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  return { gate, open }
}

/** Yields the strings, waiting for each promise in between. */
async function* paced(...parts: (string | Promise<void>)[]): AsyncGenerator<string> {
  for (const part of parts) {
    if (typeof part === 'string') yield part
    else await part
  }
}

/** Yields the strings, then waits until the run stops it. */
function untilAborted(...values: string[]): ResponseProducer {
  return async function* (signal) {
    yield* values
    await new Promise((resolve) => signal.addEventListener('abort', resolve))
  }
}

async function* items(...values: unknown[]): AsyncGenerator<never> {
  for (const value of values) yield value as never
}

/** Sequence numbers 1..n. */
function upTo(n: number, from = 1): number[] {
  return Array.from({ length: n - from + 1 }, (_, i) => from + i)
}

const letters = (n: number): string[] => Array.from({ length: n }, (_, i) => `e${i + 1}`)

describe('a response producer on a shared store', () => {
  it('keeps its appends in flight together, stores the answer and its end once, and leaves no timer', async () => {
    const started = await start(items('a', { data: 'b', event: 'token' }, { data: { n: 1 } }))
    await flush()
    expect(await untilDone(started)).toBe('done')
    const { records } = started
    expect(records.events()).toEqual(['a', 'token:b', '{"n":1}', `${END}:done`])
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3])
    expect(records.ends.map((e) => e.reason)).toEqual(['done'])
    // A shared store's tail delivers the events: nothing is fanned out here.
    expect(started.fanned).toEqual([])
    expect(started.prepared).toEqual([
      { data: 'a' },
      { data: 'b', event: 'token' },
      { data: { n: 1 }, event: undefined },
      { data: 'done', event: END },
    ])
    expect(started.errors).toEqual([])
    expect(started.forgotten).toEqual([{ status: 'done', stored: true }])
    expect(started.unpins()).toBe(1)
    expect(runTimers()).toBe(0)
  })

  it('holds at most 64 appends in flight, and pulls the next item once the oldest is stored', async () => {
    let pulled = 0
    async function* counter(): AsyncGenerator<string> {
      while (pulled < 100) yield `e${++pulled}`
    }
    const started = await start(counter(), (records) => {
      records.hold = true
    })
    const { records } = started
    await flush()
    expect(records.sent.map((s) => s.seq)).toEqual(upTo(64))
    expect(pulled).toBe(64)
    // The oldest is stored: one more goes out, without waiting for the others.
    records.releaseOne()
    await flush()
    expect(records.sent.map((s) => s.seq)).toEqual(upTo(65))
    expect(pulled).toBe(65)
    records.hold = false
    records.release()
    expect(await untilDone(started)).toBe('done')
    expect(records.sent.map((s) => s.seq)).toEqual(upTo(100))
    expect(records.events()).toEqual([...letters(100), `${END}:done`])
    expect(started.errors).toEqual([])
  })

  it('ends only after every append in flight is stored, the end last', async () => {
    const started = await start(items('a', 'b', 'c'), (records) => {
      records.hold = true
    })
    const { records } = started
    await flush()
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3])
    expect(records.ends).toEqual([])
    records.hold = false
    records.release()
    expect(await untilDone(started)).toBe('done')
    expect(records.events()).toEqual(['a', 'b', 'c', `${END}:done`])
  })

  it('sends a failed append and the refused ones after it again at once, in order: no hole, no duplicate', async () => {
    const started = await runWith(6, { 3: ['unavailable'] }, 'done')
    const { records } = started
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 6, 3, 4, 5, 6])
    // Sent again without a pause: the store may be back already.
    expect(new Set(records.sent.map((s) => s.at)).size).toBe(1)
    expect(records.events()).toEqual([...letters(6), `${END}:done`])
    expect(started.errors).toEqual([])
    expect(started.forgotten).toEqual([{ status: 'done', stored: true }])
    expect(runTimers()).toBe(0)
  })

  it('sends an append whose reply was lost again, and the store keeps it once', async () => {
    const started = await runWith(4, { 2: ['lose-reply'] }, 'done')
    const { records } = started
    // 3 and 4 were stored after 2: only 2 is sent again.
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 4, 2])
    expect(records.events()).toEqual([...letters(4), `${END}:done`])
    expect(started.errors).toEqual([])
  })

  it('pulls nothing more once an append has failed, until the window is stored again', async () => {
    const { gate, open } = latch()
    const started = await start(paced('e1', 'e2', 'e3', gate, 'e4', 'e5', 'e6'), (records) => {
      records.faults.set(1, ['drop'])
    })
    const { records } = started
    // The replies come: 1 failed, 2 and 3 refused; the producer waits.
    await flush()
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3])
    open()
    expect(await untilDone(started)).toBe('done')
    // 4 goes out, then the window is recovered before 5 is pulled.
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 5, 6])
    expect(records.events()).toEqual([...letters(6), `${END}:done`])
  })

  it('keeps a full window in flight again once a failed one is recovered', async () => {
    const gates = [latch(), latch()]
    const started = await start(
      paced('e1', 'e2', gates[0]!.gate, 'e3', gates[1]!.gate, 'e4', 'e5'),
      (records) => {
        records.faults.set(2, ['drop'])
      },
    )
    const { records } = started
    await flush()
    gates[0]!.open()
    await flush()
    // 3 went out; 2 and 3 were sent again and stored.
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 2, 3])
    records.hold = true
    gates[1]!.open()
    await flush()
    // Nothing failed since: 4 and 5 travel together.
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 2, 3, 4, 5])
    records.hold = false
    records.release()
    expect(await untilDone(started)).toBe('done')
    expect(records.events()).toEqual([...letters(5), `${END}:done`])
  })

  it('stores the appends in flight before the end when it is cancelled', async () => {
    const started = await start(untilAborted('a', 'b'), (records) => {
      records.hold = true
    })
    const { records, run } = started
    await flush()
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2])
    const finished = run.finish('cancelled')
    await flush()
    expect(records.ends).toEqual([])
    records.hold = false
    records.release()
    await flush()
    expect(await finished).toBe('cancelled')
    expect(records.events()).toEqual(['a', 'b', `${END}:cancelled`])
  })

  it('drops an item the producer gave as the run stopped', async () => {
    let run: ProducerRun | undefined
    let pulled = 0
    // The item is ready at once, and the run halts in the turn between its arrival and its append.
    const iterator: AsyncIterator<string> = {
      next: () => {
        const item = Promise.resolve({ done: false as const, value: `e${++pulled}` })
        if (pulled === 2) void item.then(() => queueMicrotask(() => run?.halt()))
        return item
      },
    }
    const started = await start({ [Symbol.asyncIterator]: () => iterator }, (records) => {
      records.hold = true
    })
    run = started.run
    started.records.hold = false
    started.records.release()
    await flush()
    expect(started.outcome()).toBe('failed')
    expect(pulled).toBe(2)
    expect(started.records.sent.map((s) => s.seq)).toEqual([1])
    expect(started.records.events()).toEqual(['e1'])
  })

  it('counts an end the store answers as still active as no end', async () => {
    const started = await start(items('a'), (records) => {
      const end = records.end.bind(records)
      records.end = (...args) =>
        end(...args).then(() => ({ state: { status: 'active', origin: '', endId: undefined } }))
    })
    expect(await untilDone(started)).toBe('failed')
    expect(started.forgotten).toEqual([{ status: 'active', stored: false }])
  })

  it('pulls nothing more after a refused append either, and ends failed: the store lost one', async () => {
    let pulled = 0
    const { gate, open } = latch()
    async function* producer(): AsyncGenerator<string> {
      yield `e${++pulled}`
      yield `e${++pulled}`
      await gate
      for (;;) yield `e${++pulled}`
    }
    const started = await start(producer(), (records) => {
      records.faults.set(2, ['refuse'])
    })
    await flush()
    open()
    expect(await untilDone(started)).toBe('failed')
    // 3 went out, then the window was settled: 2 was refused first, so nothing was sent again.
    expect(started.records.sent.map((s) => s.seq)).toEqual([1, 2, 3])
    expect(pulled).toBe(3)
    expect(started.records.events()).toEqual(['e1', `${END}:failed`])
  })

  it('ends failed, and says so, when the store refuses an append whose predecessor it acknowledged', async () => {
    const started = await runWith(5, { 3: ['refuse'] }, 'failed')
    const { records } = started
    // Nothing is sent again: the store lost event 2, which no resend brings back.
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5])
    expect(records.events()).toEqual(['e1', 'e2', `${END}:failed`])
    expect(started.errors).toHaveLength(1)
    expect(started.errors[0]).toBeInstanceOf(RewindError)
    expect(started.errors[0]).toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
      message: `the store lost events of the response in "${STREAM}"; it ends failed`,
    })
    expect(started.forgotten).toEqual([{ status: 'failed', stored: true }])
    expect(runTimers()).toBe(0)
  })

  it('ends failed when an append sent again is refused: the store lost what it had acknowledged', async () => {
    const started = await runWith(5, { 3: ['drop', 'refuse'] }, 'failed')
    expect(started.records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 3])
    expect(started.records.events()).toEqual(['e1', 'e2', `${END}:failed`])
    expect(started.errors).toHaveLength(1)
    expect((started.errors[0] as Error).message).toBe(
      `the store lost events of the response in "${STREAM}"; it ends failed`,
    )
  })

  it('sends again while the store fails, pausing 50 ms then twice as long up to 1 s, for at most the lease', async () => {
    // The pauses add up to 2550 ms after the 8th attempt: a lease of exactly that allows no 9th.
    const started = await storeDown(2550, 'appends', items(...letters(3)))
    expect(await untilDone(started, 10)).toBe('failed')
    const { records } = started
    const ones = records.sent.filter((s) => s.seq === 1).map((s) => s.at - records.sent[0]!.at)
    expect(ones).toEqual([0, 0, 50, 150, 350, 750, 1550, 2550])
    expect(records.sent.filter((s) => s.seq !== 1).map((s) => s.seq)).toEqual([2, 3])
    expect(records.events()).toEqual([`${END}:failed`])
    expect(started.errors).toHaveLength(1)
    expect(started.errors[0]).toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
      message: `the store could not take the events of the response in "${STREAM}" within its lease (2550 ms); it ends failed`,
    })
    expect(started.forgotten).toEqual([{ status: 'failed', stored: true }])
    expect(runTimers()).toBe(0)
  })

  it('keeps sending for the whole lease, the pause held at 1 s', async () => {
    const started = await storeDown(4000, 'appends', items('a'))
    expect(await untilDone(started, 10)).toBe('failed')
    const times = started.records.sent.map((s) => s.at - started.records.sent[0]!.at)
    expect(times).toEqual([0, 0, 50, 150, 350, 750, 1550, 2550, 3550, 4550])
  })

  it('starts the pause again at 50 ms for the next append once one is stored', async () => {
    const started = await start(items(...letters(3)), (records) => {
      // 1 fails twice; 2 and 3, refused the first time, fail once more each when sent again.
      records.faults.set(1, ['drop', 'drop'])
      records.faults.set(2, ['ok', 'drop'])
      records.faults.set(3, ['ok', 'drop'])
    })
    expect(await untilDone(started, 5)).toBe('done')
    const { records } = started
    const t0 = records.sent[0]!.at
    expect(records.sent.map((s) => [s.seq, s.at - t0])).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
      [1, 0],
      [1, 50],
      [2, 50],
      [2, 100],
      [3, 100],
      [3, 150],
    ])
    expect(records.events()).toEqual([...letters(3), `${END}:done`])
    expect(started.errors).toEqual([])
  })

  it('sends again an append failed with an error that only carries the code of a refusal', async () => {
    const started = await runWith(3, { 1: ['foreign'] }, 'done')
    expect(started.records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 1, 2, 3])
    expect(started.records.events()).toEqual([...letters(3), `${END}:done`])
  })

  it('treats an append that throws at once as failed, and sends it again', async () => {
    const started = await runWith(3, { 2: ['drop', 'throw'] }, 'done')
    expect(started.records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 2, 2, 3])
    expect(started.records.events()).toEqual([...letters(3), `${END}:done`])
  })

  it('ends failed when an append throws at once the first time', async () => {
    const started = await runWith(3, { 2: ['throw'] }, 'failed')
    expect(started.records.events()).toEqual(['e1', `${END}:failed`])
    expect((started.errors[0] as Error).message).toBe('store client closed')
  })

  it('stops sending, and leaves no timer, when the response ends elsewhere during a pause', async () => {
    const started = await start(items(...letters(3)), (records) => {
      records.faults.set(1, Array(20).fill('drop'))
    })
    const { records, run } = started
    await advance(60)
    expect(records.sent.filter((s) => s.seq === 1)).toHaveLength(3)
    const count = records.sent.length
    records.endElsewhere('cancelled')
    run.halt()
    await flush()
    expect(started.outcome()).toBe('cancelled')
    // The pause was cut short: no timer is left behind.
    expect(runTimers()).toBe(0)
    await advance(5000)
    expect(records.sent).toHaveLength(count)
    expect(records.events()).toEqual([`${END}:cancelled`])
    expect(started.forgotten).toEqual([{ status: 'cancelled', stored: true }])
    expect(started.errors).toEqual([])
  })

  it('sends nothing more when the response ends elsewhere while an append is sent again', async () => {
    const started = await start(items(...letters(3)), (records) => {
      records.faults.set(1, Array(20).fill('drop'))
      records.hold = true
    })
    const { records, run } = started
    await flush()
    records.release()
    await flush()
    records.release()
    await flush()
    // The first attempt and the one sent again at once have failed; the second resend, after a
    // pause, is on its way.
    await vi.advanceTimersByTimeAsync(50)
    expect(records.sent.filter((s) => s.seq === 1)).toHaveLength(3)
    records.endElsewhere('cancelled')
    run.halt()
    records.hold = false
    records.release()
    await flush()
    expect(started.outcome()).toBe('cancelled')
    expect(runTimers()).toBe(0)
    await advance(5000)
    expect(records.sent.filter((s) => s.seq === 1)).toHaveLength(3)
  })

  it('stops when an append sent again finds the response ended', async () => {
    const started = await start(items(...letters(3)), (records) => {
      records.faults.set(2, ['drop'])
      records.hold = true
    })
    const { records } = started
    await endedWhileHeld(started)
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3, 2])
    expect(records.events()).toEqual(['e1', `${END}:cancelled`])
  })

  it('stops as soon as the oldest append in flight finds the response ended', async () => {
    const { gate, open } = latch()
    const started = await start(paced(gate, 'e1', 'e2', 'e3'), (records) => {
      records.hold = true
    })
    const { records } = started
    records.endElsewhere('cancelled')
    open()
    await flush()
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3])
    records.releaseOne()
    await flush()
    // The run asks the store how the response ended without waiting for the other replies.
    expect(records.lookups).toBe(1)
    records.hold = false
    records.release()
    expect(await untilDone(started)).toBe('cancelled')
    expect(records.ends).toEqual([])
    expect(records.sent.map((s) => s.seq)).toEqual([1, 2, 3])
  })

  it('stops pulling when an append finds the response ended elsewhere', async () => {
    let pulled = 0
    const finished: string[] = []
    async function* producer(): AsyncGenerator<string> {
      try {
        for (;;) {
          yield `e${++pulled}`
          if (pulled === 2) await new Promise((resolve) => setImmediate(resolve))
        }
      } finally {
        finished.push('finally')
      }
    }
    const started = await start(producer(), (records) => {
      records.hold = true
    })
    await endedWhileHeld(started)
    expect(finished).toEqual(['finally'])
    const count = pulled
    await advance(100)
    expect(pulled).toBe(count)
  })

  it('sends the end again while the store fails, pausing as appends do, and ends when it is stored', async () => {
    const started = await start(items('a'), (records) => {
      records.endFaults = ['drop', 'drop', 'throw']
    })
    expect(await untilDone(started, 5)).toBe('done')
    const { records } = started
    expect(records.ends.map((e) => e.at - records.ends[0]!.at)).toEqual([0, 50, 150, 350])
    expect(records.events()).toEqual(['a', `${END}:done`])
    expect(started.errors.map((e) => (e as Error).message)).toEqual([
      'connection lost',
      'connection lost',
      'store client closed',
    ])
    expect(started.forgotten).toEqual([{ status: 'done', stored: true }])
    expect(runTimers()).toBe(0)
  })

  it('gives up on the end once the next pause would pass the lease: the run ends without a stored end', async () => {
    // Attempts at 0, 50, 150, 350, 750, 1550: the next pause (1 s) reaches the lease of 2550 ms.
    const started = await storeDown(2550, 'end', items('a'))
    expect(await untilDone(started, 5)).toBe('failed')
    const { records } = started
    expect(records.ends.map((e) => e.at - records.ends[0]!.at)).toEqual([0, 50, 150, 350, 750, 1550])
    expect(started.errors).toHaveLength(6)
    expect(records.events()).toEqual(['a'])
    expect(started.forgotten).toEqual([{ status: undefined, stored: false }])
    expect(started.unpins()).toBe(1)
    expect(runTimers()).toBe(0)
  })

  it('finishes once when asked twice, with the response ended as first asked', async () => {
    const started = await start(untilAborted('a'))
    await flush()
    const first = started.run.finish('cancelled')
    const second = started.run.finish('failed')
    expect(second).toBe(first)
    await flush()
    expect(await first).toBe('cancelled')
    expect(started.outcome()).toBe('cancelled')
    expect(started.records.ends.map((e) => e.reason)).toEqual(['cancelled'])
    expect(started.records.events()).toEqual(['a', `${END}:cancelled`])
    // Asked again once over: the same answer, nothing sent.
    expect(await started.run.finish('done')).toBe('cancelled')
    started.run.halt()
    await flush()
    expect(started.records.ends).toHaveLength(1)
    expect(started.forgotten).toEqual([{ status: 'cancelled', stored: true }])
  })

  it('ends failed without a stored end when the record is gone', async () => {
    const started = await start(untilAborted('a'))
    await flush()
    started.records.inner.clear()
    expect(await started.run.finish('cancelled')).toBeUndefined()
    expect(started.outcome()).toBe('failed')
    expect(started.forgotten).toEqual([{ status: undefined, stored: false }])
  })

  it('answers the status of a response ended elsewhere when it finishes', async () => {
    const { gate, open } = latch()
    const started = await start(async function* () {
      yield 'a'
      await gate
    })
    await flush()
    started.records.endElsewhere('cancelled')
    open()
    expect(await untilDone(started)).toBe('cancelled')
    expect(started.records.ends.map((e) => e.reason)).toEqual(['done'])
    expect(started.forgotten).toEqual([{ status: 'cancelled', stored: true }])
  })
})

describe('a response producer that stops', () => {
  it('halts with the status the store holds; a record gone or still active holds no end', async () => {
    for (const [ended, status, stored, outcome] of [
      ['cancelled', 'cancelled', true, 'cancelled'],
      ['done', 'done', true, 'done'],
      ['gone', undefined, false, 'failed'],
      ['active', 'active', false, 'failed'],
    ] as const) {
      const started = await start(untilAborted('a'))
      await flush()
      if (ended === 'gone') started.records.inner.clear()
      else if (ended !== 'active') started.records.endElsewhere(ended)
      started.run.halt()
      await flush()
      expect(started.outcome()).toBe(outcome)
      expect(started.forgotten).toEqual([{ status, stored }])
      expect(started.records.ends).toEqual([])
      expect(started.unpins()).toBe(1)
      expect(await started.run.finish('failed')).toBe(status)
      expect(runTimers()).toBe(0)
    }
  })

  it('halts as failed, and reports it, when the store cannot be asked', async () => {
    const started = await start(untilAborted('a'))
    await flush()
    started.records.getFails = true
    started.run.halt()
    await flush()
    expect(started.outcome()).toBe('failed')
    expect(started.forgotten).toEqual([{ status: undefined, stored: false }])
    expect(started.errors.map((e) => (e as Error).message)).toEqual(['connection lost'])
  })

  it('renews its lease every third of it, halts once the lease is lost, and reports a failed renewal', async () => {
    const started = await start(untilAborted('a'), () => {}, { ...LIMITS, lease: 3001 })
    const { records } = started
    const t0 = Date.now()
    await advance(1001)
    expect(records.renewals.map((at) => at - t0)).toEqual([1001])
    records.renewal = new Error('renewal failed')
    await advance(1001)
    expect(records.renewals.map((at) => at - t0)).toEqual([1001, 2002])
    expect(started.errors.map((e) => (e as Error).message)).toEqual(['renewal failed'])
    expect(started.outcome()).toBeUndefined()
    records.renewal = false
    records.endElsewhere('failed')
    await advance(1001)
    expect(started.outcome()).toBe('failed')
    expect(started.forgotten).toEqual([{ status: 'failed', stored: true }])
    expect(records.ends).toEqual([])
    expect(runTimers()).toBe(0)
  })

  it('ends failed once its lifetime is over, and stops the producer', async () => {
    const seen: string[] = []
    const started = await start(
      async function* (signal) {
        try {
          yield 'a'
          await new Promise((resolve) => signal.addEventListener('abort', resolve))
          seen.push(`aborted ${signal.aborted}`)
        } finally {
          seen.push('finally')
        }
      },
      () => {},
      { ...LIMITS, maxLifetime: 5000 },
    )
    await advance(4990)
    expect(started.outcome()).toBeUndefined()
    await advance(10)
    expect(started.outcome()).toBe('failed')
    expect(started.records.events()).toEqual(['a', `${END}:failed`])
    expect(seen).toEqual(['aborted true', 'finally'])
    expect(runTimers()).toBe(0)
  })

  it('reports a pin that fails, runs anyway, and unpins once', async () => {
    const records = new SharedRecords()
    await records.create(ID, STREAM, LIMITS)
    const seen = newHost(() => Promise.reject(new Error('pin failed')))
    const forgotten: unknown[] = []
    const run = new ProducerRun(seen.host, records, ID, STREAM, LIMITS, (status, stored) =>
      forgotten.push({ status, stored }),
    )
    await run.start(items('a'))
    expect(seen.errors.map((e) => (e as Error).message)).toEqual(['pin failed'])
    await flush()
    expect(await run.done).toBe('done')
    expect(records.events()).toEqual(['a', `${END}:done`])
    expect(seen.unpins).toBe(1)
  })

  it('unpins nothing when it is finished before it started', async () => {
    const records = new SharedRecords()
    await records.create(ID, STREAM, LIMITS)
    const seen = newHost()
    const run = new ProducerRun(seen.host, records, ID, STREAM, LIMITS, () => {})
    expect(await run.finish('failed')).toBe('failed')
    expect(seen.unpins).toBe(0)
    expect(records.events()).toEqual([`${END}:failed`])
  })

  it('does not call return() on a producer that threw, and reports what it threw', async () => {
    const returned: unknown[] = []
    const iterator: AsyncIterator<string> = {
      next: () => Promise.reject(new Error('model failed')),
      return: () => {
        returned.push('return')
        return Promise.resolve({ done: true, value: undefined })
      },
    }
    const started = await start({ [Symbol.asyncIterator]: () => iterator })
    expect(await untilDone(started)).toBe('failed')
    expect(returned).toEqual([])
    expect(started.errors.map((e) => (e as Error).message)).toEqual(['model failed'])
    expect(started.records.events()).toEqual([`${END}:failed`])
  })

  it('reports a producer whose return() fails when it is stopped', async () => {
    const iterator: AsyncIterator<string> = {
      next: () => new Promise(() => {}),
      return: () => Promise.reject(new Error('return failed')),
    }
    const started = await start({ [Symbol.asyncIterator]: () => iterator })
    await flush()
    expect(await started.run.finish('cancelled')).toBe('cancelled')
    await flush()
    expect(started.errors.map((e) => (e as Error).message)).toEqual(['return failed'])
  })

  it('stops a producer without return() quietly', async () => {
    const started = await start({ [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => {}) }) })
    await flush()
    expect(await started.run.finish('cancelled')).toBe('cancelled')
    await flush()
    expect(started.errors).toEqual([])
  })

  it('fails the response, reporting it, when the producer function throws', async () => {
    const started = await start(() => {
      throw new Error('no model')
    })
    await flush()
    expect(started.outcome()).toBe('failed')
    expect(started.errors.map((e) => (e as Error).message)).toEqual(['no model'])
    expect(started.records.events()).toEqual([`${END}:failed`])
  })
})

describe('a response producer on a synchronous store', () => {
  function startSync(producer: ResponseProducer): Promise<Started & { sync: MemoryResponses }> {
    const sync = newMemoryResponses()
    const records = new SharedRecords()
    // The memory store's records themselves: appends and ends answer at once, with the stored event.
    Object.assign(records, {
      create: sync.create.bind(sync),
      append: sync.append.bind(sync),
      end: sync.end.bind(sync),
      get: sync.get.bind(sync),
      renew: undefined,
      events: () => {
        const history = sync.history(STREAM)!
        const oldest = history.read(null, 0).position.id
        return history
          .read(oldest, 1000)
          .events.map((e) => (e.event === undefined ? e.data : `${e.event}:${e.data}`))
      },
    })
    return start(producer, () => {}, LIMITS, records).then((started) => Object.assign(started, { sync }))
  }

  it('fans out each event and the end as they are stored, and keeps no lease', async () => {
    const started = await startSync(items('a', { data: 'b', event: 'token' }))
    expect(runTimers()).toBe(1)
    await flush()
    expect(started.outcome()).toBe('done')
    expect(started.fanned.map((e) => `${e.event}:${e.data}`)).toEqual([
      'undefined:a',
      'token:b',
      `${END}:done`,
    ])
    expect(started.records.events()).toEqual(['a', 'token:b', `${END}:done`])
    expect(started.forgotten).toEqual([{ status: 'done', stored: true }])
    expect(runTimers()).toBe(0)
  })

  it('stops pulling once an append finds the response ended, and fans out no end of its own', async () => {
    let pulled = 0
    const { gate, open } = latch()
    const started = await startSync(async function* () {
      yield `e${++pulled}`
      await gate
      for (;;) yield `e${++pulled}`
    })
    await flush()
    started.sync.end(ID, STREAM, { event: END, data: 'cancelled', value: 'cancelled' }, 'cancelled', LIMITS)
    open()
    await flush()
    expect(started.outcome()).toBe('cancelled')
    expect(pulled).toBe(2)
    expect(started.fanned.map((e) => e.data)).toEqual(['e1'])
    expect(started.forgotten).toEqual([{ status: 'cancelled', stored: true }])
  })

  it('gives up on an end the store refuses at once: it cannot be sent again', async () => {
    const started = await startSync(async function* () {
      yield 'a'
    })
    const sync = started.sync
    ;(started.records as unknown as { end: unknown }).end = () => {
      throw new Error('store full')
    }
    await flush()
    expect(started.outcome()).toBe('failed')
    expect(started.forgotten).toEqual([{ status: undefined, stored: false }])
    expect(started.errors.map((e) => (e as Error).message)).toEqual(['store full'])
    expect(sync.get(ID)?.status).toBe('active')
    expect(runTimers()).toBe(0)
  })
})

describe("a response producer's items", () => {
  it('refuses an item that is not a string or a { data } object, and an item named as the end', async () => {
    for (const [bad, field, message] of [
      [null, 'data', 'items of a response must be strings or { data, event? } objects'],
      [7, 'data', 'items of a response must be strings or { data, event? } objects'],
      [{ event: 'x' }, 'data', 'items of a response must be strings or { data, event? } objects'],
      [
        { data: 'x', event: END },
        'event',
        `the event name "${END}" is reserved for the end of a response; name the event otherwise`,
      ],
    ] as const) {
      const started = await start(items('a', bad, 'never'))
      expect(await untilDone(started)).toBe('failed')
      expect(started.records.events()).toEqual(['a', `${END}:failed`])
      expect(started.errors).toHaveLength(1)
      expect(started.errors[0]).toBeInstanceOf(RewindError)
      expect(started.errors[0]).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field, message })
    }
  })

  it('refuses a producer function that returns no async iterable', async () => {
    const started = await start(() => 'abc' as never)
    await flush()
    expect(started.outcome()).toBe('failed')
    expect(started.errors[0]).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'producer',
      message: 'the response producer must return an async iterable',
    })
  })
})
