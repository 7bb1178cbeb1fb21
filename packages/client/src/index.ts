export { type BackoffPolicy, backoffDelay } from './backoff.js'
export { REWIND_CLIENT_ERROR_CODES, RewindClientError, type RewindClientErrorCode } from './errors.js'
export { createEventSource, RewindEventSource } from './event-source.js'
export {
  EndEvent,
  type EndReason,
  type EventMap,
  GapEvent,
  type GapItem,
  type GapReason,
  type MessageItem,
  OpenEvent,
  SourceErrorEvent,
  type SourceEventMap,
  type SourceItem,
  SourceMessageEvent,
} from './events.js'
export {
  DEFAULT_BACKOFF_FACTOR,
  DEFAULT_DEDUPE_WINDOW,
  DEFAULT_END_EVENT,
  DEFAULT_GAP_EVENT,
  DEFAULT_MAX_EVENT_SIZE,
  DEFAULT_MAX_RETRY_DELAY,
  DEFAULT_RETRY,
  type EventSourceOptions,
  type HeadersValue,
  isRetryableStatus,
  type RequestContext,
  type ResponseInfo,
  type ResumeContext,
  type ResumeRequest,
} from './options.js'
export { type PositionStore, sessionStorageStore } from './position.js'
