/**
 * Types shared by several core modules and by applications. A leaf: it imports nothing but the
 * store's types, so any module can use them without depending on the module that produces them.
 */
import type { StoredEvent } from './store.js'

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
