/**
 * Clients that read an event stream over real HTTP, for every suite: the way browsers do (the
 * `eventsource` package, reconnecting by itself) or byte by byte (fetch + `eventsource-parser`).
 */
import { EventSource } from 'eventsource'
import { createParser, type EventSourceMessage } from 'eventsource-parser'

/** One event as a client saw it. */
export interface Received {
  readonly id: string | undefined
  readonly event: string | undefined
  readonly data: string
}

/**
 * A client on fetch: it sends `Last-Event-ID` when given one, parses events with
 * `eventsource-parser`, and tracks the last event id as the spec does, id-only frames included.
 */
export class RawClient {
  readonly events: Received[] = []
  /** The id a reconnecting browser would send: the last `id:` of a completed frame. */
  lastEventId: string | undefined
  comments = 0
  status = 0
  contentType: string | null = null
  ended = false
  private readonly controller = new AbortController()
  private pendingId: string | undefined
  private line = ''

  static async open(url: string, lastEventId?: string): Promise<RawClient> {
    const client = new RawClient()
    client.lastEventId = lastEventId
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId
    const response = await fetch(url, { headers, signal: client.controller.signal })
    client.status = response.status
    client.contentType = response.headers.get('content-type')
    void client.pump(response)
    return client
  }

  /** Events other than the gap signal. */
  get messages(): Received[] {
    return this.events.filter((event) => event.event !== 'rewind-gap')
  }

  /** Gap signals received. */
  get gaps(): Received[] {
    return this.events.filter((event) => event.event === 'rewind-gap')
  }

  close(): void {
    this.controller.abort()
  }

  private async pump(response: Response): Promise<void> {
    const parser = createParser({
      onEvent: (event) => this.events.push({ id: event.id, event: event.event, data: event.data }),
      onComment: () => {
        this.comments++
      },
    })
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        const text = decoder.decode(chunk, { stream: true })
        this.track(text)
        parser.feed(text)
      }
    } catch {
      // Aborted by close(), or the server went away.
    } finally {
      this.ended = true
    }
  }

  /** Follows `id:` fields to the blank line that completes their frame (the server writes LF only). */
  private track(text: string): void {
    const lines = (this.line + text).split('\n')
    this.line = lines.pop() ?? ''
    for (const line of lines) {
      if (line === '') {
        if (this.pendingId !== undefined) this.lastEventId = this.pendingId
        this.pendingId = undefined
      } else if (line.startsWith('id:')) {
        this.pendingId = line.slice(line.startsWith('id: ') ? 4 : 3)
      }
    }
  }
}

/** A browser-like client (`eventsource` v4) that reconnects by itself with `Last-Event-ID`. */
export class BrowserClient {
  readonly events: Received[] = []
  opens = 0
  readonly source: EventSource

  constructor(url: string, eventNames: readonly string[] = []) {
    this.source = new EventSource(url)
    const record = (event: MessageEvent) => {
      this.events.push({ id: event.lastEventId || undefined, event: event.type, data: event.data })
    }
    this.source.addEventListener('message', record)
    for (const name of ['rewind-gap', ...eventNames]) this.source.addEventListener(name, record)
    this.source.addEventListener('open', () => {
      this.opens++
    })
  }

  get messages(): Received[] {
    return this.events.filter((event) => event.event !== 'rewind-gap')
  }

  close(): void {
    this.source.close()
  }
}

/**
 * Reads the event stream of `response` until `keep` has accepted `count` events (it returns what to
 * keep of an event, or `undefined` to pass it over), the body ends, or `timeout` ms pass. It then
 * aborts `controller` (the request's) and returns what it kept: the caller's assertion says what
 * was missing.
 */
export async function readEvents<T>(
  response: Response,
  controller: AbortController,
  count: number,
  timeout: number,
  keep: (event: EventSourceMessage) => T | undefined,
): Promise<T[]> {
  const kept: T[] = []
  const parser = createParser({
    onEvent: (event) => {
      const value = keep(event)
      if (value !== undefined) kept.push(value)
    },
  })
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  const deadline = setTimeout(() => controller.abort(), timeout)
  try {
    while (kept.length < count) {
      const { value, done } = await reader.read()
      if (done) break
      parser.feed(value)
    }
  } catch {
    // Aborted at the deadline.
  } finally {
    clearTimeout(deadline)
    controller.abort()
  }
  return kept
}
