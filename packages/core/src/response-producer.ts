/**
 * The producer of a response, running on the instance that started it: it pulls items, appends them
 * to the response's stream (a bounded number in flight on a shared store), keeps the lease, and
 * appends the terminal event however it ends.
 */
import { RewindError } from './errors.js'
import type { StreamItem } from './iterable.js'
import type {
  HistoryStore,
  NewEvent,
  ResponseEnd,
  ResponseLimits,
  ResponseRecords,
  ResponseStatus,
  StoredEvent,
} from './store.js'

/** Appends of one producer under way at once on a shared store (see `ProducerRun.inFlight`). */
const APPENDS_IN_FLIGHT = 64

/**
 * What produces a response's events: an async iterable, or a function given an `AbortSignal` (aborted
 * when the response is cancelled, times out or the hub closes) that returns one. Each item is a
 * string (the data of a `message` event) or `{ data, event? }`; ids come from the history.
 */
export type ResponseProducer =
  | AsyncIterable<StreamItem>
  | ((signal: AbortSignal) => AsyncIterable<StreamItem>)

/** What the hub gives the responses: its store, its encoding, and its fan-out. */
export interface ResponseHost {
  readonly store: HistoryStore
  /** Name of the terminal event. */
  readonly endEvent: string
  /** Validates and serializes an event (the hub's serializer and size limit). */
  prepare(stream: string, input: { data: unknown; event?: string | undefined }): NewEvent
  /** Sends an event appended to a synchronous store to the stream's subscribers. */
  fanOut(stream: string, event: StoredEvent): void
  /** Keeps a stream followed (shared stores) while its producer runs here, so a remote cancel reaches it. */
  pin(stream: string): Promise<void> | undefined
  unpin(stream: string): void
  reportError(error: unknown, stream: string): void
}

/** One producer running on this instance, from its first item to its terminal event. */
export class ProducerRun {
  readonly done: Promise<ResponseEnd>
  private resolveDone!: (end: ResponseEnd) => void
  private readonly controller = new AbortController()
  private iterator: AsyncIterator<StreamItem> | undefined
  private stopped = false
  /** Wakes the loop when it waits for the producer's next item and the run stops meanwhile. */
  private wake: (() => void) | undefined
  private finishing: Promise<ResponseStatus | undefined> | undefined
  private readonly lifetime: NodeJS.Timeout
  private leaseTimer: NodeJS.Timeout | undefined
  private pinned = false
  /** Appends sent to a shared store and not yet answered, oldest first. */
  private readonly appends: Promise<void>[] = []

  constructor(
    private readonly host: ResponseHost,
    private readonly records: ResponseRecords,
    private readonly id: string,
    private readonly stream: string,
    private readonly limits: ResponseLimits,
    private readonly forget: () => void,
  ) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve
    })
    this.lifetime = setTimeout(() => void this.finish('failed'), limits.maxLifetime)
    this.lifetime.unref()
  }

  async start(producer: ResponseProducer): Promise<void> {
    const pinning = this.host.pin(this.stream)
    this.pinned = true
    if (pinning !== undefined)
      await pinning.catch((error: unknown) => this.host.reportError(error, this.stream))
    const renew = this.records.renew
    if (renew !== undefined) {
      this.leaseTimer = setInterval(
        () => {
          renew.call(this.records, this.id, this.limits.lease).then(
            (active) => {
              if (!active) this.halt()
            },
            (error: unknown) => this.host.reportError(error, this.stream),
          )
        },
        Math.ceil(this.limits.lease / 3),
      )
      this.leaseTimer.unref()
    }
    try {
      const iterable = typeof producer === 'function' ? producer(this.controller.signal) : producer
      if (!isAsyncIterable(iterable)) {
        throw new RewindError('ERR_INVALID_ARGUMENT', 'the response producer must return an async iterable', {
          field: 'producer',
        })
      }
      this.iterator = iterable[Symbol.asyncIterator]()
    } catch (error) {
      this.host.reportError(error, this.stream)
      await this.finish('failed')
      return
    }
    void this.loop()
  }

  private async loop(): Promise<void> {
    const iterator = this.iterator!
    for (;;) {
      let next: IteratorResult<StreamItem> | undefined
      try {
        next = await new Promise<IteratorResult<StreamItem> | undefined>((resolve, reject) => {
          this.wake = () => resolve(undefined)
          iterator.next().then(resolve, reject)
        })
      } catch (error) {
        // A producer that threw has finished; its return() must not be called as well.
        this.iterator = undefined
        if (!this.stopped) this.host.reportError(error, this.stream)
        await this.finish('failed')
        return
      }
      this.wake = undefined
      if (this.stopped || next === undefined) return
      if (next.done === true) {
        this.iterator = undefined
        try {
          await this.drainAppends()
        } catch (error) {
          this.host.reportError(error, this.stream)
          await this.finish('failed')
          return
        }
        await this.finish('done')
        return
      }
      try {
        const appended = this.records.append(this.id, this.stream, this.toEvent(next.value), this.limits)
        if (appended instanceof Promise) await this.inFlight(appended)
        else if (appended === undefined) this.halt()
        else this.host.fanOut(this.stream, appended)
      } catch (error) {
        if (!this.stopped) this.host.reportError(error, this.stream)
        await this.finish('failed')
        return
      }
      if (this.stopped) return
    }
  }

  /**
   * Keeps up to {@link APPENDS_IN_FLIGHT} appends of a shared store under way: they travel on one
   * connection, which runs them in order, so a fast producer is not held to one round trip per item.
   * Waits for the oldest when the window is full; a failed append rejects (the response then fails).
   */
  private async inFlight(append: Promise<string | undefined>): Promise<void> {
    const settled = append.then((id) => {
      if (id === undefined) this.halt()
    })
    // Rejections are handled where the window is drained; this keeps early ones from being unhandled.
    settled.catch(() => {})
    this.appends.push(settled)
    if (this.appends.length >= APPENDS_IN_FLIGHT) await this.appends.shift()
  }

  /** Waits for every append under way (before the terminal event, which must come after them). */
  private async drainAppends(): Promise<void> {
    const appends = this.appends.splice(0)
    await Promise.all(appends)
  }

  /**
   * Ends the response with `reason` unless it has ended already (here or elsewhere), stops the
   * producer, and resolves with the response's final status.
   */
  finish(reason: ResponseEnd): Promise<ResponseStatus | undefined> {
    if (this.finishing !== undefined) return this.finishing
    this.stop()
    this.finishing = (async () => {
      let status: ResponseStatus | undefined = reason
      // Appends under way were sent before the end and run in order; failures among them are moot now.
      await Promise.allSettled(this.appends.splice(0))
      try {
        const ended = await this.records.end(
          this.id,
          this.stream,
          endInput(this.host, this.stream, reason),
          reason,
          this.limits,
        )
        status = ended?.state.status
        if (ended !== undefined && 'event' in ended && ended.event !== undefined) {
          this.host.fanOut(this.stream, ended.event)
        }
      } catch (error) {
        // The store is down: the lease will lapse and another instance ends the response.
        this.host.reportError(error, this.stream)
      }
      this.settle(status)
      return status
    })()
    return this.finishing
  }

  /** The response ended elsewhere (cancelled through the store, or its lease was lost): stop here. */
  halt(): void {
    if (this.finishing !== undefined) return
    this.stop()
    this.finishing = Promise.resolve(this.records.get(this.id)).then(
      (state) => {
        this.settle(state?.status)
        return state?.status
      },
      (error: unknown) => {
        this.host.reportError(error, this.stream)
        this.settle(undefined)
        return undefined
      },
    )
  }

  private stop(): void {
    if (this.stopped) return
    this.stopped = true
    clearTimeout(this.lifetime)
    clearInterval(this.leaseTimer)
    this.controller.abort()
    this.wake?.()
    const iterator = this.iterator
    this.iterator = undefined
    // Let the producer stop (a generator runs its finally blocks); it may be awaiting, so don't wait.
    if (iterator?.return !== undefined) {
      Promise.resolve()
        .then(() => iterator.return?.())
        .catch((error: unknown) => this.host.reportError(error, this.stream))
    }
  }

  private settle(status: ResponseStatus | undefined): void {
    this.forget()
    if (this.pinned) {
      this.pinned = false
      this.host.unpin(this.stream)
    }
    this.resolveDone(status === undefined || status === 'active' ? 'failed' : status)
  }

  private toEvent(item: StreamItem): NewEvent {
    if (typeof item === 'string') return this.host.prepare(this.stream, { data: item })
    if (item === null || typeof item !== 'object' || !('data' in item)) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        'items of a response must be strings or { data, event? } objects',
        { field: 'data' },
      )
    }
    if (item.event === this.host.endEvent) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        `the event name ${JSON.stringify(item.event)} is reserved for the end of a response; name the event otherwise`,
        { field: 'event' },
      )
    }
    return this.host.prepare(this.stream, { data: item.data, event: item.event })
  }
}

export function endInput(host: ResponseHost, stream: string, reason: ResponseEnd): NewEvent {
  return host.prepare(stream, { data: reason, event: host.endEvent })
}

export function isAsyncIterable(value: unknown): value is AsyncIterable<StreamItem> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function'
  )
}
