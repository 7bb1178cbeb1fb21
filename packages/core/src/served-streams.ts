/**
 * The ownership rule of an adapter's shutdown, in one place for every adapter: a component closes
 * only what it created. A hub the adapter created is closed with it; a given hub is the caller's
 * (it may serve other apps), so closing the adapter ends only the streams it served through that hub.
 */
import { RewindError } from './errors.js'
import type { Hub } from './hub.js'
import type { Subscription } from './types.js'

/**
 * The streams an adapter served, and how the adapter closes (see "Ownership" in
 * docs/architecture.md).
 *
 * @example
 * ```ts
 * const served = new ServedStreams(hub, options.hub !== undefined)
 * served.add(hub.serve(req, res, 'news'))
 * await served.close() // on the app's shutdown
 * ```
 */
export class ServedStreams {
  /** Open streams served through a given hub; a created hub's own `close()` ends them all. */
  private readonly open: Set<Subscription> | undefined

  /** @param given whether the hub was given to the adapter (the caller closes it) or created by it. */
  constructor(
    private readonly hub: Hub<string | Promise<string>>,
    given: boolean,
  ) {
    this.open = given ? new Set() : undefined
  }

  /** Notes a stream the adapter served, until it ends; returns it. */
  add(subscription: Subscription): Subscription {
    const open = this.open
    if (open !== undefined && !subscription.closed) {
      open.add(subscription)
      void subscription.done.then(() => open.delete(subscription))
    }
    return subscription
  }

  /**
   * Closes a created hub (`Hub.close`, with the `retry` hint if given). With a given hub, ends the
   * streams the adapter served and leaves the hub open; `retry` then rejects with
   * `ERR_INVALID_ARGUMENT` (the hint goes out when a hub closes: give it to the hub's owner's
   * `close({ retry })`) before anything ends.
   */
  async close(retry?: number): Promise<void> {
    if (this.open === undefined) {
      // Stryker disable next-line ConditionalExpression: hub.close({ retry: undefined }) is hub.close({}), so only a given hint tells them apart (the test with a hint sees it)
      return this.hub.close(retry === undefined ? {} : { retry })
    }
    if (retry !== undefined) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        'a given hub is closed by its owner, and the retry hint with it: call hub.close({ retry }) instead',
        { field: 'retry' },
      )
    }
    const ending = [...this.open]
    for (const subscription of ending) subscription.close()
    await Promise.all(ending.map((subscription) => subscription.done))
  }
}
