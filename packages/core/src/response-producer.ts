/**
 * The producer of a response, running on the instance that started it: it pulls items, appends them
 * to the response's stream (a bounded number in flight on a shared store), keeps the lease, and
 * appends the terminal event however it ends.
 */
import { RewindError } from './errors.js'
import { isAsyncIterable, type StreamItem } from './iterable.js'
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
/** First wait before sending again to a store that failed; it doubles up to {@link RETRY_MAX}. */
const RETRY_MIN = 50
/** Longest wait between two attempts on a failing store. */
const RETRY_MAX = 1000

/**
 * What an append came to: stored (now, or by an earlier attempt whose reply was lost), refused
 * because the response has ended, `failed` in transit (the store may or may not have run it), or
 * `refused` because an earlier append is missing from the store.
 */
type AppendOutcome = 'stored' | 'ended' | 'failed' | 'refused'

/** An append sent to a shared store and kept until it is known to be stored (it may be sent again). */
interface PendingAppend {
  readonly seq: number
  readonly event: NewEvent
  readonly outcome: Promise<AppendOutcome>
}

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

/**
 * One producer running on this instance, from its first item to its terminal event.
 *
 * On a shared store the appends travel in a window (see {@link ProducerRun.inFlight}), each numbered,
 * and the store refuses one whose predecessor is missing, so a stored answer never has a hole. When
 * an append fails, the producer pulls nothing more: it waits for the window, then sends the appends
 * that are not known to be stored again, in order, with a growing pause, for at most the lease. A
 * short outage therefore costs the answer nothing; a longer one, or a store that lost what it had
 * acknowledged, ends it `failed`.
 */
export class ProducerRun {
  readonly done: Promise<ResponseEnd>
  private resolveDone!: (end: ResponseEnd) => void
  private readonly controller = new AbortController()
  private iterator: AsyncIterator<StreamItem> | undefined
  private stopped = false
  /** Wakes the loop when it waits for the producer's next item, or a retry pause, and the run stops meanwhile. */
  private wake: (() => void) | undefined
  private finishing: Promise<ResponseStatus | undefined> | undefined
  private readonly lifetime: NodeJS.Timeout
  private leaseTimer: NodeJS.Timeout | undefined
  private pinned = false
  /** Number of the last event sent to the store (see `ResponseRecords.append`). */
  private seq = 0
  /** Appends sent to a shared store and not yet known to be stored, oldest first. */
  private window: PendingAppend[] = []
  /** An append in the window failed: the producer pulls nothing more until the window is recovered. */
  private troubled = false

  constructor(
    private readonly host: ResponseHost,
    private readonly records: ResponseRecords,
    private readonly id: string,
    private readonly stream: string,
    private readonly limits: ResponseLimits,
    /** Called once the run is over; `stored` is false when the store holds no end of the response. */
    private readonly forget: (status: ResponseStatus | undefined, stored: boolean) => void,
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
          // Stryker disable next-line ArrowFunction: only stop() calls it, and the loop checks `stopped` whatever its producer answers later: waking it only frees it sooner
          this.wake = () => resolve(undefined)
          iterator.next().then(resolve, reject)
        })
      } catch (error) {
        // A producer that threw has finished; its return() must not be called as well.
        this.iterator = undefined
        // Stryker disable next-line ConditionalExpression: stop() settles the awaited promise (wake) before anything else, so a rejection only gets here while the run goes on
        if (!this.stopped) this.host.reportError(error, this.stream)
        await this.finish('failed')
        return
      }
      this.wake = undefined
      if (
        this.stopped ||
        // Stryker disable next-line ConditionalExpression: `next` is undefined only when stop() woke the loop, so `stopped` is true then too
        next === undefined
      )
        return
      if (next.done === true) {
        this.iterator = undefined
        // The end goes after every event: only once all of them are known to be stored.
        if (await this.settleWindow(0)) await this.finish('done')
        return
      }
      try {
        const event = this.toEvent(next.value)
        const seq = ++this.seq
        const appended = this.records.append(this.id, this.stream, event, this.limits, seq)
        if (appended instanceof Promise) {
          if (!(await this.inFlight(seq, event, appended))) return
        } else if (appended === undefined) this.halt()
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
   * Waits for the oldest when the window is full. Returns false when the run has stopped (the
   * response ended elsewhere, or the store failed for good and the response is ending `failed`).
   */
  private inFlight(seq: number, event: NewEvent, append: Promise<string | undefined>): Promise<boolean> {
    const outcome = outcomeOf(append)
    void outcome.then((settled) => {
      if (settled === 'failed' || settled === 'refused') this.troubled = true
    })
    this.window.push({ seq, event, outcome })
    return this.settleWindow(APPENDS_IN_FLIGHT - 1)
  }

  /**
   * Waits until at most `room` appends are under way, each of the others known to be stored. An
   * append that failed starts the recovery: see {@link ProducerRun.resend}. Returns false when the
   * run has stopped.
   */
  private async settleWindow(room: number): Promise<boolean> {
    // Once an append has failed, later ones would only be refused: settle all before pulling more.
    while (this.window.length > (this.troubled ? 0 : room)) {
      const oldest = this.window[0]!
      const outcome = await oldest.outcome
      // Stryker disable next-line ConditionalExpression,BooleanLiteral: a stopped run has emptied its window, so the loop ends at once anyway, and every caller checks `stopped`
      if (this.stopped) return false
      if (outcome === 'stored') {
        this.window.shift()
        continue
      }
      if (outcome === 'ended') {
        this.halt()
        // Stryker disable next-line BooleanLiteral: the run has stopped, which every caller checks
        return false
      }
      // Stryker disable next-line BooleanLiteral: resend() is false only once the run has stopped (and emptied its window), which every caller checks
      if (!(await this.resend())) return false
    }
    return true
  }

  /**
   * Recovers from a failed append: waits for every append under way (those after the failed one are
   * refused by the store, or failed too), then sends the ones not known to be stored again, in order,
   * pausing between attempts, until all are stored or the lease has passed. Returns false when the
   * run has stopped; if the store could not take them, or refused one whose predecessor it had
   * acknowledged (it lost data), the response ends `failed`.
   */
  private async resend(): Promise<boolean> {
    const pending = this.window
    const outcomes = await Promise.all(pending.map((entry) => entry.outcome))
    const deadline = Date.now() + this.limits.lease
    let pause = RETRY_MIN
    for (let i = 0; i < pending.length; i++) {
      let outcome = outcomes[i]!
      const { seq, event } = pending[i]!
      // The first one's predecessor was acknowledged as stored: if it was refused, the store lost it.
      let lost = i === 0 && outcome === 'refused'
      let attempts = 0
      while (!lost && (outcome === 'failed' || outcome === 'refused')) {
        // Stryker disable next-line BooleanLiteral: the run has stopped, which every caller checks
        if (this.stopped) return false
        // Sent again at once (the store may be back); then with a pause that grows while it fails.
        if (attempts++ > 0) {
          if (Date.now() >= deadline) break
          await this.pause(pause)
          pause = Math.min(pause * 2, RETRY_MAX)
          // Stryker disable next-line BooleanLiteral: the run has stopped, which every caller checks
          if (this.stopped) return false
        }
        outcome = await outcomeOf(this.sendAgain(seq, event))
        // Every earlier append is stored now: a refusal means the store lost one of them.
        lost = outcome === 'refused'
      }
      if (outcome === 'ended') {
        this.halt()
        // Stryker disable next-line BooleanLiteral: the run has stopped, which every caller checks
        return false
      }
      if (outcome !== 'stored') {
        this.host.reportError(
          new RewindError(
            'ERR_STORE_UNAVAILABLE',
            outcome === 'refused'
              ? `the store lost events of the response in ${JSON.stringify(this.stream)}; it ends failed`
              : `the store could not take the events of the response in ${JSON.stringify(this.stream)} within its lease (${this.limits.lease} ms); it ends failed`,
          ),
          this.stream,
        )
        // Stryker disable next-line ArrayDeclaration: finish() takes the window and empties it again, and every entry in it has settled
        this.window = []
        await this.finish('failed')
        // Stryker disable next-line BooleanLiteral: the run has stopped, which every caller checks
        return false
      }
      // Stored: the next append that fails starts again from the shortest pause.
      pause = RETRY_MIN
    }
    this.window = []
    this.troubled = false
    return true
  }

  private sendAgain(seq: number, event: NewEvent): Promise<string | undefined> {
    try {
      // Only shared stores get here: their appends resolve with the id.
      return this.records.append(this.id, this.stream, event, this.limits, seq) as Promise<string | undefined>
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Waits `ms`, or less if the run stops meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.wake = done
    })
  }

  /**
   * Ends the response with `reason` unless it has ended already (here or elsewhere), stops the
   * producer, and resolves with the response's final status. On a shared store that fails, the end
   * is sent again for up to the lease; if it still is not stored, the run is over without a stored
   * end (the hub then ends this instance's clients `failed`, and the lease ends it elsewhere).
   */
  finish(reason: ResponseEnd): Promise<ResponseStatus | undefined> {
    if (this.finishing !== undefined) return this.finishing
    this.stop()
    this.finishing = (async () => {
      // Appends under way were sent before the end and run in order; failures among them are moot now.
      const window = this.window
      // Stryker disable next-line ArrayDeclaration: a stopped run reads its window no more (settleWindow and resend return once they see `stopped`)
      this.window = []
      await Promise.all(window.map((entry) => entry.outcome))
      const ended = await this.storeEnd(reason)
      if (ended === undefined) {
        this.settle(undefined, false)
        return undefined
      }
      const status = ended.result?.state.status
      const result = ended.result
      if (
        result !== undefined &&
        'event' in result &&
        // Stryker disable next-line ConditionalExpression: a store's end answers an event only where it has one ('event' in result narrows the type)
        result.event !== undefined
      ) {
        this.host.fanOut(this.stream, result.event)
      }
      this.settle(status, status !== undefined && status !== 'active')
      return status
    })()
    return this.finishing
  }

  /**
   * Appends the terminal event, sending it again while a shared store fails, for up to the lease.
   * Resolves with the store's answer, or `undefined` if the store could not be reached.
   */
  private async storeEnd(
    reason: ResponseEnd,
  ): Promise<{ result: Awaited<ReturnType<ResponseRecords['end']>> } | undefined> {
    const deadline = Date.now() + this.limits.lease
    let pause = RETRY_MIN
    for (;;) {
      try {
        const result = await this.records.end(
          this.id,
          this.stream,
          endInput(this.host, this.stream, reason),
          reason,
          this.limits,
        )
        return { result }
      } catch (error) {
        this.host.reportError(error, this.stream)
        if (this.records.renew === undefined || Date.now() + pause >= deadline) return undefined
      }
      // Bounded by the lease; unref'd so a closed hub's last attempts never hold the process open.
      await new Promise((resolve) => setTimeout(resolve, pause).unref())
      pause = Math.min(pause * 2, RETRY_MAX)
    }
  }

  /** The response ended elsewhere (cancelled through the store, or its lease was lost): stop here. */
  halt(): void {
    if (this.finishing !== undefined) return
    this.stop()
    // Stryker disable next-line ArrayDeclaration: a stopped run reads its window no more (settleWindow and resend return once they see `stopped`)
    this.window = []
    this.finishing = Promise.resolve(this.records.get(this.id)).then(
      (state) => {
        // A record that is gone (the store lost it) holds no end either.
        this.settle(state?.status, state !== undefined && state.status !== 'active')
        return state?.status
      },
      (error: unknown) => {
        this.host.reportError(error, this.stream)
        this.settle(undefined, false)
        return undefined
      },
    )
  }

  private stop(): void {
    // Stryker disable next-line ConditionalExpression: only finish() and halt() stop the run, once (`finishing`); stopping twice would do nothing more anyway
    if (this.stopped) return
    this.stopped = true
    clearTimeout(this.lifetime)
    clearInterval(this.leaseTimer)
    this.controller.abort()
    this.wake?.()
    const iterator = this.iterator
    this.iterator = undefined
    // Let the producer stop (a generator runs its finally blocks); it may be awaiting, so don't wait.
    const stopProducer = iterator?.return
    if (stopProducer !== undefined) {
      Promise.resolve()
        .then(() => stopProducer.call(iterator))
        .catch((error: unknown) => this.host.reportError(error, this.stream))
    }
  }

  private settle(status: ResponseStatus | undefined, stored: boolean): void {
    this.forget(status, stored)
    if (this.pinned) {
      // Stryker disable next-line BooleanLiteral: settle() runs once (`finishing`): nothing reads `pinned` afterwards
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

/** What an append's promise came to; never rejects. */
function outcomeOf(append: Promise<string | undefined>): Promise<AppendOutcome> {
  return append.then(
    (id): AppendOutcome => (id === undefined ? 'ended' : 'stored'),
    (error: unknown): AppendOutcome =>
      error instanceof RewindError && error.code === 'ERR_HISTORY_LOST' ? 'refused' : 'failed',
  )
}

export function endInput(host: ResponseHost, stream: string, reason: ResponseEnd): NewEvent {
  return host.prepare(stream, { data: reason, event: host.endEvent })
}
