export type { CloseReason, Subscription } from './connection.js'
export { createHub, hubFromOptions } from './create-hub.js'
export { REWIND_ERROR_CODES, RewindError, type RewindErrorCode } from './errors.js'
export {
  assertFieldValue,
  type EventFields,
  encodeComment,
  encodeData,
  encodeEvent,
  encodeIdOnly,
  encodeRetry,
  type Serializer,
  serializeData,
} from './frame.js'
export { Hub } from './hub.js'
export {
  type ConnectionInfo,
  DEFAULT_CLOSE_GRACE,
  DEFAULT_GAP_EVENT,
  DEFAULT_HEARTBEAT_INTERVAL,
  DEFAULT_MAX_EVENT_BYTES,
  DEFAULT_MAX_QUEUE_BYTES,
  DEFAULT_OVERLOAD_RETRY,
  DEFAULT_RETRY,
  type GapInfo,
  type HubOptions,
  type HubStats,
  type PublishInput,
  type SubscribeOptions,
} from './hub-options.js'
export type { StreamItem } from './iterable.js'
export {
  LAST_EVENT_ID_QUERY_PARAMETER,
  MAX_LAST_EVENT_ID_LENGTH,
  parseLastEventId,
  type ResumeId,
  readResumeId,
} from './last-event-id.js'
export { DEFAULT_MAX_RESPONSES } from './memory-responses.js'
export {
  createMemoryStore,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_EVENTS,
  DEFAULT_MAX_STREAMS,
  type HistoryOptions,
  MemoryHistory,
  MemoryStore,
  type MemoryStoreOptions,
} from './memory-store.js'
export { EVENT_STREAM_CONTENT_TYPE, responseHeaders } from './response-writer.js'
export {
  DEFAULT_END_EVENT,
  DEFAULT_RESPONSE_LEASE,
  DEFAULT_RESPONSE_MAX_BYTES,
  DEFAULT_RESPONSE_MAX_EVENTS,
  DEFAULT_RESPONSE_MAX_LIFETIME,
  DEFAULT_RESPONSE_TTL,
  type HubResponses,
  RESPONSE_STREAM_PREFIX,
  type ResponseHandle,
  type ResponseOptions,
  type ResponseProducer,
  type StartResponseOptions,
} from './responses.js'
export type {
  EventStreamRequest,
  EventStreamResponse,
  ResponseSource,
  ServeOptions,
  StreamSource,
} from './serve.js'
export type { SubscriberSink } from './sink.js'
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
export type { EventFilter, GapPolicy } from './subscriber.js'
export {
  DEFAULT_ERROR_REPORT_INTERVAL,
  type ThrottleErrorsOptions,
  throttleErrors,
} from './throttle-errors.js'
export { MAX_STREAM_NAME_LENGTH, MAX_TIMER_DELAY } from './validation.js'
