/**
 * An answer survives its connection: a proxy cuts every connection after a random number of body
 * bytes (inside a chunk, inside the text part, between chunks), and the chat, driven by the SDK's
 * own `AbstractChat` over real sockets, still ends with exactly the messages of an uncut run.
 */
import { createHub, type Hub } from '@rewind/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seededRandom } from '../../../test/support/random.js'
import { RewindChatTransport } from '../src/client.js'
import {
  type ChatServer,
  createChat,
  cuttingProxy,
  loadSdk,
  runSeed,
  SDK,
  type Sdk,
  startChatServer,
} from './helpers/chat-app.js'

const TOKENS = 40
const RUNS = 16

describe(`drop mid-answer (${SDK})`, () => {
  let sdk: Sdk
  let hub: Hub
  let server: ChatServer

  beforeAll(async () => {
    sdk = await loadSdk(SDK)
    hub = createHub({ heartbeatInterval: 60_000 })
    server = await startChatServer({ hub, sdk, tokens: TOKENS, interval: 1 })
  })
  afterAll(async () => {
    await hub?.close()
    await server?.close()
  })

  async function run(url: string) {
    const errors: Error[] = []
    const transport = new RewindChatTransport({ api: `${url}/api/chat`, retry: 5, maxRetryDelay: 20 })
    const { chat, state } = createChat(sdk, {
      id: `chat-${Math.random().toString(36).slice(2)}`,
      transport,
      onError: (error) => errors.push(error),
    })
    await chat.sendMessage({ text: 'hello' })
    return { messages: state.messages, status: state.status, error: state.error, errors, chat }
  }

  it('ends with the uncut run’s messages, byte for byte, over at least 100 cuts', async () => {
    const uncut = await run(server.url)
    expect(uncut.errors).toEqual([])
    const text = Array.from({ length: TOKENS }, (_, i) => `w${i}`).join(' ')
    expect(uncut.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant'])
    expect(JSON.stringify(uncut.messages)).toContain(text)
    const expected = JSON.stringify(uncut.messages)
    const seed = runSeed()
    // About 3.3 KB of body per answer; cutting every connection within 700 bytes drops each answer
    // several times, at every kind of place.
    const proxy = await cuttingProxy(server.url, 700, seededRandom(seed))
    try {
      const postsBefore = server.posts
      for (let i = 0; i < RUNS; i++) {
        const cut = await run(proxy.url)
        expect({ seed, run: i, errors: cut.errors.map(String), status: cut.status }).toEqual({
          seed,
          run: i,
          errors: [],
          status: 'ready',
        })
        expect(JSON.stringify(cut.messages)).toBe(expected)
      }
      // One POST per answer: every resumption was a GET.
      expect(server.posts - postsBefore).toBe(RUNS)
      expect(proxy.cuts, `seed ${seed}`).toBeGreaterThanOrEqual(100)
    } finally {
      await proxy.close()
    }
  })

  it('answers the resume GET with 204 once the answer has ended, and replays it to the id of a drop', async () => {
    const done = await run(server.url)
    const chatId = done.chat.id
    const resumed = await fetch(`${server.url}/api/chat/${chatId}/stream`)
    expect(resumed.status).toBe(204)
    expect(await resumed.text()).toBe('')
  })
})
