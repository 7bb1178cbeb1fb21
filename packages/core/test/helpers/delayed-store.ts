import { seededRandom } from '../../../../test/support/random.js'
import { MemoryStore, type MemoryStoreOptions } from '../../src/memory-store.js'
import type { AsyncHistoryStore, NewEvent, ReadResult, StoreDelivery, StoredEvent } from '../../src/store.js'

/**
 * An {@link AsyncHistoryStore} over a {@link MemoryStore} that answers every call after a random
 * delay (a microtask, a macrotask, or a 0-3 ms timer) and delivers each appended event after its own
 * random delay, in stream order. It models a shared store such as Redis: a read may see events the
 * process's live tail has not delivered yet (ahead) or miss ones appended while it is answered (behind).
 */
export class DelayedStore implements AsyncHistoryStore {
  readonly synchronous = false as const
  readonly inner: MemoryStore
  /** Every event appended, per stream, in stream order (the test's source of truth). */
  readonly log = new Map<string, StoredEvent[]>()
  private delivery: StoreDelivery | undefined
  private readonly watched = new Set<string>()
  private readonly generation = new Map<string, number>()
  private readonly deliveries = new Map<string, Promise<void>>()
  private pending = 0
  private appends: Promise<void> = Promise.resolve()
  private readonly random: () => number

  private readonly slowReads: boolean

  /**
   * `slowReads`: every read takes a 2-5 ms timer while appends and deliveries stay fast, so that many
   * live events arrive while a read is in flight.
   */
  constructor(options: MemoryStoreOptions & { seed: number; slowReads?: boolean }) {
    const { seed, slowReads, ...history } = options
    this.inner = new MemoryStore(history)
    this.random = seededRandom(seed)
    this.slowReads = slowReads ?? false
  }

  /** Operations and deliveries not finished yet. */
  get busy(): number {
    return this.pending
  }

  attach(delivery: StoreDelivery): void {
    this.delivery = delivery
  }

  append(stream: string, event: NewEvent): Promise<string> {
    // Like commands on one Redis connection: applied in the order they were sent, each after a
    // random delay, and answered after another one.
    this.pending++
    const applied = this.appends
      .then(() => this.delay())
      .then(() => {
        this.pending--
        const stored = this.inner.append(stream, event)
        const log = this.log.get(stream) ?? []
        this.log.set(stream, log)
        log.push(stored)
        if (this.watched.has(stream)) this.deliver(stream, stored)
        return stored.id
      })
    this.appends = applied.then(
      () => undefined,
      () => undefined,
    )
    return applied.then((id) => this.later(() => id))
  }

  read(stream: string, after: string | null | undefined, limit: number): Promise<ReadResult> {
    const delay = this.slowReads ? 2 + Math.floor(this.random() * 4) : undefined
    // The read runs on the "server" either when asked or just before it answers: both are valid.
    if (this.random() < 0.5) {
      const result = this.inner.read(stream, after, limit)
      return this.later(() => result, delay)
    }
    return this.later(() => this.inner.read(stream, after, limit), delay)
  }

  watch(stream: string): Promise<void> {
    this.inner.watch(stream)
    const generation = (this.generation.get(stream) ?? 0) + 1
    this.generation.set(stream, generation)
    // Delivery starts when the promise resolves, not when watch() is called: events appended in
    // between reach subscribers through their first read only.
    return this.later(() => {
      if (this.generation.get(stream) === generation) this.watched.add(stream)
    })
  }

  unwatch(stream: string): void {
    this.generation.set(stream, (this.generation.get(stream) ?? 0) + 1)
    this.watched.delete(stream)
    this.inner.unwatch(stream)
  }

  private deliver(stream: string, event: StoredEvent): void {
    this.pending++
    const previous = this.deliveries.get(stream) ?? Promise.resolve()
    const next = previous
      .then(() => this.delay())
      .then(() => {
        this.pending--
        this.delivery?.deliver(stream, [event])
      })
    this.deliveries.set(stream, next)
  }

  private later<T>(fn: () => T, ms?: number): Promise<T> {
    this.pending++
    const delay = ms === undefined ? this.delay() : new Promise<void>((resolve) => setTimeout(resolve, ms))
    return delay.then(() => {
      this.pending--
      return fn()
    })
  }

  private delay(): Promise<void> {
    const roll = this.random()
    if (roll < 0.3) return Promise.resolve()
    if (roll < 0.5) return new Promise((resolve) => setImmediate(resolve))
    const ms = Math.floor(this.random() * 4)
    return new Promise((resolve) => setTimeout(resolve, ms))
  }
}
