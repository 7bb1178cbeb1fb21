/** Opens a source that records everything it dispatches, and is closed when the test finishes. */
import { onTestFinished } from 'vitest'
import { waitUntil } from '../../../../test/support/wait.js'
import {
  createEventSource,
  type EndEvent,
  type EventMap,
  type EventSourceOptions,
  type GapEvent,
  type RewindClientError,
  type RewindEventSource,
  type SourceErrorEvent,
  type SourceMessageEvent,
} from '../../src/index.js'

/** One dispatched event, reduced to what the tests compare. */
export type Logged =
  | { type: 'open' }
  | { type: 'message' | string; data: unknown; id: string | undefined; lastEventId: string }
  | { type: 'gap'; reason: string; lastEventId: string }
  | { type: 'end'; reason: string; lastEventId: string }
  | { type: 'error'; code: string; status: number | undefined; reconnectDelay: number | undefined }

export interface Recorded<Events extends EventMap> {
  source: RewindEventSource<Events>
  log: Logged[]
  /** The stream's events only, as `[id, data]` pairs. */
  messages(): [string | undefined, unknown][]
  /** Resolves when `count` stream events were received. */
  messagesAtLeast(count: number): Promise<void>
  /** Resolves when the source is closed. */
  closed(): Promise<void>
}

export function record<Events extends EventMap = Record<string, string>>(
  url: string,
  options: EventSourceOptions & { listen?: string[] } = {},
): Recorded<Events> {
  const { listen = [], ...sourceOptions } = options
  const source = createEventSource<Events>(url, sourceOptions)
  onTestFinished(() => source.close())
  const log: Logged[] = []
  const onMessage = (event: Event) => {
    const message = event as SourceMessageEvent<unknown>
    log.push({ type: message.type, data: message.data, id: message.id, lastEventId: message.lastEventId })
  }
  source.addEventListener('open', () => log.push({ type: 'open' }))
  source.addEventListener('message', onMessage)
  for (const name of listen) source.addEventListener(name, onMessage)
  source.addEventListener('gap', (event: GapEvent) =>
    log.push({ type: 'gap', reason: event.reason, lastEventId: event.lastEventId }),
  )
  source.addEventListener('end', (event: EndEvent) =>
    log.push({ type: 'end', reason: event.reason, lastEventId: event.lastEventId }),
  )
  source.addEventListener('error', (event: SourceErrorEvent) =>
    log.push({
      type: 'error',
      code: event.error.code,
      status: event.error.status,
      reconnectDelay: event.reconnectDelay,
    }),
  )
  const messages = () =>
    log
      .filter((entry): entry is Extract<Logged, { data: unknown }> => 'data' in entry)
      .map((entry): [string | undefined, unknown] => [entry.id, entry.data])
  return {
    source,
    log,
    messages,
    messagesAtLeast: (count) =>
      waitUntil(
        () => messages().length >= count,
        () => `${count} events; log: ${JSON.stringify(log)}`,
      ),
    closed: () =>
      waitUntil(
        () => source.readyState === source.CLOSED,
        () => `closed; log: ${JSON.stringify(log)}`,
      ),
  }
}

/** The errors `source` reports from now on, in order, with their code, fields and cause. */
export function raisedBy(source: RewindEventSource): RewindClientError[] {
  const raised: RewindClientError[] = []
  source.addEventListener('error', (event: SourceErrorEvent) => raised.push(event.error))
  return raised
}
