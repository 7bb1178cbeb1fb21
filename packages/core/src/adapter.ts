/**
 * `@rewind/core/adapter`: for authors of framework adapters and history stores. Applications need
 * none of it: `@rewind/core` has what they use. It holds what the adapters and stores of this
 * repository are built from, and nothing else; the types an application also sees (`Hub`,
 * `HubOptions`, `ResumeId`, `GapReason`) are imported from `@rewind/core`.
 */
export { hubFromOptions } from './create-hub.js'
export { describeError } from './errors.js'
export { readResumeId } from './last-event-id.js'
export { RESPONSE_STREAM_PREFIX } from './responses.js'
export { ServedStreams } from './served-streams.js'
// What the stores do the same way: one copy for all of them.
export {
  AttachedHub,
  boundOption,
  decodeStoredData,
  encodeStoredFrame,
  positiveDelay,
  type ResolvedSharedStoreOptions,
  readCount,
  resolveSharedStoreOptions,
  SharedResponseRecords,
  type SharedStoreOptions,
} from './shared-store.js'
export { type SinkAnswer, type SinkServeOptions, serveSink } from './sink-serve.js'
export type {
  AsyncHistoryStore,
  HistoryStore,
  NewEvent,
  Position,
  ReadResult,
  ResponseEnd,
  ResponseLimits,
  ResponseRecords,
  ResponseState,
  ResponseStatus,
  StoreDelivery,
  StoredEvent,
  SyncHistoryStore,
} from './store.js'
export { storeErrorReport } from './throttle-errors.js'
export type { EventSink } from './types.js'
export { describeValue, positiveInteger, timerDelay } from './validation.js'
export { eventStreamHeaders } from './wire-writer.js'
