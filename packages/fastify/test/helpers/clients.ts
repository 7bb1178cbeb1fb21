import { EventSource } from 'eventsource'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { onTestFinished } from 'vitest'
import { waitUntil, within } from '../../../../test/support/wait.js'

/** A promise with its resolve function, for gates a test opens by hand. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/**
 * What a spec-following client makes of an event stream, fed chunk by chunk: dispatched events and
 * `retry:` values, as eventsource-parser reports them, plus the raw text.
 */
export class EventLog {
  readonly events: EventSourceMessage[] = []
  readonly retries: number[] = []
  text = ''
  private readonly parser = createParser({
    onEvent: (event) => this.events.push(event),
    onRetry: (retry) => this.retries.push(retry),
  })

  feed(chunk: string): void {
    this.text += chunk
    this.parser.feed(chunk)
  }

  /** Waits until at least `count` events have been dispatched; returns all of them. */
  waitForEvents(count: number, label = 'the stream'): Promise<EventSourceMessage[]> {
    return waitUntil(
      () => this.events.length >= count && this.events,
      () => `${count} events on ${label}, got ${this.events.length}: ${JSON.stringify(this.text)}`,
    )
  }

  /** Data of the dispatched events of the default (`message`) type. */
  messages(): string[] {
    return this.events.filter((event) => event.event === undefined).map((event) => event.data)
  }
}

/** An event stream read with `fetch` (the way a server-side client or a polyfill reads it). */
export class FetchStream extends EventLog {
  /** Resolves when the body ends (the server ended it) or the read fails (an abort or a reset). */
  readonly ended: Promise<void>

  private constructor(
    readonly response: Response,
    private readonly controller: AbortController,
  ) {
    super()
    this.ended = this.read()
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<FetchStream> {
    const controller = new AbortController()
    const response = await within(
      fetch(url, { headers, signal: controller.signal }),
      `the response of ${url}`,
    )
    const stream = new FetchStream(response, controller)
    onTestFinished(() => stream.close())
    return stream
  }

  close(): void {
    this.controller.abort()
  }

  private async read(): Promise<void> {
    const body = this.response.body
    if (body === null) return
    const reader = body.getReader()
    const decoder = new TextDecoder()
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        this.feed(decoder.decode(value, { stream: true }))
      }
    } catch {
      // An abort or a reset ends the read like the end of the body; the test asserts on what arrived.
    }
  }
}

/** What an `eventsource` client dispatched: the event type, its data and the client's `lastEventId`. */
export interface ReceivedEvent {
  type: string
  data: string
  lastEventId: string
}

/**
 * A real EventSource (the `eventsource` package, which follows the browser's algorithm: it
 * reconnects by itself after `retry` and sends `Last-Event-ID`), recording every event of `types`.
 */
export class EventSourceClient {
  readonly source: EventSource
  readonly events: ReceivedEvent[] = []
  /** `open` events seen: 1 after the first connection, one more per reconnection. */
  opens = 0

  constructor(url: string, options: { types?: readonly string[]; headers?: Record<string, string> } = {}) {
    const extra = options.headers
    this.source = new EventSource(url, {
      fetch:
        extra === undefined
          ? globalThis.fetch
          : (input, init) => globalThis.fetch(input, { ...init, headers: { ...init.headers, ...extra } }),
    })
    this.source.addEventListener('open', () => {
      this.opens++
    })
    for (const type of options.types ?? ['message', 'rewind-gap']) {
      this.source.addEventListener(type, (event) => {
        this.events.push({ type, data: event.data, lastEventId: event.lastEventId })
      })
    }
    onTestFinished(() => this.close())
  }

  waitForOpen(count = 1): Promise<number> {
    return waitUntil(() => this.opens >= count && this.opens, `${count} open events, got ${this.opens}`)
  }

  waitForEvents(count: number, label = 'the EventSource'): Promise<ReceivedEvent[]> {
    return waitUntil(
      () => this.events.length >= count && this.events,
      () => `${count} events on ${label}, got ${JSON.stringify(this.events)}`,
    )
  }

  close(): void {
    this.source.close()
  }
}
