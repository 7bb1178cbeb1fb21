/**
 * A resuming reader: a real HTTP client (node:http, a connection of its own per attempt) that reads
 * an answer's event stream with `eventsource-parser`, keeps the last event id the way a browser does
 * (id-only frames included), and comes back with `Last-Event-ID` after a drop, an error or a status
 * that is not an end (a 5xx), after a short backoff. It stops where a browser's `EventSource` stops
 * for good, or where `@rewind/client` does: at the terminal event, at a 204, at a 404.
 */
import { type ClientRequest, type IncomingMessage, request } from 'node:http'
import { performance } from 'node:perf_hooks'
import { createParser } from 'eventsource-parser'

/** The hub's terminal event and gap signal (their default names). */
export const END_EVENT = 'rewind-end'
export const GAP_EVENT = 'rewind-gap'

/** One event as the reader saw it. */
export interface SeenEvent {
  readonly id: string | undefined
  readonly event: string | undefined
  readonly data: string
  /** `performance.now()` when it arrived. */
  readonly at: number
}

/** One request the reader made. */
export interface Attempt {
  readonly at: number
  readonly lastEventId: string | undefined
  /** The HTTP status, or the error that ended the request before one. */
  status: number | string
  /** Why it ended: the body ended, the reader cut it, an error, or the reader stopped. */
  outcome?: 'ended' | 'cut' | 'error' | 'stopped' | 'final'
}

/** How a reader stopped: the terminal event (with its data), a 204, a 404; or never (stopped). */
export type ReaderEnd =
  | { readonly kind: 'terminal'; readonly data: string }
  | { readonly kind: 204 }
  | { readonly kind: 404 }

export interface ReaderOptions {
  /** A label for messages. */
  readonly name: string
  /** The URL of the answer (on one instance). */
  readonly url: string
  /** Backoff before a reconnect, in ms: a random delay in [min, max]. @defaultValue [30, 120] */
  readonly backoff?: readonly [number, number]
  /** Cut the connection once at this `performance.now()` moment (a network drop), then resume. */
  readonly cutAt?: number | undefined
  /**
   * Stop reading for this many ms once the first bytes of the first body arrive (a slow client: its
   * socket fills and the server's replay waits for it), then read on.
   */
  readonly stallFor?: number | undefined
  /** A source of randomness for the backoff (seeded by the caller). */
  readonly random: () => number
}

export class Reader {
  readonly name: string
  readonly events: SeenEvent[] = []
  readonly attempts: Attempt[] = []
  /** Heartbeats (comments) received since the last event: many, and no end, is a stream open forever. */
  heartbeatsSinceEvent = 0
  /** The id a reconnecting browser would send. */
  lastEventId: string | undefined
  end: ReaderEnd | undefined
  /** `performance.now()` when it stopped at an end. */
  endedAt: number | undefined
  readonly startedAt = performance.now()
  /** Resolves once the reader has stopped (at an end, or by `stop()`). */
  readonly finished: Promise<void>
  private stopped = false
  private current: ClientRequest | undefined
  private wake: (() => void) | undefined
  private readonly options: ReaderOptions

  constructor(options: ReaderOptions) {
    this.options = options
    this.name = options.name
    this.finished = this.loop()
    if (options.cutAt !== undefined) {
      const cut = setTimeout(() => this.cut(), Math.max(0, options.cutAt - performance.now()))
      cut.unref()
    }
  }

  /** Stops the reader where it is (no end recorded). */
  stop(): void {
    this.stopped = true
    this.current?.destroy()
    this.wake?.()
  }

  /** Cuts the current connection, as a network drop would; the reader resumes by itself. */
  cut(): void {
    if (this.current !== undefined && !this.stopped && this.end === undefined) {
      const attempt = this.attempts.at(-1)
      if (attempt !== undefined) attempt.outcome = 'cut'
      this.current.destroy()
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped && this.end === undefined) {
      await this.attempt()
      if (this.stopped || this.end !== undefined) break
      const [min, max] = this.options.backoff ?? [30, 120]
      await new Promise<void>((resolve) => {
        this.wake = resolve
        setTimeout(resolve, min + Math.floor(this.options.random() * (max - min + 1)))
      })
      this.wake = undefined
    }
  }

  private finish(end: ReaderEnd): void {
    this.end = end
    this.endedAt = performance.now()
  }

  /** One request, to its end; never rejects. */
  private attempt(): Promise<void> {
    const attempt: Attempt = { at: performance.now(), lastEventId: this.lastEventId, status: 'pending' }
    this.attempts.push(attempt)
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (this.lastEventId !== undefined) headers['last-event-id'] = this.lastEventId
    return new Promise<void>((resolve) => {
      let settled = false
      const settle = (outcome: NonNullable<Attempt['outcome']>) => {
        if (settled) return
        settled = true
        attempt.outcome ??= this.stopped ? 'stopped' : outcome
        this.current = undefined
        resolve()
      }
      const req = request(this.options.url, { headers, agent: false }, (res) => {
        attempt.status = res.statusCode ?? 0
        if (res.statusCode === 204 || res.statusCode === 404) {
          this.finish({ kind: res.statusCode })
          attempt.outcome = 'final'
          res.resume()
          req.destroy()
          settle('final')
          return
        }
        if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('text/event-stream')) {
          // A 5xx (or anything else that is not an end): read it away and come back.
          res.resume()
          res.once('end', () => settle('ended'))
          res.once('close', () => settle('ended'))
          return
        }
        this.read(res, req)
        res.once('end', () => settle('ended'))
        res.once('close', () => settle('ended'))
        res.once('error', () => settle('error'))
      })
      this.current = req
      req.once('error', () => settle('error'))
      req.once('close', () => settle('error'))
      req.end()
    })
  }

  private read(res: IncomingMessage, req: ClientRequest): void {
    let line = ''
    let pendingId: string | undefined
    const parser = createParser({
      onEvent: (event) => {
        if (this.end !== undefined) return
        this.heartbeatsSinceEvent = 0
        this.events.push({ id: event.id, event: event.event, data: event.data, at: performance.now() })
        if (event.event === END_EVENT) {
          this.finish({ kind: 'terminal', data: event.data })
          const attempt = this.attempts.at(-1)
          if (attempt !== undefined) attempt.outcome = 'final'
          req.destroy()
        }
      },
      onComment: () => {
        this.heartbeatsSinceEvent++
      },
    })
    res.setEncoding('utf8')
    let stall = this.attempts.length === 1 ? this.options.stallFor : undefined
    res.on('data', (text: string) => {
      if (stall !== undefined) {
        res.pause()
        setTimeout(() => res.resume(), stall).unref()
        stall = undefined
      }
      if (this.end !== undefined) return
      // Follow `id:` fields to the blank line that completes their frame, id-only frames included
      // (the server writes LF only), as a browser's last event id does.
      const lines = (line + text).split('\n')
      line = lines.pop() ?? ''
      for (const l of lines) {
        if (l === '') {
          if (pendingId !== undefined) this.lastEventId = pendingId
        } else if (l.startsWith('id:')) {
          pendingId = l.slice(l.startsWith('id: ') ? 4 : 3)
        }
      }
      parser.feed(text)
    })
  }
}
