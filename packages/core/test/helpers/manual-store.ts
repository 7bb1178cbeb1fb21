import { MemoryStore, type MemoryStoreOptions } from '../../src/memory-store.js'
import type { AsyncHistoryStore, NewEvent, ReadResult, StoreDelivery, StoredEvent } from '../../src/store.js'

interface PendingRead {
  stream: string
  after: string | null | undefined
  limit: number
  /** The history as it was when the read was made. */
  asOfCall: ReadResult
  resolve: (result: ReadResult) => void
}

/**
 * An {@link AsyncHistoryStore} the test drives by hand: appends happen at once but are delivered
 * only when the test calls {@link ManualStore.deliver}; reads wait until {@link ManualStore.answer}
 * (which reads the history as it is then). It pins down interleavings a random delay only finds sometimes.
 */
export class ManualStore implements AsyncHistoryStore {
  readonly synchronous = false as const
  readonly inner: MemoryStore
  readonly reads: PendingRead[] = []
  private delivery: StoreDelivery | undefined
  private readonly undelivered = new Map<string, StoredEvent[]>()

  constructor(options: MemoryStoreOptions = {}) {
    this.inner = new MemoryStore(options)
  }

  attach(delivery: StoreDelivery): void {
    this.delivery = delivery
  }

  append(stream: string, event: NewEvent): Promise<string> {
    const stored = this.inner.append(stream, event)
    const queue = this.undelivered.get(stream) ?? []
    this.undelivered.set(stream, queue)
    queue.push(stored)
    return Promise.resolve(stored.id)
  }

  read(stream: string, after: string | null | undefined, limit: number): Promise<ReadResult> {
    const asOfCall = this.inner.read(stream, after, limit)
    return new Promise((resolve) => this.reads.push({ stream, after, limit, asOfCall, resolve }))
  }

  watch(stream: string): Promise<void> {
    this.inner.watch(stream)
    return Promise.resolve()
  }

  unwatch(stream: string): void {
    this.inner.unwatch(stream)
  }

  /** Delivers every appended event of `stream` not delivered yet, in order. */
  deliver(stream: string): void {
    const queue = this.undelivered.get(stream) ?? []
    this.undelivered.set(stream, [])
    if (queue.length > 0) this.delivery?.deliver(stream, queue)
  }

  /**
   * Answers the oldest pending read with the history as it is now, or as it was when the read was
   * made (a server that ran the read at once but answered late).
   */
  answer(as: 'now' | 'call' = 'now'): void {
    const read = this.reads.shift()
    if (read === undefined) throw new Error('no read is pending')
    read.resolve(as === 'call' ? read.asOfCall : this.inner.read(read.stream, read.after, read.limit))
  }

  /** Tells the hub that live delivery of `stream` lost events. */
  reset(stream: string): void {
    this.undelivered.set(stream, [])
    this.delivery?.reset(stream)
  }
}

/** Lets pending promise callbacks run. */
export async function microtasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}
