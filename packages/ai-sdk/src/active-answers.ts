/**
 * Which answer a chat is on: the resume GET and the stop POST name a chat, not an answer. One
 * entry per chat, overwritten by each new answer, kept as long as an answer can be served.
 */
import { RewindError } from '@rewind/core'

/** Where each chat's latest answer id is kept; shared by every instance that serves the chat. */
export interface ActiveAnswers {
  /** The id of the chat's latest answer, or `undefined` if none is known. */
  get(chatId: string): Promise<string | undefined> | string | undefined
  /** Makes `answerId` the chat's latest answer, for `ttl` milliseconds. */
  set(chatId: string, answerId: string, ttl: number): Promise<unknown> | unknown
}

/** Default of {@link MemoryActiveAnswersOptions.maxChats}. */
export const DEFAULT_MAX_CHATS = 10_000

/** Options of {@link memoryActiveAnswers}. */
export interface MemoryActiveAnswersOptions {
  /**
   * Most chats remembered; past it the chat set longest ago is forgotten (its resume GET answers 204).
   * @defaultValue 10000
   */
  maxChats?: number
}

/**
 * Keeps each chat's latest answer in this process (one instance, or tests). Entries expire after
 * their `ttl`, checked when read, and the oldest goes first past `maxChats`.
 */
export function memoryActiveAnswers(options: MemoryActiveAnswersOptions = {}): ActiveAnswers {
  const maxChats = options.maxChats ?? DEFAULT_MAX_CHATS
  if (!Number.isSafeInteger(maxChats) || maxChats < 1) {
    throw new RewindError('ERR_INVALID_ARGUMENT', `maxChats must be a positive integer, got ${maxChats}`, {
      field: 'maxChats',
    })
  }
  const chats = new Map<string, { answerId: string; expires: number }>()
  return {
    get(chatId) {
      const entry = chats.get(chatId)
      if (entry === undefined) return undefined
      if (entry.expires > Date.now()) return entry.answerId
      chats.delete(chatId)
      return undefined
    },
    set(chatId, answerId, ttl) {
      chats.delete(chatId)
      chats.set(chatId, { answerId, expires: Date.now() + ttl })
      if (chats.size > maxChats) chats.delete(chats.keys().next().value as string)
    },
  }
}

/** The part of a Redis client (ioredis) that {@link redisActiveAnswers} uses. */
export interface RedisKeyValue {
  /** `GET key`. */
  get(key: string): Promise<string | null>
  /** `SET key value PX milliseconds`. */
  set(key: string, value: string, mode: 'PX', milliseconds: number): Promise<unknown>
}

/** Options of {@link redisActiveAnswers}. */
export interface RedisActiveAnswersOptions {
  /**
   * Prefix of the keys (one per chat: `<prefix>rewind:chat:<chatId>`); use the store's prefix.
   * @defaultValue `''`
   */
  prefix?: string
}

/**
 * Keeps each chat's latest answer in Redis, so any instance resumes and stops it. One string key
 * per chat with a TTL (`SET ... PX`): nothing outlives the answer it points to.
 */
export function redisActiveAnswers(
  redis: RedisKeyValue,
  options: RedisActiveAnswersOptions = {},
): ActiveAnswers {
  const prefix = options.prefix ?? ''
  const key = (chatId: string): string => `${prefix}rewind:chat:${chatId}`
  return {
    async get(chatId) {
      return (await redis.get(key(chatId))) ?? undefined
    },
    set(chatId, answerId, ttl) {
      return redis.set(key(chatId), answerId, 'PX', ttl)
    },
  }
}
