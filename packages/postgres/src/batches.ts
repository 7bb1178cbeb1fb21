/**
 * Appends grouped per stream: while one transaction appends to a stream, the appends that arrive for
 * it wait, and go together in the next transaction (up to `maxBatch` events). A lone append is sent
 * at once; a token stream costs one commit per batch instead of one per token. One transaction per
 * stream at a time also keeps this process's appends to a stream in the order they were made.
 */

/** One append waiting for its transaction. */
export interface Pending<I, R> {
  readonly item: I
  readonly resolve: (result: R) => void
  readonly reject: (error: unknown) => void
}

/** Most appends that may wait for one stream, in batches of `maxBatch`: past it, appends are refused. */
export const WAITING_BATCHES = 16

/** Sends one batch of a stream and returns one result per item, in order. */
export type SendBatch<I, R> = (stream: string, items: readonly I[]) => Promise<readonly R[]>

interface Queue<I, R> {
  readonly waiting: Pending<I, R>[]
  busy: boolean
}

/** The batches of one kind of append (feeds, or responses). */
export class Batches<I, R> {
  private readonly queues = new Map<string, Queue<I, R>>()

  constructor(
    private readonly maxBatch: number,
    private readonly send: SendBatch<I, R>,
    /**
     * How many of the waiting items (at least 1) may go in one batch with the first: items that do not
     * fit together (for example appends that are not consecutive) go in the next one.
     */
    private readonly fits: (items: readonly I[]) => number,
    /** The error of an append refused because `WAITING_BATCHES × maxBatch` wait already. */
    private readonly overflow: (stream: string, waiting: number) => Error,
  ) {}

  /**
   * Appends `item` to `stream` in the next transaction of that stream. While Postgres is slower than
   * the appends, at most `WAITING_BATCHES × maxBatch` wait per stream; more are refused at once (the
   * publisher answers 503), so a stalled database never grows this process's memory.
   */
  add(stream: string, item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let queue = this.queues.get(stream)
      if (queue === undefined) {
        queue = { waiting: [], busy: false }
        this.queues.set(stream, queue)
      }
      if (queue.waiting.length >= WAITING_BATCHES * this.maxBatch) {
        reject(this.overflow(stream, queue.waiting.length))
        return
      }
      queue.waiting.push({ item, resolve, reject })
      if (!queue.busy) void this.run(stream, queue)
    })
  }

  private async run(stream: string, queue: Queue<I, R>): Promise<void> {
    queue.busy = true
    while (queue.waiting.length > 0) {
      const candidates = queue.waiting.slice(0, this.maxBatch)
      const count = Math.max(1, Math.min(candidates.length, this.fits(candidates.map((p) => p.item))))
      const batch = queue.waiting.splice(0, count)
      try {
        const results = await this.send(
          stream,
          batch.map((pending) => pending.item),
        )
        for (const [i, pending] of batch.entries()) pending.resolve(results[i]!)
      } catch (error) {
        for (const pending of batch) pending.reject(error)
      }
    }
    queue.busy = false
    this.queues.delete(stream)
  }
}
