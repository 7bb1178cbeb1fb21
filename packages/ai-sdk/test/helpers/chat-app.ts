/**
 * What the AI SDK tests share: the SDK's own test model answering `w0 w1 … w{N-1}`, an Express or
 * Fastify chat server on a real socket, a `Chat` driven without a UI framework, and a TCP proxy
 * that cuts connections after a random number of body bytes. The SDK module is a parameter, so the
 * same tests run against `ai` 6 and 7.
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import type { Hub } from '@rewind/core'
import express from 'express'
import Fastify from 'fastify'
import { type ChatStreams, type ChatStreamsOptions, createChatStreams } from '../../src/index.js'

// biome-ignore lint/suspicious/noExplicitAny: the SDK's modules differ in types between majors
type Module = any

/** The SDK (`ai` or `ai7`) and its test module. */
export interface Sdk {
  ai: Module
  test: Module
}

/** The environment, typed for the variables these tests read. */
const env = process.env as { REWIND_AI_SDK?: string; SEED?: string; REDIS_URL?: string }

/** The SDK under test: `REWIND_AI_SDK` (`ai7` for the next major), else `ai`. */
export const SDK = env.REWIND_AI_SDK ?? 'ai'

/** The Redis of the cross-instance tests: `REDIS_URL`, else the local default. */
export const REDIS_URL = env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** The seed of a randomized run: `SEED` (to replay a failure), else a fresh one. */
export function runSeed(): number {
  return Number(env.SEED ?? Date.now() % 100_000)
}

export async function loadSdk(name = 'ai'): Promise<Sdk> {
  const major = Number(process.versions.node.split('.')[0])
  // ai 7 supports Node 22 and later only: running it on an older Node would test nothing real.
  if (name === 'ai7' && major < 22) throw new Error(`ai 7 needs Node 22 or later, this is ${process.version}`)
  return { ai: await import(name), test: await import(`${name}/test`) }
}

/** The model's stream parts for `w0 w1 … w{tokens-1}`, one word per text delta. */
export function modelParts(tokens: number): unknown[] {
  const deltas = Array.from({ length: tokens }, (_, i) => ({
    type: 'text-delta',
    id: 't0',
    delta: i === 0 ? 'w0' : ` w${i}`,
  }))
  return [
    { type: 'stream-start', warnings: [] },
    { type: 'text-start', id: 't0' },
    ...deltas,
    { type: 'text-end', id: 't0' },
    {
      type: 'finish',
      finishReason: { unified: 'stop', raw: 'stop' },
      usage: {
        inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
        outputTokens: { total: tokens, text: tokens, reasoning: 0 },
      },
    },
  ]
}

/** The SDK's mock language model (V3 in `ai` 6, V4 in 7), streaming `tokens` words every `interval` ms. */
export function mockModel(sdk: Sdk, tokens: number, interval: number): Module {
  const Mock = sdk.test.MockLanguageModelV4 ?? sdk.test.MockLanguageModelV3
  return new Mock({
    doStream: async () => ({
      stream: sdk.test.simulateReadableStream({ chunks: modelParts(tokens), chunkDelayInMs: interval }),
    }),
  })
}

export interface ChatServerOptions {
  hub: Hub<string | Promise<string>>
  sdk: Sdk
  tokens: number
  interval: number
  framework?: 'express' | 'fastify'
  answers?: ChatStreamsOptions['answers']
  /** Called with each answer's abort signal, when its producer starts. */
  onProduce?: (signal: AbortSignal) => void
}

export interface ChatServer {
  url: string
  chats: ChatStreams
  /** POSTs received on /api/chat. */
  posts: number
  close(): Promise<void>
}

/** A chat server on Express or Fastify, answering every prompt with the mock model. */
export async function startChatServer(options: ChatServerOptions): Promise<ChatServer> {
  const { sdk } = options
  const chats = createChatStreams({
    hub: options.hub,
    ...(options.answers === undefined ? {} : { answers: options.answers }),
  })
  const state = { posts: 0 }
  const start = async (body: { id: string; messages: unknown[] }): Promise<string> => {
    state.posts++
    const messages = await sdk.ai.convertToModelMessages(body.messages)
    // Deterministic, so runs of the same conversation compare byte for byte.
    const messageId = `answer-${body.messages.length}`
    return chats.start(body.id, (abortSignal) => {
      options.onProduce?.(abortSignal)
      return sdk.ai
        .streamText({ model: mockModel(sdk, options.tokens, options.interval), messages, abortSignal })
        .toUIMessageStream({ originalMessages: body.messages, generateMessageId: () => messageId })
    })
  }
  let url: string
  let close: () => Promise<void>
  if (options.framework === 'fastify') {
    const app = Fastify()
    app.post('/api/chat', async (request, reply) => {
      const body = request.body as { id: string; messages: unknown[] }
      const answer = await start(body)
      reply.hijack()
      chats.serve(request.raw, reply.raw, body.id, answer)
    })
    app.get('/api/chat/:id/stream', async (request, reply) => {
      reply.hijack()
      await chats.resume(request.raw, reply.raw, (request.params as { id: string }).id)
    })
    app.post('/api/chat/:id/stop', async (request, reply) => {
      reply.code((await chats.stop((request.params as { id: string }).id)) ? 202 : 204).send()
    })
    url = await app.listen({ port: 0, host: '127.0.0.1' })
    close = () => app.close()
  } else {
    const app = express()
    app.post('/api/chat', express.json({ limit: '1mb' }), async (req, res, next) => {
      try {
        const answer = await start(req.body)
        chats.serve(req, res, req.body.id, answer)
      } catch (error) {
        next(error)
      }
    })
    app.get('/api/chat/:id/stream', (req, res) => chats.resume(req, res, req.params.id))
    app.post('/api/chat/:id/stop', async (req, res) => {
      res.sendStatus((await chats.stop(req.params.id)) ? 202 : 204)
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    close = async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  }
  return {
    url,
    chats,
    get posts() {
      return state.posts
    },
    close,
  }
}

/** A `Chat` without a UI framework: the SDK's `AbstractChat` over a plain state. */
export function createChat(
  sdk: Sdk,
  init: { id: string; transport: unknown; onError?: (error: Error) => void; messages?: Module[] },
) {
  const { messages = [], ...rest } = init
  const state = {
    status: 'ready',
    error: undefined as Error | undefined,
    messages: structuredClone(messages) as Module[],
    pushMessage(message: Module) {
      state.messages = [...state.messages, message]
    },
    popMessage() {
      state.messages = state.messages.slice(0, -1)
    },
    replaceMessage(index: number, message: Module) {
      state.messages = [...state.messages.slice(0, index), message, ...state.messages.slice(index + 1)]
    },
    snapshot: <T>(thing: T): T => structuredClone(thing),
  }
  let ids = 0
  const TestChat = class extends sdk.ai.AbstractChat {} as new (init: unknown) => ChatHandle
  const chat = new TestChat({ ...rest, state, generateId: () => `id-${++ids}` })
  return { chat, state }
}

/** What the tests call on a chat (`AbstractChat`'s methods). */
export interface ChatHandle {
  readonly id: string
  sendMessage(message: { text: string }): Promise<void>
  resumeStream(): Promise<void>
  stop(): Promise<void>
}

/** A TCP proxy that cuts each connection after a random number of response body bytes. */
export interface CuttingProxy {
  url: string
  /** Connections cut so far. */
  cuts: number
  /** Whether connections are cut (off: a plain relay). */
  cutting: boolean
  close(): Promise<void>
}

export async function cuttingProxy(
  target: string,
  maxBodyBytes: number,
  random = Math.random,
  maxCuts = Number.POSITIVE_INFINITY,
  /** Cut only event streams: what a connection carries before one (a page, its script) passes. */
  eventStreamsOnly = false,
): Promise<CuttingProxy> {
  const { port, hostname } = new URL(target)
  const sockets = new Set<net.Socket>()
  const proxy: CuttingProxy = { url: '', cuts: 0, cutting: true, close: async () => {} }
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname)
    sockets.add(client)
    sockets.add(upstream)
    client.on('close', () => sockets.delete(client))
    upstream.on('close', () => sockets.delete(upstream))
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.pipe(upstream)
    const budget = 1 + Math.floor(random() * maxBodyBytes)
    let head = ''
    let body = -1
    upstream.on('data', (data: Buffer) => {
      if (client.destroyed) return
      if (!proxy.cutting || proxy.cuts >= maxCuts) {
        client.write(data)
        return
      }
      let chunk = data
      if (body < 0) {
        head += data.toString('latin1')
        const from = eventStreamsOnly ? head.search(/\r\ncontent-type: text\/event-stream/i) : 0
        const end = from === -1 ? -1 : head.indexOf('\r\n\r\n', from)
        if (end === -1) {
          // Only the tail can still hold the start of the header being looked for.
          if (eventStreamsOnly && from === -1) head = head.slice(-64)
          client.write(data)
          return
        }
        body = 0
        const headBytes = data.length - (head.length - end - 4)
        client.write(data.subarray(0, headBytes))
        chunk = data.subarray(headBytes)
      }
      if (body + chunk.length <= budget) {
        body += chunk.length
        client.write(chunk)
        return
      }
      // Cut inside this piece: what fits goes through, then both sides are torn down.
      client.write(chunk.subarray(0, budget - body))
      body = budget
      proxy.cuts++
      client.destroy()
      upstream.destroy()
    })
    upstream.on('end', () => client.end())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  proxy.close = async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  }
  return proxy
}

/**
 * POSTs one user message (`u1`, `text`) of chat `chatId` to the chat app at `url`, as the SDK's
 * transport does; `extra` fields join the body.
 */
export function postChat(
  url: string,
  chatId: string,
  text = 'hello',
  extra: Record<string, unknown> = {},
): Promise<Response> {
  return fetch(`${url}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      id: chatId,
      messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text }] }],
      ...extra,
    }),
  })
}
