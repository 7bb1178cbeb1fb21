/**
 * `@rewind/core`: what an application needs to run a hub. Framing is in `@rewind/core/frame`;
 * what adapters and stores are built from is in `@rewind/core/adapter`. The list, with the reason
 * for each name, is in the package README ("Exports"); packages/core/test/exports.test.ts pins it.
 */
export { createHub } from './create-hub.js'
export { REWIND_ERROR_CODES, RewindError, type RewindErrorCode } from './errors.js'
export type { Serializer } from './frame.js'
export type { Hub } from './hub.js'
export {
  HUB_DEFAULTS,
  type HubOptions,
} from './hub-options.js'
export type { StreamItem } from './iterable.js'
export type { ResumeId } from './last-event-id.js'
export type { HistoryOptions } from './memory-history.js'
export {
  createMemoryStore,
  MEMORY_STORE_DEFAULTS,
  type MemoryStore,
  type MemoryStoreOptions,
} from './memory-store.js'
export type { ResponseProducer } from './response-producer.js'
export {
  type HubResponses,
  RESPONSE_DEFAULTS,
  type ResponseHandle,
  type ResponseOptions,
  type StartResponseOptions,
} from './responses.js'
export type { ResponseSource, ServeOptions, StreamSource } from './serve.js'
export type { GapReason, ResponseEnd, ResponseStatus, StoredEvent } from './store.js'
export {
  type ThrottleErrorsOptions,
  throttleErrors,
} from './throttle-errors.js'
export type {
  CloseReason,
  ConnectionInfo,
  EventFilter,
  EventSink,
  GapInfo,
  GapPolicy,
  HubStats,
  PublishInput,
  SubscribeOptions,
  Subscription,
} from './types.js'
export { MAX_STREAM_NAME_LENGTH, MAX_TIMER_DELAY } from './validation.js'
