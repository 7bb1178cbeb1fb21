/**
 * The "drop connection" control of the live demos: each page opens `/events?client=<id>`, and
 * `POST /drop?client=<id>` makes the server cut that page's streams, as a network failure would.
 * The browser's `EventSource` then reconnects by itself with `Last-Event-ID`.
 */

const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/

/**
 * The client id from a query parameter, or `undefined` when it is absent or not a short token.
 *
 * @param {unknown} value
 * @returns {string | undefined}
 */
export function readClientId(value) {
  return typeof value === 'string' && CLIENT_ID.test(value) ? value : undefined
}

/** Open event-stream responses by client id, each forgotten when it closes. */
export function createDropControl() {
  /** @type {Map<string, Set<import('node:http').ServerResponse>>} */
  const byClient = new Map()
  return {
    /**
     * Remembers a raw response (`res` in Express, `reply.raw` in Fastify) until it closes.
     * @param {string | undefined} client
     * @param {import('node:http').ServerResponse} res
     */
    track(client, res) {
      if (client === undefined) return
      let open = byClient.get(client)
      if (open === undefined) {
        open = new Set()
        byClient.set(client, open)
      }
      open.add(res)
      res.once('close', () => {
        open.delete(res)
        if (open.size === 0 && byClient.get(client) === open) byClient.delete(client)
      })
    },
    /**
     * Destroys the sockets of a client's streams (no clean end: the client sees a network error).
     * @param {string} client
     * @returns {number} how many streams were cut
     */
    drop(client) {
      const open = byClient.get(client)
      if (open === undefined) return 0
      for (const res of open) res.destroy()
      return open.size
    },
  }
}
