/**
 * A chat's answers as Rewind responses: the UI message stream of each answer is produced into the
 * hub independently of any connection, one event per chunk, and served from that log to the POST
 * that asked, to the resume GET (`DefaultChatTransport`'s, or {@link RewindChatTransport}'s with
 * `Last-Event-ID`) on any instance, until its terminal chunk and `[DONE]`. Stop is a cancel through
 * the store, so it reaches the producer wherever it runs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  type Hub,
  RESPONSE_DEFAULTS,
  RewindError,
  type StartResponseOptions,
  type Subscription,
} from '@rewind/core'
import { type ActiveAnswers, memoryActiveAnswers } from './active-answers.js'
import { type FrameNames, uiMessageStreamView } from './wire.js'

/** A UI message chunk as the SDK defines it (`UIMessageChunk` from `ai`); stored as its JSON. */
export type UIChunk = { readonly type: string } & object

/** What an answer's chunks come from: what `toUIMessageStream()` or `createUIMessageStream()` return. */
export type UIChunkStream = ReadableStream<UIChunk> | AsyncIterable<UIChunk>

/**
 * The source of an answer: a stream of chunks, or a function that is given the answer's
 * `AbortSignal` (aborted by a stop, from any instance) and returns one. Pass the signal to the
 * model (`streamText({ abortSignal })`), so a stop ends the generation too.
 */
export type AnswerSource = UIChunkStream | ((signal: AbortSignal) => UIChunkStream | Promise<UIChunkStream>)

/** Options of {@link createChatStreams}. */
export interface ChatStreamsOptions extends FrameNames {
  /** The hub that keeps the answers (`events.hub` in Express, `fastify.sse` in Fastify). */
  hub: Hub<string | Promise<string>>
  /**
   * Where each chat's latest answer id is kept. With more than one instance, share it
   * ({@link redisActiveAnswers}).
   * @defaultValue {@link memoryActiveAnswers}`()`
   */
  answers?: ActiveAnswers
  /**
   * How long a chat remembers its latest answer, in milliseconds: as long as the answer can be served.
   * @defaultValue 3900000 (the default `maxLifetime` plus `ttl` of a response: 65 minutes)
   */
  ttl?: number
}

/** Options of {@link ChatStreams.start}: the answer's id and bounds (see `StartResponseOptions`). */
export type StartAnswerOptions = StartResponseOptions

/** The answers of a chat endpoint: start, serve, resume, stop. See {@link createChatStreams}. */
export interface ChatStreams {
  /**
   * Starts an answer of chat `chatId`: its producer runs on this instance until the stream ends or
   * the answer is stopped, whoever is connected. Resolves with the answer's id.
   */
  start(chatId: string, source: AnswerSource, options?: StartAnswerOptions): Promise<string>
  /**
   * Serves answer `answerId` of chat `chatId` as a UI message stream: from its first chunk (or
   * after the request's `Last-Event-ID`) to its terminal chunk and `[DONE]`. The response's
   * `Content-Location` is the URL that resumes this very answer. Write nothing to `res` before.
   */
  serve(req: IncomingMessage, res: ServerResponse, chatId: string, answerId: string): Subscription
  /**
   * The resume GET (`{api}/{chatId}/stream`): 204 when the chat has no active answer, else its
   * answer from the first chunk (or after `Last-Event-ID`), then live, then `[DONE]`. With
   * `?answer=<id>` (what {@link ChatStreams.serve}'s `Content-Location` says) that answer, even
   * once ended, so a client that dropped just before the end gets it.
   */
  resume(req: IncomingMessage, res: ServerResponse, chatId: string): Promise<void>
  /**
   * Stops the chat's latest answer (or `answerId`, if given: a stale stop then does nothing to a
   * newer answer), wherever its producer runs. Resolves with whether an active answer was stopped.
   */
  stop(chatId: string, answerId?: string): Promise<boolean>
}

/** Chat ids go into URLs and keys: the characters of a response id. */
const CHAT_ID = /^[A-Za-z0-9._~-]{1,128}$/

/**
 * Serves AI SDK chats from a Rewind hub.
 *
 * @example
 * ```ts
 * const chats = createChatStreams({ hub: events.hub })
 * app.post('/api/chat', express.json(), async (req, res) => {
 *   const { id, messages } = req.body
 *   const modelMessages = await convertToModelMessages(messages)
 *   const answer = await chats.start(id, (abortSignal) =>
 *     streamText({ model, messages: modelMessages, abortSignal })
 *       .toUIMessageStream({ originalMessages: messages }))
 *   chats.serve(req, res, id, answer)
 * })
 * app.get('/api/chat/:id/stream', (req, res) => chats.resume(req, res, req.params.id))
 * app.post('/api/chat/:id/stop', async (req, res) => res.sendStatus((await chats.stop(req.params.id)) ? 202 : 204))
 * ```
 */
export function createChatStreams(options: ChatStreamsOptions): ChatStreams {
  const { hub } = options
  if (hub === undefined || typeof hub.serve !== 'function') {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      'createChatStreams needs { hub } (events.hub, fastify.sse)',
      {
        field: 'hub',
      },
    )
  }
  const answers = options.answers ?? memoryActiveAnswers()
  const ttl = options.ttl ?? RESPONSE_DEFAULTS.maxLifetime + RESPONSE_DEFAULTS.ttl
  const names: FrameNames = { gapEvent: options.gapEvent, endEvent: options.endEvent }

  async function start(
    chatId: string,
    source: AnswerSource,
    startOptions?: StartAnswerOptions,
  ): Promise<string> {
    assertChatId(chatId)
    const handle = await hub.responses.start(async function* answer(signal) {
      const stream = await (typeof source === 'function' ? source(signal) : source)
      for await (const chunk of iterate(stream)) yield JSON.stringify(chunk)
    }, startOptions)
    await answers.set(chatId, handle.id, ttl)
    return handle.id
  }

  function serve(req: IncomingMessage, res: ServerResponse, chatId: string, answerId: string): Subscription {
    if (!res.headersSent) res.setHeader('content-location', resumeLocation(req, chatId, answerId))
    return hub.serve(req, uiMessageStreamView(res, names), { response: answerId })
  }

  async function resume(req: IncomingMessage, res: ServerResponse, chatId: string): Promise<void> {
    const given = new URL(req.url ?? '/', 'http://localhost').searchParams.get('answer')
    try {
      let answerId = given ?? undefined
      if (answerId === undefined && CHAT_ID.test(chatId)) answerId = await answers.get(chatId)
      // The SDK's resume sends no position: it wants an answer that is still being written.
      if (answerId !== undefined && given === null && req.headers['last-event-id'] === undefined) {
        if ((await hub.responses.status(answerId)) !== 'active') answerId = undefined
      }
      if (answerId === undefined) {
        res.writeHead(204, { 'cache-control': 'no-store' })
        res.end()
        return
      }
      serve(req, res, chatId, answerId)
    } catch {
      if (res.headersSent) return
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' })
      res.end(JSON.stringify({ error: 'the store is unavailable; try again' }))
    }
  }

  async function stop(chatId: string, answerId?: string): Promise<boolean> {
    if (!CHAT_ID.test(chatId)) return false
    const latest = await answers.get(chatId)
    if (latest === undefined || (answerId !== undefined && answerId !== latest)) return false
    // cancel() resolves with the status afterwards, `cancelled` for an answer stopped before too.
    if ((await hub.responses.status(latest)) !== 'active') return false
    return (await hub.responses.cancel(latest)) === 'cancelled'
  }

  return { start, serve, resume, stop }
}

function assertChatId(chatId: unknown): asserts chatId is string {
  if (typeof chatId !== 'string' || !CHAT_ID.test(chatId)) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `a chat id must be 1 to 128 characters among A-Z a-z 0-9 . _ ~ - (got ${JSON.stringify(chatId)}); the SDK's generated ids are`,
      { field: 'chatId' },
    )
  }
}

/**
 * The URL that resumes this answer: `{api}/{chatId}/stream?answer=<id>`, from the POST's path
 * (`{api}`) or the resume GET's (`{api}/{chatId}/stream`).
 */
function resumeLocation(req: IncomingMessage, chatId: string, answerId: string): string {
  // Express's `req.url` is relative to a router's mount point; `originalUrl` is what the client asked.
  const asked = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/'
  const path = new URL(asked, 'http://localhost').pathname
  const base = req.method === 'GET' ? path : `${path.replace(/\/$/, '')}/${encodeURIComponent(chatId)}/stream`
  return `${base}?answer=${encodeURIComponent(answerId)}`
}

/** The chunks of a web stream or an async iterable; cancelling the loop cancels the stream. */
async function* iterate(stream: UIChunkStream): AsyncGenerator<UIChunk> {
  if (Symbol.asyncIterator in stream) {
    yield* stream as AsyncIterable<UIChunk>
    return
  }
  const reader = (stream as ReadableStream<UIChunk>).getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      yield value
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
}
