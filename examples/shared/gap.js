/**
 * The "force a gap" control of the live demos, with no environment variable: `POST /gap?client=<id>`
 * cuts that page's connections, then publishes more events than the server's history keeps while
 * the page is away. When the page reconnects with its `Last-Event-ID`, that id has left the bounded
 * history: the server says so in-band (a `rewind-gap` event, reason `evicted`), then sends every
 * event the history still holds, then live ones. This is the real path a client takes when it
 * stays away too long; nothing is faked on the client's side.
 */

/** How many events past the history the burst publishes, so the page's position is surely evicted. */
export const GAP_MARGIN = 10

/**
 * @param {{
 *   drops: { drop(client: string): number },
 *   client: string,
 *   history: number,
 *   publish: (input: { data: string }) => unknown,
 * }} options the demo's drop control, the page's client id, the history's size in events, and a
 *   publish on the demo stream (an id, or a promise of one with Redis)
 * @returns {Promise<{ dropped: number, published: number, history: number }>}
 */
export async function forceGap({ drops, client, history, publish }) {
  const dropped = drops.drop(client)
  const count = history + GAP_MARGIN
  // Issued together: in memory they all land in this turn, before the page can come back; with
  // Redis they are pipelined in order, far within the second the page waits before reconnecting.
  await Promise.all(
    Array.from({ length: count }, (_, n) =>
      publish({ data: `burst ${n + 1}/${count} while the page was away` }),
    ),
  )
  return { dropped, published: count, history }
}
