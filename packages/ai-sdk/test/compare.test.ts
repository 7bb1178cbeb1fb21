/**
 * The figures of docs/ai-sdk.md, measured on the same cases for three setups: the Rewind server with
 * the Rewind transport, the Rewind server with the SDK's unmodified `DefaultChatTransport`, and the
 * SDK's documented resumable setup (`DefaultChatTransport` + `resumable-stream` over Redis, the
 * POST's SSE text tee'd into `createNewResumableStream` as the SDK's docs do). Each case asserts
 * what the docs claim, so the comparison cannot rot; `COMPARE_RUNS=50` measures more runs and the
 * table is printed.
 *
 * Needs Redis at REDIS_URL (default redis://127.0.0.1:6379); without it, skipped loudly outside CI.
 */
import { Readable } from 'node:stream'
import { createHub, type Hub } from '@rewind/core'
import { createRedisStore } from '@rewind/redis'
import express from 'express'
import { Redis } from 'ioredis'
import { createResumableStreamContext } from 'resumable-stream/ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seededRandom } from '../../../test/support/random.js'
import { redisAnswers } from '../../../test/support/services.js'
import { sleep } from '../../../test/support/wait.js'
import { RewindChatTransport } from '../src/client.js'
import { redisActiveAnswers } from '../src/index.js'
import {
  type ChatServer,
  createChat,
  cuttingProxy,
  loadSdk,
  mockModel,
  postChat,
  REDIS_URL,
  runSeed,
  type Sdk,
  startChatServer,
} from './helpers/chat-app.js'

const env = process.env as { COMPARE_RUNS?: string }
const RUNS = Number(env.COMPARE_RUNS ?? 8)
const TOKENS = 40
const INTERVAL = 2

const available = await redisAnswers(REDIS_URL, 'ai-sdk comparison')

interface Baseline {
  url: string
  /** Redis memory of the resumable streams' keys. */
  redisKeys(): Promise<string[]>
  /** Pretends the producing process died: its Redis connections and its sockets go. */
  die(): void
  close(): Promise<void>
}

/**
 * The SDK's documented resumable server (ai-sdk.dev/docs/ai-sdk-ui/chatbot-resume-streams), on
 * Express: the POST pipes the UI message stream and hands a tee of its SSE text to
 * `createNewResumableStream`; the chat's active stream id is kept in `active` (the docs' database);
 * the GET answers 204 without one, else `resumeExistingStream`.
 */
async function startBaseline(sdk: Sdk, prefix: string, active: Map<string, string>): Promise<Baseline> {
  const publisher = new Redis(REDIS_URL)
  const subscriber = new Redis(REDIS_URL)
  const context = createResumableStreamContext({ waitUntil: null, publisher, subscriber, keyPrefix: prefix })
  const app = express()
  app.post('/api/chat', express.json(), async (req, res) => {
    const { id, messages } = req.body
    const modelMessages = await sdk.ai.convertToModelMessages(messages)
    const result = sdk.ai.streamText({ model: mockModel(sdk, TOKENS, INTERVAL), messages: modelMessages })
    sdk.ai.pipeUIMessageStreamToResponse({
      response: res,
      stream: result.toUIMessageStream({
        originalMessages: messages,
        generateMessageId: () => `answer-${messages.length}`,
        onFinish: () => active.delete(id),
      }),
      async consumeSseStream({ stream }: { stream: ReadableStream<string> }) {
        const streamId = sdk.ai.generateId()
        active.set(id, streamId)
        await context.createNewResumableStream(streamId, () => stream)
      },
    })
  })
  app.get('/api/chat/:id/stream', async (req, res) => {
    const streamId = active.get(req.params.id)
    const stream = streamId === undefined ? undefined : await context.resumeExistingStream(streamId)
    // The e2e example's guard: a done stream (null) or an unknown one must be a 204, never an empty 200.
    if (stream === undefined || stream === null) {
      res.sendStatus(204)
      return
    }
    res.writeHead(200, sdk.ai.UI_MESSAGE_STREAM_HEADERS)
    Readable.fromWeb(stream.pipeThrough(new TextEncoderStream()) as never).pipe(res)
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    redisKeys: () => publisher.keys(`${prefix}*`),
    die() {
      // Nothing it would publish reaches Redis any more, and its sockets are gone.
      publisher.publish = (async () => 0) as never
      server.closeAllConnections()
    },
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      publisher.disconnect()
      subscriber.disconnect()
    },
  }
}

/** The size of an uncut answer's body from the server at `url`. */
async function bodyBytes(url: string): Promise<number> {
  const response = await postChat(url, `size-${Math.random().toString(36).slice(2)}`)
  return Buffer.byteLength(await response.text())
}

/** How a run ended against the uncut messages. */
type Outcome = 'exact' | 'short' | 'duplicated' | 'other'

function outcome(messages: unknown[], expected: string): Outcome {
  const json = JSON.stringify(messages)
  if (json === expected) return 'exact'
  const assistants = (messages as { role: string }[]).filter((m) => m.role === 'assistant')
  const text = JSON.stringify(assistants)
  if (assistants.length > 1 || /\b(w\d+)\b.*\b\1\b/.test(text)) return 'duplicated'
  if (expected.startsWith(json.slice(0, 40)) && json.length < expected.length) return 'short'
  return 'other'
}

function tally(outcomes: Outcome[]): Record<Outcome, number> {
  const counts: Record<Outcome, number> = { exact: 0, short: 0, duplicated: 0, other: 0 }
  for (const value of outcomes) counts[value]++
  return counts
}

describe.runIf(available)('Rewind and the SDK’s resumable setup, side by side', () => {
  const prefix = `test:ai-sdk-compare:${process.pid}:${Date.now()}:`
  let sdk: Sdk
  let redis: Redis
  let hub: Hub<Promise<string>>
  let rewind: ChatServer
  let baseline: Baseline
  const active = new Map<string, string>()
  const figures: {
    drop?: unknown
    reload?: unknown
    stop?: unknown
    memory?: unknown
    instanceLoss?: unknown
  } = {}
  let expected: string

  beforeAll(async () => {
    sdk = await loadSdk()
    redis = new Redis(REDIS_URL)
    hub = createHub({ store: createRedisStore({ redis: REDIS_URL, prefix }), heartbeatInterval: 60_000 })
    rewind = await startChatServer({
      hub,
      sdk,
      tokens: TOKENS,
      interval: INTERVAL,
      answers: redisActiveAnswers(redis, { prefix }),
    })
    baseline = await startBaseline(sdk, `${prefix}rs`, active)
  })
  afterAll(async () => {
    console.log(`ai-sdk comparison (${RUNS} runs per case):\n${JSON.stringify(figures, null, 2)}`)
    await hub?.close()
    await rewind?.close()
    await baseline?.close()
    if (redis !== undefined) {
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    }
  })

  const setups = {
    rewind: (url: string) => new RewindChatTransport({ api: `${url}/api/chat`, retry: 5, maxRetryDelay: 20 }),
    default: (url: string) => new sdk.ai.DefaultChatTransport({ api: `${url}/api/chat` }),
  }
  const chatId = () => `cmp-${Math.random().toString(36).slice(2)}`

  it('drop mid-answer: only the Rewind transport converges; the default transport ends short', async () => {
    const uncut = createChat(sdk, { id: chatId(), transport: setups.rewind(rewind.url) })
    await uncut.chat.sendMessage({ text: 'hello' })
    expected = JSON.stringify(uncut.state.messages)
    const seed = runSeed()
    const random = seededRandom(seed)
    const cases = [
      ['rewind server, Rewind transport', rewind.url, setups.rewind],
      ['rewind server, DefaultChatTransport', rewind.url, setups.default],
      ['resumable-stream, DefaultChatTransport', baseline.url, setups.default],
    ] as const
    const drop: Record<string, Record<Outcome, number>> = {}
    for (const [name, url, transport] of cases) {
      // One cut per answer, anywhere in its body (the two servers' bodies differ in size).
      const size = await bodyBytes(url)
      const outcomes: Outcome[] = []
      for (let i = 0; i < RUNS; i++) {
        const proxy = await cuttingProxy(url, Math.floor(size * 0.95), random, 1)
        const { chat, state } = createChat(sdk, { id: chatId(), transport: transport(proxy.url) })
        await chat.sendMessage({ text: 'hello' }).catch(() => {})
        outcomes.push(outcome(state.messages, expected))
        await proxy.close()
      }
      drop[name] = tally(outcomes)
    }
    figures.drop = { seed, ...drop }
    expect(drop['rewind server, Rewind transport']!.exact).toBe(RUNS)
    expect(drop['rewind server, DefaultChatTransport']!.exact).toBeLessThan(RUNS)
    expect(drop['resumable-stream, DefaultChatTransport']!.exact).toBeLessThan(RUNS)
  })

  it('reload mid-answer: every setup replays from the first chunk into the same message', async () => {
    const cases = [
      ['rewind server, Rewind transport', rewind.url, setups.rewind],
      ['rewind server, DefaultChatTransport', rewind.url, setups.default],
      ['resumable-stream, DefaultChatTransport', baseline.url, setups.default],
    ] as const
    const reload: Record<string, unknown> = {}
    for (const [name, url, transport] of cases) {
      const outcomes: Outcome[] = []
      for (let i = 0; i < RUNS; i++) {
        const id = chatId()
        const first = createChat(sdk, { id, transport: transport(url) })
        const sending = first.chat.sendMessage({ text: 'hello' }).catch(() => {})
        // The page goes away mid-answer, with what it had saved.
        while (JSON.stringify(first.state.messages).split(' w').length < 8) await sleep(2)
        const saved = structuredClone(first.state.messages)
        await first.chat.stop()
        await sending
        const second = createChat(sdk, { id, transport: transport(url), messages: saved })
        await second.chat.resumeStream()
        outcomes.push(outcome(second.state.messages, expected))
      }
      reload[name] = tally(outcomes)
    }
    figures.reload = reload
    for (const name of Object.keys(reload)) expect((reload[name] as Record<Outcome, number>).exact).toBe(RUNS)
  })

  it('stop: POST /stop ends the answer with abort within 1 s; the baseline has no stop', async () => {
    const times: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const id = chatId()
      const response = await postChat(rewind.url, id, 'hi')
      const reader = response.body!.getReader()
      await reader.read()
      const asked = performance.now()
      await fetch(`${rewind.url}/api/chat/${id}/stop`, { method: 'POST' })
      let body = ''
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        body += new TextDecoder().decode(value)
      }
      times.push(performance.now() - asked)
      expect(body).toContain('"type":"abort"')
    }
    times.sort((a, b) => a - b)
    figures.stop = { medianMs: Math.round(times[times.length >> 1]!), maxMs: Math.round(times.at(-1)!) }
    expect(times.at(-1)!).toBeLessThan(1000)
  })

  it('memory: Rewind keeps an answer in Redis; resumable-stream keeps it in the producer’s heap', async () => {
    const id = chatId()
    const response = await postChat(rewind.url, id, 'hi')
    const body = await response.text()
    const answer = new URL(response.headers.get('content-location')!, rewind.url).searchParams.get('answer')!
    const keys = await redis.keys(`${prefix}{rewind:response:${answer}}*`)
    let bytes = 0
    for (const key of keys) bytes += Number(await redis.call('MEMORY', 'USAGE', key))
    // The baseline's producer keeps the whole SSE text in its heap (`chunks`, resumable-stream's
    // runtime) while the answer runs; Redis holds only its sentinel keys.
    const baselineResponse = await postChat(baseline.url, chatId(), 'hi')
    const baselineBody = await baselineResponse.text()
    let baselineRedis = 0
    const baselineKeys = await baseline.redisKeys()
    for (const key of baselineKeys) baselineRedis += Number(await redis.call('MEMORY', 'USAGE', key))
    figures.memory = {
      tokens: TOKENS,
      bodyBytes: Buffer.byteLength(body),
      rewindRedisBytes: bytes,
      rewindRedisKeys: keys.length,
      baselineBodyBytes: Buffer.byteLength(baselineBody),
      baselineRedisBytesPerKey: Math.round(baselineRedis / Math.max(1, baselineKeys.length)),
    }
    expect(keys.length).toBe(2)
    expect(bytes).toBeGreaterThan(Buffer.byteLength(body) / 2)
  })

  it('instance loss: the baseline’s resumer hangs; Rewind’s ends (measured in examples/ai-chat)', async () => {
    const id = chatId()
    const response = await postChat(baseline.url, id, 'hi')
    await response.body!.getReader().read()
    // A second instance of the baseline resumes the stream while the first produces it.
    const other = await startBaseline(sdk, `${prefix}rs`, active)
    try {
      const resumed = await fetch(`${other.url}/api/chat/${id}/stream`)
      expect(resumed.status).toBe(200)
      const reader = resumed.body!.getReader()
      await reader.read()
      baseline.die()
      const watched = 3000
      const ended = await Promise.race([
        (async () => {
          while (!(await reader.read()).done) {}
          return true
        })(),
        sleep(watched).then(() => false),
      ])
      figures.instanceLoss = {
        baselineResumerEndedWithin: ended ? `${watched} ms` : `no end after ${watched} ms`,
      }
      expect(ended).toBe(false)
      await reader.cancel().catch(() => {})
    } finally {
      await other.close()
    }
  })
})
