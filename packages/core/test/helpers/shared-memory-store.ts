import { MemoryStore } from '../../src/memory-store.js'
import type {
  AsyncHistoryStore,
  NewEvent,
  ReadResult,
  ResponseEnd,
  ResponseLimits,
  ResponseRecords,
  ResponseState,
  StoreDelivery,
  StoredEvent,
} from '../../src/store.js'

/**
 * One in-memory store shared by several hubs, the way a shared store (Redis) is: each hub takes its
 * own {@link SharedView}, every call answers asynchronously, and an event appended through any view
 * (a publish, a response's item, its terminal event) is delivered, a turn later, to every view that
 * watches its stream, and to no other. Responses' records have no lease.
 */
export class SharedMemory {
  readonly inner = new MemoryStore()
  private readonly views = new Set<SharedView>()

  /** A store for one more hub. */
  view(): SharedView {
    const view = new SharedView(this)
    this.views.add(view)
    return view
  }

  /** Delivers `event` to the views that watch `stream` by then, as a tail does. */
  deliver(stream: string, event: StoredEvent): void {
    setImmediate(() => {
      for (const view of this.views) view.receive(stream, event)
    })
  }
}

/** One hub's store over a {@link SharedMemory}. */
export class SharedView implements AsyncHistoryStore {
  readonly synchronous = false as const
  readonly responses: ResponseRecords
  /** Streams this view's hub watches. */
  readonly watched = new Set<string>()
  private delivery: StoreDelivery | undefined

  constructor(private readonly shared: SharedMemory) {
    const records = shared.inner.responses
    this.responses = {
      create: (id: string, stream: string, limits: ResponseLimits) =>
        Promise.resolve(records.create(id, stream, limits)),
      append: (id: string, stream: string, event: NewEvent, limits: ResponseLimits, seq: number) => {
        const stored = records.append(id, stream, event, limits, seq)
        if (stored !== undefined) shared.deliver(stream, stored)
        return Promise.resolve(stored?.id)
      },
      // The tail delivers the terminal event: the end answers the state only.
      end: (id: string, stream: string, event: NewEvent, reason: ResponseEnd, limits: ResponseLimits) => {
        const ended = records.end(id, stream, event, reason, limits)
        if (ended?.event !== undefined) shared.deliver(stream, ended.event)
        return Promise.resolve(ended === undefined ? undefined : { state: ended.state })
      },
      get: (id: string): Promise<ResponseState | undefined> => Promise.resolve(records.get(id)),
    }
  }

  attach(delivery: StoreDelivery): void {
    this.delivery = delivery
  }

  detach(delivery: StoreDelivery): void {
    if (this.delivery === delivery) this.delivery = undefined
  }

  append(stream: string, event: NewEvent): Promise<string> {
    const stored = this.shared.inner.append(stream, event)
    this.shared.deliver(stream, stored)
    return Promise.resolve(stored.id)
  }

  read(stream: string, after: string | null | undefined, limit: number): Promise<ReadResult> {
    return Promise.resolve(this.shared.inner.read(stream, after, limit))
  }

  watch(stream: string): Promise<void> {
    this.watched.add(stream)
    this.shared.inner.watch(stream)
    return Promise.resolve()
  }

  unwatch(stream: string): void {
    this.watched.delete(stream)
  }

  receive(stream: string, event: StoredEvent): void {
    if (this.watched.has(stream)) this.delivery?.deliver(stream, [event])
  }
}
