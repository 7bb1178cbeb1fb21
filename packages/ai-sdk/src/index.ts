/**
 * `@rewind/ai-sdk`: AI SDK chats whose answers are Rewind responses, served as the SDK's UI message
 * stream. The page's transport is in `@rewind/ai-sdk/client`.
 */
export {
  type ActiveAnswers,
  DEFAULT_MAX_CHATS,
  type MemoryActiveAnswersOptions,
  memoryActiveAnswers,
  type RedisActiveAnswersOptions,
  type RedisKeyValue,
  redisActiveAnswers,
} from './active-answers.js'
export {
  type AnswerSource,
  type ChatStreams,
  type ChatStreamsOptions,
  createChatStreams,
  type StartAnswerOptions,
  type UIChunk,
  type UIChunkStream,
} from './chat-streams.js'
export {
  type FrameNames,
  FrameTranslator,
  GAP_PART,
  UI_MESSAGE_STREAM_HEADER,
  uiMessageStreamView,
} from './wire.js'
