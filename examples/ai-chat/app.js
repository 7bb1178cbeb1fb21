/**
 * The chat app, on Express or on Fastify: the page (useChat with the Rewind transport), and the three
 * endpoints `DefaultChatTransport` and `RewindChatTransport` speak:
 *
 *   POST /api/chat                 { id, messages }: starts the answer, streams it
 *   GET  /api/chat/:id/stream      the chat's active answer (204 if none), from its first chunk or
 *                                  after Last-Event-ID, then live, then [DONE]
 *   POST /api/chat/:id/stop        stops the answer wherever it is produced (202; 204 if none active)
 *
 * Answers are Rewind responses: with a shared store (Redis) any instance resumes and stops them.
 */
import { readFileSync } from 'node:fs'
import { createChatStreams, memoryActiveAnswers, redisActiveAnswers } from '@rewind/ai-sdk'
import { sse } from '@rewind/express'
import { ssePlugin } from '@rewind/fastify'
import { createRedisStore } from '@rewind/redis'
import { convertToModelMessages, generateId, streamText } from 'ai'
import express from 'express'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { wordModel } from './model.js'

/** @import { ChatStreams } from '@rewind/ai-sdk' */
/** @import { IncomingMessage, ServerResponse } from 'node:http' */

/** Where `pnpm --filter ai-chat build` writes the page's script (React, useChat and the transport). */
export const PAGE_SCRIPT = new URL('./dist/page.js', import.meta.url)

const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Rewind · AI SDK chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
  li { list-style: none; margin: .5rem 0; padding: .5rem .75rem; border-radius: .5rem; background: #f3f3f3; }
  li[data-role="user"] { background: #e4efff; }
  form { display: flex; gap: .5rem; } input { flex: 1; }
  #status { color: #666; }
</style>
</head>
<body>
<div id="root"></div>
<script type="module" src="/page.js"></script>
</body>
</html>
`

/**
 * @typedef {object} ChatSettings
 * @property {number} tokens words in each answer (MOCK_TOKENS)
 * @property {number} interval milliseconds between two words (MOCK_INTERVAL)
 * @property {{ url: string, prefix: string } | undefined} [redis] share answers between instances
 * @property {number} [lease] milliseconds a producer's lease lasts (RESPONSE_LEASE)
 * @property {number} [retry] the reconnection delay sent to clients, in milliseconds (the library's default)
 * @property {URL} [pageScript] the built page script to serve ({@link PAGE_SCRIPT})
 */

/**
 * What both frameworks share: the store, the chats, the producer of an answer, and the page.
 * @param {ChatSettings} settings
 */
function chatParts(settings) {
  const redis = settings.redis === undefined ? undefined : new Redis(settings.redis.url)
  const store =
    settings.redis === undefined
      ? undefined
      : createRedisStore({ redis: settings.redis.url, prefix: settings.redis.prefix })
  const answers =
    redis === undefined || settings.redis === undefined
      ? memoryActiveAnswers()
      : redisActiveAnswers(redis, { prefix: settings.redis.prefix })
  const hubOptions = {
    ...(store === undefined ? {} : { store }),
    ...(settings.lease === undefined ? {} : { responses: { lease: settings.lease } }),
    ...(settings.retry === undefined ? {} : { retry: settings.retry }),
  }
  /**
   * Starts the answer to a chat request's body; a bad body gets a 400 before anything starts.
   * @param {ChatStreams} chats
   * @param {unknown} body
   * @returns {Promise<{ status: 400, error: string } | { status: 200, chatId: string, answer: string }>}
   */
  async function startAnswer(chats, body) {
    const { id, messages } = /** @type {{ id?: unknown, messages?: unknown }} */ (body ?? {})
    if (typeof id !== 'string' || !Array.isArray(messages)) {
      return { status: 400, error: 'the body is { id: string, messages: UIMessage[] }' }
    }
    let modelMessages
    try {
      modelMessages = await convertToModelMessages(messages)
    } catch (error) {
      return { status: 400, error: `messages: ${/** @type {Error} */ (error).message}` }
    }
    const answer = await chats.start(id, (abortSignal) =>
      streamText({
        model: wordModel(settings.tokens, settings.interval),
        messages: modelMessages,
        abortSignal,
      }).toUIMessageStream({ originalMessages: messages, generateMessageId: generateId }),
    )
    return { status: 200, chatId: id, answer }
  }
  const pageScript = readPageScript(settings.pageScript ?? PAGE_SCRIPT)
  return {
    hubOptions,
    answers,
    startAnswer,
    pageScript,
    /** Closes the Redis connections (after the hub, which does not close a store it was given). */
    close: async () => {
      await store?.close()
      await redis?.quit()
    },
  }
}

/**
 * The built page script; the example must have been built (`pnpm --filter ai-chat build`).
 * @param {URL} file
 */
function readPageScript(file) {
  try {
    return readFileSync(file)
  } catch {
    throw new Error(
      'the page is not built: run `pnpm --filter ai-chat build` (or `pnpm --filter ai-chat start`)',
    )
  }
}

/**
 * The app on Express. `app.locals.close()` ends the streams (producers end with an `error` chunk)
 * and closes the server given.
 * @param {ChatSettings} settings
 */
export function createExpressApp(settings) {
  const parts = chatParts(settings)
  const events = sse(parts.hubOptions)
  const chats = createChatStreams({ hub: events.hub, answers: parts.answers })
  const app = express()
  app.disable('x-powered-by')
  app.get('/', (_req, res) => {
    res.type('html').send(PAGE_HTML)
  })
  app.get('/page.js', (_req, res) => {
    res.type('js').send(parts.pageScript)
  })
  app.post('/api/chat', express.json({ limit: '1mb' }), async (req, res, next) => {
    try {
      const started = await parts.startAnswer(chats, req.body)
      if (started.status === 400) return res.status(400).json({ error: started.error })
      chats.serve(req, res, started.chatId, started.answer)
    } catch (error) {
      next(error)
    }
  })
  app.get('/api/chat/:id/stream', (req, res) => chats.resume(req, res, req.params.id))
  app.post('/api/chat/:id/stop', async (req, res, next) => {
    try {
      res.sendStatus((await chats.stop(req.params.id)) ? 202 : 204)
    } catch (error) {
      next(error)
    }
  })
  /** @param {import('node:http').Server} [server] */
  app.locals.close = async (server) => {
    await events.close(server === undefined ? {} : { server })
    await parts.close()
  }
  return app
}

/**
 * The same app on Fastify; `app.close()` ends the streams and the server.
 * @param {ChatSettings} settings
 */
export async function createFastifyApp(settings) {
  const parts = chatParts(settings)
  const app = Fastify()
  await app.register(ssePlugin, parts.hubOptions)
  const chats = createChatStreams({ hub: app.sse, answers: parts.answers })
  app.addHook('onClose', parts.close)
  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE_HTML))
  app.get('/page.js', (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(parts.pageScript),
  )
  app.post('/api/chat', async (request, reply) => {
    const started = await parts.startAnswer(chats, request.body)
    if (started.status === 400) return reply.code(400).send({ error: started.error })
    reply.hijack()
    chats.serve(rawRequest(request.raw), rawResponse(reply.raw), started.chatId, started.answer)
    return reply
  })
  app.get('/api/chat/:id/stream', async (request, reply) => {
    reply.hijack()
    await chats.resume(
      rawRequest(request.raw),
      rawResponse(reply.raw),
      /** @type {{ id: string }} */ (request.params).id,
    )
    return reply
  })
  app.post('/api/chat/:id/stop', async (request, reply) => {
    const stopped = await chats.stop(/** @type {{ id: string }} */ (request.params).id)
    return reply.code(stopped ? 202 : 204).send()
  })
  return app
}

/** Fastify's raw request, as Node's (Fastify types it for HTTP/2 too). @param {unknown} req */
const rawRequest = (req) => /** @type {IncomingMessage} */ (req)
/** Fastify's raw response, as Node's. @param {unknown} res */
const rawResponse = (res) => /** @type {ServerResponse} */ (res)
