import { HUB_DEFAULTS } from '@rewind/core'
import { EventSource } from 'eventsource'
import { onTestFinished } from 'vitest'
import { WAIT_MS, waitUntil } from '../../../../test/support/wait.js'

/** One event as a real client dispatched it. */
export interface ReceivedEvent {
  type: string
  data: string
  lastEventId: string
}

export interface ClientOptions {
  /** Event types to listen to. @defaultValue `['message', 'rewind-gap']` */
  types?: string[]
  /** Extra request headers, sent on every connection (the first one and each reconnection). */
  headers?: Record<string, string>
}

/** An `eventsource` client that records what it sees; closed when the test finishes. */
export interface Client {
  source: EventSource
  events: ReceivedEvent[]
  /** `open`, `error` and event types, in the order they happened. */
  log: string[]
  readonly opens: number
  readonly errors: number
  /** Waits for the first `open`. */
  opened(timeout?: number): Promise<void>
  /** Waits until at least `count` events arrived; resolves with the first `count`. */
  take(count: number, timeout?: number): Promise<ReceivedEvent[]>
  /** Waits until `open` has fired `count` times in all. */
  waitForOpens(count: number, timeout?: number): Promise<void>
  /** Waits until `error` (a failed or ended connection) has fired `count` times in all. */
  waitForErrors(count: number, timeout?: number): Promise<void>
  close(): void
}

export function connect(url: string, options: ClientOptions = {}): Client {
  const extra = options.headers
  const source = new EventSource(
    url,
    extra === undefined
      ? {}
      : { fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...extra } }) },
  )
  onTestFinished(() => source.close())
  const events: ReceivedEvent[] = []
  const log: string[] = []
  let opens = 0
  let errors = 0
  source.addEventListener('open', () => {
    opens++
    log.push('open')
  })
  source.addEventListener('error', () => {
    errors++
    log.push('error')
  })
  for (const type of options.types ?? ['message', HUB_DEFAULTS.gapEvent]) {
    source.addEventListener(type, (event: MessageEvent) => {
      events.push({ type: event.type, data: String(event.data), lastEventId: event.lastEventId })
      log.push(event.type)
    })
  }
  const described = () => `${url}: log ${JSON.stringify(log)}, events ${JSON.stringify(events)}`
  return {
    source,
    events,
    log,
    get opens() {
      return opens
    },
    get errors() {
      return errors
    },
    opened: (timeout = WAIT_MS) =>
      waitUntil(
        () => opens > 0,
        () => `open on ${described()}`,
        timeout,
      ),
    async take(count, timeout = WAIT_MS) {
      await waitUntil(
        () => events.length >= count,
        () => `${count} events on ${described()}`,
        timeout,
      )
      return events.slice(0, count)
    },
    waitForOpens: (count, timeout = WAIT_MS) =>
      waitUntil(
        () => opens >= count,
        () => `${count} opens on ${described()}`,
        timeout,
      ),
    waitForErrors: (count, timeout = WAIT_MS) =>
      waitUntil(
        () => errors >= count,
        () => `${count} errors on ${described()}`,
        timeout,
      ),
    close: () => source.close(),
  }
}
