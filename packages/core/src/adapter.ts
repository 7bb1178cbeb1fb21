/**
 * `@rewind/core/adapter`: for authors of framework adapters and history stores. Applications need
 * none of it: `@rewind/core` has what they use.
 */
export { hubFromOptions } from './create-hub.js'
export { describeError } from './errors.js'
export type { Hub } from './hub.js'
export type { HubOptions } from './hub-options.js'
export {
  LAST_EVENT_ID_QUERY_PARAMETER,
  MAX_LAST_EVENT_ID_LENGTH,
  parseLastEventId,
  type ResumeId,
  readResumeId,
} from './last-event-id.js'
export { type HistoryOptions, MemoryHistory } from './memory-history.js'
export { RESPONSE_STREAM_PREFIX } from './responses.js'
export {
  type EventStreamRequest,
  type EventStreamResponse,
  UNAVAILABLE_BODY,
  UNKNOWN_RESPONSE_BODY,
} from './serve.js'
export { type SinkAnswer, type SinkServeOptions, serveSink } from './sink-serve.js'
export {
  type AsyncHistoryStore,
  type GapReason,
  type HistoryStore,
  isAfter,
  type NewEvent,
  type Position,
  type ReadResult,
  type ResponseEnd,
  type ResponseLimits,
  type ResponseRecords,
  type ResponseState,
  type ResponseStatus,
  type StoreDelivery,
  type StoredEvent,
  type SyncHistoryStore,
} from './store.js'
export { storeErrorReport } from './throttle-errors.js'
export type { EventSink } from './types.js'
export { describeValue, positiveInteger, timerDelay } from './validation.js'
export { EVENT_STREAM_CONTENT_TYPE, eventStreamHeaders } from './wire-writer.js'
