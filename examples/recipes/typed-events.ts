/**
 * Recipe: typed payloads (docs/recipes.md). One map from event name to payload type, shared by the
 * server and the client code: `publish` accepts only a payload that matches its event name, and
 * `on` hands the listener the parsed payload with that type. Types say what the server sends; the
 * client still parses what arrives, and drops what does not fit instead of trusting it blindly.
 */
/** Every event of the `orders` stream and its payload. */
export interface OrderEvents {
  'order.created': { orderId: string; items: { sku: string; qty: number }[] }
  'order.shipped': { orderId: string; carrier: string }
}

/** A publish for one stream that only takes the events of `Events`, each with its payload. */
export function typedPublisher<Events>(
  hub: { publish(stream: string, input: { event: string; data: unknown }): string },
  stream: string,
) {
  return <Name extends keyof Events & string>(event: Name, data: Events[Name]): string =>
    hub.publish(stream, { event, data })
}

/** The part of `EventSource` that `on` needs (the browser's, or the `eventsource` package's). */
interface EventSourceLike {
  addEventListener(type: string, listener: (event: MessageEvent) => void): void
}

/**
 * Listens for one event of `Events`; `check` tells whether a parsed payload has the expected shape
 * (a hand-written guard, or a schema library's). Events that do not parse or fit go to `onInvalid`.
 */
export function on<Events, Name extends keyof Events & string>(
  source: EventSourceLike,
  event: Name,
  check: (data: unknown) => data is Events[Name],
  listener: (data: Events[Name], id: string) => void,
  onInvalid: (raw: string, id: string) => void = () => {},
): void {
  source.addEventListener(event, (message) => {
    let data: unknown
    try {
      data = JSON.parse(message.data)
    } catch {
      return onInvalid(message.data, message.lastEventId)
    }
    if (check(data)) listener(data, message.lastEventId)
    else onInvalid(message.data, message.lastEventId)
  })
}

/** A hand-written guard for `order.shipped`. */
export function isShipped(data: unknown): data is OrderEvents['order.shipped'] {
  const value = data as { orderId?: unknown; carrier?: unknown } | null
  return typeof value?.orderId === 'string' && typeof value.carrier === 'string'
}
