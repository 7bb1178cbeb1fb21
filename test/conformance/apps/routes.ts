/**
 * What every conformance app serves, whatever its adapter and runtime: the same routes, so the suite
 * drives them all over HTTP alone (an app in another runtime is only reachable that way).
 *
 * - `GET /events`: the stream `news`, with replay;
 * - `POST /publish` `{ event?, data, count?, size? }`: publishes (`count` events in one turn, of
 *   `size` bytes of data each if given) and answers 201 `{ ids }`;
 * - `POST /responses` `{ items, interval? }`: starts a response of those items, 201 `{ id }`;
 * - `GET /responses/:id`: serves it;
 * - `GET /stats`: the hub's stats;
 * - `POST /close?retry=ms`: closes the hub (answers at once).
 */
export interface PublishBody {
  event?: string
  data?: unknown
  count?: number
  size?: number
}

export interface ResponseBody {
  items: string[]
  /** Milliseconds between items. */
  interval?: number
}

/** The hub options an app is made with: JSON, so they cross into another runtime through its env. */
export interface AppOptions {
  retry?: number
  maxQueueBytes?: number
  maxEventBytes?: number
  heartbeatInterval?: number
  history?: { maxEvents?: number }
  maxDuration?: number
  maxDurationMargin?: number
}

/** The events a publish request asks for. */
export function eventsToPublish(body: PublishBody): { event?: string; data: unknown }[] {
  const count = body.count ?? 1
  const data = body.size === undefined ? body.data : 'x'.repeat(body.size)
  const event = body.event === undefined ? {} : { event: body.event }
  return Array.from({ length: count }, () => ({ ...event, data }))
}

/** The producer of a test response: its items, `interval` ms apart. */
export async function* produce(body: ResponseBody): AsyncGenerator<string> {
  for (const item of body.items) {
    if (body.interval !== undefined) await new Promise((resolve) => setTimeout(resolve, body.interval))
    yield item
  }
}
