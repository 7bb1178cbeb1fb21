/**
 * Where a chat's latest answer is kept: in memory (bounded, expiring) and in Redis (one key per
 * chat with a TTL), and the Content-Location an answer is served with under an Express router.
 */
import { createHub } from '@rewind/core'
import express from 'express'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { createChatStreams, memoryActiveAnswers, redisActiveAnswers } from '../src/index.js'

const env = process.env as { REDIS_URL?: string }
const REDIS_URL = env.REDIS_URL ?? 'redis://127.0.0.1:6379'

describe('memoryActiveAnswers', () => {
  it('keeps the latest answer per chat, forgets it after its ttl, and the oldest chat past maxChats', async () => {
    const answers = memoryActiveAnswers({ maxChats: 2 })
    answers.set('a', 'a1', 60_000)
    answers.set('a', 'a2', 60_000)
    expect(answers.get('a')).toBe('a2')
    answers.set('b', 'b1', 60_000)
    answers.set('c', 'c1', 60_000)
    expect([answers.get('a'), answers.get('b'), answers.get('c')]).toEqual([undefined, 'b1', 'c1'])
    answers.set('short', 's1', 5)
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(answers.get('short')).toBeUndefined()
  })

  it('refuses a bound that is not a positive integer', () => {
    expect(() => memoryActiveAnswers({ maxChats: 0 })).toThrow(/maxChats must be a positive integer/)
  })
})

describe('redisActiveAnswers', () => {
  it('keeps one key per chat under the prefix, with the ttl given', async () => {
    const redis = new Redis(REDIS_URL, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    })
    try {
      await redis.connect()
    } catch {
      redis.disconnect()
      return // the instance tests report a missing Redis loudly
    }
    const prefix = `test:ai-sdk-answers:${process.pid}:${Date.now()}:`
    try {
      const answers = redisActiveAnswers(redis, { prefix })
      await answers.set('chat-1', 'answer-1', 60_000)
      expect(await answers.get('chat-1')).toBe('answer-1')
      expect(await answers.get('chat-2')).toBeUndefined()
      const ttl = await redis.pttl(`${prefix}rewind:chat:chat-1`)
      expect(ttl).toBeGreaterThan(50_000)
      expect(ttl).toBeLessThanOrEqual(60_000)
    } finally {
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    }
  })
})

describe('createChatStreams', () => {
  it('refuses a missing hub and a chat id that cannot go into a URL', async () => {
    expect(() => createChatStreams({} as never)).toThrow(/needs \{ hub \}/)
    const hub = createHub()
    const chats = createChatStreams({ hub })
    await expect(chats.start('a b', [] as never)).rejects.toThrow(/a chat id must be/)
    await hub.close()
  })

  it('names the resume URL as the client asked it, under an Express router', async () => {
    const hub = createHub({ heartbeatInterval: 60_000 })
    const chats = createChatStreams({ hub })
    const router = express.Router()
    router.post('/chat', async (req, res) => {
      const answer = await chats.start(
        'c1',
        (async function* () {
          yield { type: 'start' }
          yield { type: 'finish' }
        })(),
      )
      chats.serve(req, res, 'c1', answer)
    })
    const app = express().use('/api', router)
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    try {
      const { port } = server.address() as { port: number }
      const response = await fetch(`http://127.0.0.1:${port}/api/chat`, { method: 'POST' })
      expect(response.headers.get('content-location')).toMatch(/^\/api\/chat\/c1\/stream\?answer=[\w-]+$/)
      expect(await response.text()).toContain('data: [DONE]')
    } finally {
      await hub.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
