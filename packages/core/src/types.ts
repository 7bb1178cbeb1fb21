/**
 * Types shared by several core modules and by applications: the one home of each (no other module
 * re-exports them). A leaf: it imports nothing but the store's types and `ResumeId`, so any module
 * can use them without depending on the module that produces them.
 */
import type { ResumeId } from './last-event-id.js'
import type { GapReason, StoredEvent } from './store.js'

/** What to do when a client's resume position cannot be honoured exactly. */
export type GapPolicy = 'replay' | 'reset'

/** Decides per event whether a subscriber gets it. Must be synchronous and cheap. */
export type EventFilter = (event: StoredEvent) => boolean

/**
 * Why a connection ended:
 * - `client`: the client went away (or its transport failed);
 * - `slow`: the bytes waiting for it passed `maxQueueBytes`, so it was cut off (it resumes from history);
 * - `shutdown`: the hub was closed;
 * - `rejected`: a connection limit was reached, or the hub was already closed, when it arrived;
 * - `error`: application code (a filter, an iterable) or the store failed; reported through `onError`;
 * - `end`: the application closed it, or its iterable finished;
 * - `reset`: the store lost live events of its stream; the client resumes from history (and is told
 *   of the gap if history no longer holds its position).
 */
export type CloseReason = 'client' | 'slow' | 'shutdown' | 'rejected' | 'error' | 'end' | 'reset'

/** An open event stream to one client, as seen by the application. */
export interface Subscription {
  /** The hub stream it follows, or `undefined` for an iterable. */
  readonly stream: string | undefined
  /** Whether it has ended. */
  readonly closed: boolean
  /** Resolves with the reason once it has ended. */
  readonly done: Promise<CloseReason>
  /** Ends the stream gracefully (the client will reconnect after its retry delay unless told otherwise). */
  close(): void
}

/**
 * The minimal writable a connection needs. Node's `http.ServerResponse`, `http2.Http2ServerResponse`
 * and any `stream.Writable` satisfy it, so adapters pass the framework's raw response as is.
 */
export interface EventSink {
  /** Writes bytes; returns false when the transport's buffer is full (as `Writable#write`). */
  write(chunk: Uint8Array): boolean
  /** Ends the body gracefully (a clean end makes an EventSource reconnect after its retry delay). */
  end(): unknown
  /** Aborts the transport at once, dropping what is buffered. */
  destroy(): unknown
  /** Bytes accepted by `write` but not yet handed to the operating system. */
  readonly writableLength: number
  /**
   * True once `end()` was called, by Rewind or by application code (as `Writable#writableEnded`);
   * nothing is written after it.
   */
  readonly writableEnded?: boolean
  /** True once the transport is gone (as `Writable#destroyed`); such a sink is never subscribed. */
  readonly destroyed?: boolean
  /** `close`: the transport is gone; `drain`: the buffer emptied; `error`: the transport failed. */
  on(event: 'close' | 'drain' | 'error', listener: (...args: never[]) => void): unknown
  removeListener(event: 'close' | 'drain' | 'error', listener: (...args: never[]) => void): unknown
}

/** An event to publish. */
export interface PublishInput {
  /** The payload: a string is sent as is, anything else through the hub's serializer (JSON by default). */
  data: unknown
  /** The event type; absent means `message`. Must not contain CR, LF or NUL. */
  event?: string | undefined
}

/** What {@link HubOptions.onGap} is told. */
export interface GapInfo {
  /** The stream the client resumes. */
  stream: string
  /** Why its position could not be honoured. */
  reason: GapReason
  /** The id the client sent, or `null` when it was malformed. */
  lastEventId: string | null
  /** The policy that applies unless the hook returns another one. */
  policy: GapPolicy
}

/** What the connection hooks are told. */
export interface ConnectionInfo {
  /** The hub stream, or `undefined` for an iterable stream. */
  stream: string | undefined
}

/** Options of one subscription. */
export interface SubscribeOptions {
  /**
   * Where the client resumes: an id it was sent, `null` for a malformed value (a gap), or
   * `undefined` for a fresh connection that starts with live events.
   */
  lastEventId?: ResumeId
  /** Only events for which this returns true are sent (for example, one user's events). */
  filter?: EventFilter | undefined
  /** Overrides the hub's `gapPolicy` for this client. */
  gapPolicy?: GapPolicy | undefined
}

/** Counters of a hub, read with {@link Hub.stats}. */
export interface HubStats {
  /** Open connections: subscribers plus iterable streams. */
  connections: number
  /** Open subscribers of hub streams. */
  subscribers: number
  /** Streams with at least one subscriber in this process. */
  streams: number
  /** Events published through this hub. */
  published: number
  /** Live deliveries: one per event per subscriber. */
  delivered: number
  /** Events sent from history during catch-up. */
  replayed: number
  /** Gap signals sent. */
  gaps: number
  /** Subscribers disconnected for passing `maxQueueBytes`. */
  slowClosed: number
  /** Clients turned away by a limit or because the hub was closed. */
  rejected: number
  /** Errors reported through `onError`. */
  errors: number
  /** Bytes written but not yet sent, summed over open connections, now. */
  queuedBytes: number
}
