/**
 * A hub's `stats()` as Prometheus metrics with prom-client: nothing is counted twice, each metric's
 * `collect` reads the hub when Prometheus scrapes. Totals since the hub started are counters (their
 * names end in `_total`, so `rate()` works on them); values of the moment are gauges.
 */
import client from 'prom-client'

/**
 * Every field of the hub's `HubStats`, as a metric.
 * @type {readonly { stat: keyof import('@rewind/core').HubStats, name: string, type: 'counter' | 'gauge', help: string }[]}
 */
export const HUB_METRICS = [
  {
    stat: 'connections',
    name: 'connections',
    type: 'gauge',
    help: 'Open connections: subscribers plus iterable streams.',
  },
  { stat: 'subscribers', name: 'subscribers', type: 'gauge', help: 'Open subscribers of hub streams.' },
  {
    stat: 'streams',
    name: 'streams',
    type: 'gauge',
    help: 'Streams with at least one subscriber in this process.',
  },
  {
    stat: 'queuedBytes',
    name: 'queued_bytes',
    type: 'gauge',
    help: 'Bytes written but not yet sent, over all open connections.',
  },
  {
    stat: 'published',
    name: 'events_published_total',
    type: 'counter',
    help: 'Events published through this hub.',
  },
  {
    stat: 'delivered',
    name: 'events_delivered_total',
    type: 'counter',
    help: 'Live deliveries: one per event per subscriber.',
  },
  {
    stat: 'replayed',
    name: 'events_replayed_total',
    type: 'counter',
    help: 'Events sent from history to clients catching up.',
  },
  {
    stat: 'gaps',
    name: 'gaps_total',
    type: 'counter',
    help: 'Gap signals sent: clients that resumed from a position history no longer covers.',
  },
  {
    stat: 'slowClosed',
    name: 'slow_clients_closed_total',
    type: 'counter',
    help: 'Subscribers cut off for passing maxQueueBytes (they resume from history).',
  },
  {
    stat: 'rejected',
    name: 'connections_rejected_total',
    type: 'counter',
    help: 'Clients turned away by a limit or because the hub was closing.',
  },
  { stat: 'errors', name: 'errors_total', type: 'counter', help: 'Errors reported through onError.' },
]

/**
 * Registers one metric per `HubStats` field on `registry`.
 *
 * @param {{ stats(): import('@rewind/core').HubStats }} hub the hub (`events.hub` in Express,
 *   `fastify.sse` in Fastify)
 * @param {{ registry?: client.Registry, prefix?: string }} [options] where to register
 *   (default: prom-client's global registry), and the names' prefix (default `rewind_`)
 * @returns {client.Metric[]} the metrics, in HUB_METRICS order
 */
export function registerHubMetrics(hub, { registry = client.register, prefix = 'rewind_' } = {}) {
  // One snapshot per scrape: prom-client runs every metric's collect in the same turn, so the
  // numbers of one scrape agree with each other, and stats() walks the connections only once.
  /** @type {import('@rewind/core').HubStats | undefined} */
  let snapshot
  const read = () => {
    if (snapshot === undefined) {
      snapshot = hub.stats()
      queueMicrotask(() => {
        snapshot = undefined
      })
    }
    return snapshot
  }
  return HUB_METRICS.map(({ stat, name, type, help }) => {
    const config = { name: prefix + name, help, registers: [registry] }
    if (type === 'gauge') {
      return new client.Gauge({
        ...config,
        collect() {
          this.set(read()[stat])
        },
      })
    }
    // A counter cannot be set, only raised: start from zero each scrape and raise it to the hub's total.
    return new client.Counter({
      ...config,
      collect() {
        this.reset()
        this.inc(read()[stat])
      },
    })
  })
}
