/**
 * Across instances sharing a real Redis: an answer produced on A (Express) is resumed on B
 * (Fastify) by the Rewind transport through cut connections, converging on the uncut messages;
 * a stop sent to B stops A's producer within 1 s and the stream ends with `abort`.
 */
import { createHub, type Hub } from '@rewind/core'
import { createRedisStore } from '@rewind/redis'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seededRandom } from '../../../test/support/random.js'
import { redisAnswers } from '../../../test/support/services.js'
import { RewindChatTransport } from '../src/client.js'
import { redisActiveAnswers } from '../src/index.js'
import {
  type ChatServer,
  createChat,
  cuttingProxy,
  loadSdk,
  postChat,
  REDIS_URL,
  runSeed,
  SDK,
  type Sdk,
  startChatServer,
} from './helpers/chat-app.js'

const TOKENS = 40

const available = await redisAnswers(REDIS_URL, 'ai-sdk instance tests')

describe.runIf(available)(`across instances with Redis (${SDK})`, () => {
  const prefix = `test:ai-sdk:${process.pid}:${Date.now()}:`
  let sdk: Sdk
  let redis: Redis
  let hubA: Hub<Promise<string>>
  let hubB: Hub<Promise<string>>
  let a: ChatServer
  let b: ChatServer
  const abortedOnA: number[] = []

  beforeAll(async () => {
    sdk = await loadSdk(SDK)
    redis = new Redis(REDIS_URL)
    const hub = () =>
      createHub({
        store: createRedisStore({ redis: REDIS_URL, prefix }),
        heartbeatInterval: 60_000,
        closeGrace: 200,
      })
    hubA = hub()
    hubB = hub()
    const answers = redisActiveAnswers(redis, { prefix })
    a = await startChatServer({
      hub: hubA,
      sdk,
      tokens: TOKENS,
      interval: 3,
      answers,
      onProduce: (signal) => signal.addEventListener('abort', () => abortedOnA.push(Date.now())),
    })
    b = await startChatServer({ hub: hubB, sdk, tokens: TOKENS, interval: 3, answers, framework: 'fastify' })
  })
  afterAll(async () => {
    await Promise.all([hubA?.close(), hubB?.close()])
    await Promise.all([a?.close(), b?.close()])
    if (redis !== undefined) {
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    }
  })

  /** A fetch that sends the POST to A and every resumption (GET) to B. */
  function postToAResumeOnB(proxyToB: string): typeof fetch {
    return (input, init) => {
      const url = new URL(String(input))
      if ((init?.method ?? 'GET') === 'GET') {
        const target = new URL(proxyToB)
        url.host = target.host
      }
      return fetch(url, init)
    }
  }

  it('produces on A and resumes on B through cut connections, converging on the uncut messages', async () => {
    const run = async (fetchVia: typeof fetch | undefined, proxyA: string) => {
      const transport = new RewindChatTransport({
        api: `${proxyA}/api/chat`,
        retry: 5,
        maxRetryDelay: 20,
        ...(fetchVia === undefined ? {} : { fetch: fetchVia }),
      })
      const errors: Error[] = []
      const { chat, state } = createChat(sdk, {
        id: `x-${Math.random().toString(36).slice(2)}`,
        transport,
        onError: (error) => errors.push(error),
      })
      await chat.sendMessage({ text: 'hello' })
      return { messages: JSON.stringify(state.messages), errors, status: state.status }
    }
    const uncut = await run(undefined, a.url)
    const seed = runSeed()
    const random = seededRandom(seed)
    const proxyA = await cuttingProxy(a.url, 1500, random)
    const proxyB = await cuttingProxy(b.url, 700, random)
    try {
      for (let i = 0; i < 5; i++) {
        const cut = await run(postToAResumeOnB(proxyB.url), proxyA.url)
        expect({ seed, errors: cut.errors.map(String), status: cut.status }).toEqual({
          seed,
          errors: [],
          status: 'ready',
        })
        expect(cut.messages).toBe(uncut.messages)
      }
      expect(proxyA.cuts).toBeGreaterThan(0)
      expect(proxyA.cuts + proxyB.cuts).toBeGreaterThan(5)
      expect(b.posts).toBe(0)
    } finally {
      await proxyA.close()
      await proxyB.close()
    }
  })

  it('stops on B what A produces, within 1 s: A’s producer is aborted, the stream ends with abort', async () => {
    const chatId = `stop-${Date.now()}`
    const response = await postChat(a.url, chatId)
    const reader = response.body!.getReader()
    await reader.read()
    // B resumes the chat while A writes it.
    const onB = await fetch(`${b.url}/api/chat/${chatId}/stream`)
    expect(onB.status).toBe(200)
    const before = abortedOnA.length
    const asked = Date.now()
    expect((await fetch(`${b.url}/api/chat/${chatId}/stop`, { method: 'POST' })).status).toBe(202)
    const body = await onB.text()
    while (!(await reader.read()).done) {}
    expect(abortedOnA.length).toBe(before + 1)
    expect(abortedOnA.at(-1)! - asked).toBeLessThan(1000)
    const datas = body
      .split('\n\n')
      .filter((frame) => frame.includes('data: '))
      .map((frame) => frame.slice(frame.indexOf('data: ') + 6))
    expect(datas.slice(-2)).toEqual([JSON.stringify({ type: 'abort', reason: 'stopped' }), '[DONE]'])
    expect((await fetch(`${b.url}/api/chat/${chatId}/stream`)).status).toBe(204)
  })
})
