/**
 * The events a source dispatches, and the items `for await` yields. The events are plain `Event`
 * subclasses rather than the DOM's `MessageEvent`, so the same types hold in a browser and in Node
 * without the DOM library.
 */
import type { RewindClientError } from './errors.js'

/**
 * Why the server said the client's position could not be honoured (Rewind's gap signal):
 * `evicted` (older than the history keeps), `unknown`, `malformed`, or `epoch` (from before a
 * restart, or from another stream). Other servers may send other reasons; they are passed on as sent.
 */
export type GapReason = 'evicted' | 'unknown' | 'malformed' | 'epoch' | (string & {})

/**
 * How a response ended: `done`, `cancelled` or `failed` as the server's end event says, or
 * `no-content` when a reconnection was answered `204 No Content` (the stream had already ended).
 */
export type EndReason = 'done' | 'cancelled' | 'failed' | 'no-content' | (string & {})

/** `open`: a response with status 200 and an event stream arrived. */
export class OpenEvent extends Event {
  /** The response's status (always 200). */
  readonly status: number
  /** The response's headers. */
  readonly headers: Headers
  /** The URL that answered, after redirects. */
  readonly url: string

  constructor(response: { status: number; headers: Headers; url: string }) {
    super('open')
    this.status = response.status
    this.headers = response.headers
    this.url = response.url
  }
}

/**
 * An event of the stream: `message` for events without an `event:` field, else its name.
 * Like the DOM's `MessageEvent`, with the event's own `id` besides the stream's `lastEventId`.
 */
export class SourceMessageEvent<Data = string> extends Event {
  /** The data: a string, or the parsed JSON with the `json` option. */
  readonly data: Data
  /** The id the event carried, or `undefined` when it had no `id:` field. */
  readonly id: string | undefined
  /** The stream's position after this event: its id, or the previous one when it had none. */
  readonly lastEventId: string
  /** The origin of the URL that answered. */
  readonly origin: string

  constructor(
    type: string,
    init: { data: Data; id: string | undefined; lastEventId: string; origin: string },
  ) {
    super(type)
    this.data = init.data
    this.id = init.id
    this.lastEventId = init.lastEventId
    this.origin = init.origin
  }
}

/** `gap`: the server could not resume from the client's position; events were missed. */
export class GapEvent extends Event {
  /** Why, as the server said. */
  readonly reason: GapReason
  /** The position the stream resumes from (the gap signal's id). */
  readonly lastEventId: string

  constructor(init: { reason: GapReason; lastEventId: string }) {
    super('gap')
    this.reason = init.reason
    this.lastEventId = init.lastEventId
  }
}

/** `end`: the stream ended for good (a finished response); the source is closed and will not reconnect. */
export class EndEvent extends Event {
  /** How it ended. */
  readonly reason: EndReason
  /** The stream's position at the end. */
  readonly lastEventId: string

  constructor(init: { reason: EndReason; lastEventId: string }) {
    super('end')
    this.reason = init.reason
    this.lastEventId = init.lastEventId
  }
}

/**
 * `error`: a connection failed or dropped. When `reconnectDelay` is a number the source reconnects
 * after that many milliseconds; when it is `undefined` the source has stopped for good (`readyState`
 * is `CLOSED`), except for `ERR_INVALID_JSON`, after which the stream goes on (`OPEN`).
 */
export class SourceErrorEvent extends Event {
  /** What went wrong. */
  readonly error: RewindClientError
  /** Milliseconds until the next attempt, or `undefined` when there will be none. */
  readonly reconnectDelay: number | undefined

  constructor(error: RewindClientError, reconnectDelay: number | undefined) {
    super('error')
    this.error = error
    this.reconnectDelay = reconnectDelay
  }
}

/** Names of a stream's events mapped to the type of their data, for typed listeners and items. */
export type EventMap = Record<string, unknown>

/** What `for await` yields for an event of the stream. */
export interface MessageItem<Type extends string = string, Data = string> {
  kind: 'message'
  /** `message`, or the event's `event:` name. */
  type: Type
  data: Data
  /** The id the event carried, or `undefined` when it had none. */
  id: string | undefined
  /** The stream's position after this event. */
  lastEventId: string
}

/** What `for await` yields for the server's gap signal: events were missed (see {@link GapEvent}). */
export interface GapItem {
  kind: 'gap'
  reason: GapReason
  lastEventId: string
}

/** An item of `for await (const item of source)`: an event of the stream, or a gap. */
export type SourceItem<Events extends EventMap = EventMap> =
  | { [Type in keyof Events & string]: MessageItem<Type, Events[Type]> }[keyof Events & string]
  | GapItem

/** The source's own events, besides the stream's. */
export interface SourceEventMap {
  open: OpenEvent
  error: SourceErrorEvent
  gap: GapEvent
  end: EndEvent
}
