/**
 * What goes on the wire is exactly what the SDK reads: its parser accepts every event, no Rewind
 * frame leaks (no `event:`, no empty data), the answer ends with a terminal chunk then `[DONE]`,
 * the SDK's headers are there; its unmodified `DefaultChatTransport` works against the same
 * server, POST and resume; stop ends the answer with `abort` and stops the producer.
 */
import { createHub, type Hub } from '@rewind/core'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FrameTranslator } from '../src/index.js'
import {
  type ChatServer,
  createChat,
  loadSdk,
  postChat,
  SDK,
  type Sdk,
  startChatServer,
} from './helpers/chat-app.js'

const TOKENS = 30

function post(url: string, chatId: string, text = 'hello'): Promise<Response> {
  return postChat(url, chatId, text, { trigger: 'submit-message' })
}

/** Every event of a body, as a spec-compliant parser reads it. */
function events(body: string): EventSourceMessage[] {
  const found: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (event) => found.push(event) })
  parser.feed(body)
  return found
}

/** The chunks the SDK's own parser reads from a body; throws on any it rejects. */
async function sdkChunks(sdk: Sdk, body: string): Promise<{ type: string }[]> {
  const stream = sdk.ai.parseJsonEventStream({
    stream: new Response(body).body,
    schema: sdk.ai.uiMessageChunkSchema,
  })
  const chunks: { type: string }[] = []
  for await (const result of stream) {
    if (!result.success) throw result.error
    chunks.push(result.value)
  }
  return chunks
}

function expectClean(list: EventSourceMessage[]): void {
  for (const event of list) {
    expect(event.event).toBeUndefined()
    expect(event.data).not.toBe('')
  }
  expect(list.at(-1)?.data).toBe('[DONE]')
}

describe(`UI message stream on the wire (${SDK})`, () => {
  let sdk: Sdk
  let hub: Hub
  let server: ChatServer
  const aborted: number[] = []

  beforeAll(async () => {
    sdk = await loadSdk(SDK)
    hub = createHub({ heartbeatInterval: 60_000 })
    server = await startChatServer({
      hub,
      sdk,
      tokens: TOKENS,
      interval: 5,
      onProduce: (signal) => signal.addEventListener('abort', () => aborted.push(Date.now())),
    })
  })
  afterAll(async () => {
    await hub?.close()
    await server?.close()
  })

  it('serves one SDK chunk per event, ids on them, the terminal chunk then [DONE], with the SDK headers', async () => {
    const response = await post(server.url, 'wire-1')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    expect(response.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1')
    expect(response.headers.get('x-accel-buffering')).toBe('no')
    expect(response.headers.get('cache-control')).toContain('no-transform')
    expect(response.headers.get('content-location')).toMatch(/^\/api\/chat\/wire-1\/stream\?answer=/)
    const body = await response.text()
    const list = events(body)
    expectClean(list)
    const chunks = await sdkChunks(sdk, body)
    expect(chunks.map((chunk) => chunk.type)).toEqual([
      'start',
      'start-step',
      'text-start',
      ...Array(TOKENS).fill('text-delta'),
      'text-end',
      'finish-step',
      'finish',
    ])
    // Every chunk has an id to resume after; the ids are distinct.
    const ids = list.slice(0, -1).map((event) => event.id)
    expect(ids.every((id) => typeof id === 'string' && id !== '')).toBe(true)
    expect(new Set(ids).size).toBe(ids.length)
    // [DONE] carries the terminal event's id: a client that has it is told 204.
    const again = await fetch(`${server.url}${response.headers.get('content-location')}`, {
      headers: { 'last-event-id': list.at(-1)!.id! },
    })
    expect(again.status).toBe(204)
  })

  it('resumes after a Last-Event-ID with exactly what follows, and from the start without one', async () => {
    const response = await post(server.url, 'wire-2')
    const location = response.headers.get('content-location')!
    const full = events(await response.text())
    const cut = 7
    const after = await fetch(`${server.url}${location}`, {
      headers: { 'last-event-id': full[cut - 1]!.id! },
    })
    expect(after.status).toBe(200)
    const rest = events(await after.text())
    expect(rest.map((e) => [e.id, e.data])).toEqual(full.slice(cut).map((e) => [e.id, e.data]))
    const whole = await fetch(`${server.url}${location}`)
    expect(events(await whole.text()).map((e) => e.data)).toEqual(full.map((e) => e.data))
  })

  it('answers the chat’s resume GET with 204 when no answer is active, with the answer while one is', async () => {
    const unknown = await fetch(`${server.url}/api/chat/never-asked/stream`)
    expect(unknown.status).toBe(204)
    const response = await post(server.url, 'wire-3')
    const reader = response.body!.getReader()
    await reader.read()
    const resumed = await fetch(`${server.url}/api/chat/wire-3/stream`)
    expect(resumed.status).toBe(200)
    const body = await resumed.text()
    expectClean(events(body))
    expect((await sdkChunks(sdk, body))[0]!.type).toBe('start')
    await reader.cancel()
    const after = await fetch(`${server.url}/api/chat/wire-3/stream`)
    expect(after.status).toBe(204)
  })

  it('stops the answer within 1 s on POST /stop: the stream ends with abort then [DONE], the producer is aborted', async () => {
    const response = await post(server.url, 'wire-stop')
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let body = decoder.decode((await reader.read()).value)
    const before = aborted.length
    const asked = Date.now()
    const stop = await fetch(`${server.url}/api/chat/wire-stop/stop`, { method: 'POST' })
    expect(stop.status).toBe(202)
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      body += decoder.decode(value, { stream: true })
    }
    const ended = Date.now()
    expect(ended - asked).toBeLessThan(1000)
    expect(aborted.length).toBe(before + 1)
    expect(aborted.at(-1)! - asked).toBeLessThan(1000)
    const list = events(body)
    expectClean(list)
    const chunks = await sdkChunks(sdk, body)
    expect(chunks.at(-1)?.type).toBe('abort')
    expect(chunks.filter((chunk) => chunk.type === 'text-delta').length).toBeLessThan(TOKENS)
    // A second stop finds nothing active.
    expect((await fetch(`${server.url}/api/chat/wire-stop/stop`, { method: 'POST' })).status).toBe(204)
  })

  it('works with the SDK’s DefaultChatTransport, unmodified: POST, and resume mid-answer from the start', async () => {
    const api = `${server.url}/api/chat`
    const first = createChat(sdk, { id: 'default-1', transport: new sdk.ai.DefaultChatTransport({ api }) })
    const sending = first.chat.sendMessage({ text: 'hello' })
    // Another tab (or a reloaded page) with the same chat resumes while the answer is written.
    await new Promise((resolve) => setTimeout(resolve, 40))
    const second = createChat(sdk, { id: 'default-1', transport: new sdk.ai.DefaultChatTransport({ api }) })
    await second.chat.resumeStream()
    await sending
    expect(first.state.error).toBeUndefined()
    expect(second.state.error).toBeUndefined()
    const assistant = first.state.messages.at(-1)
    expect(assistant.role).toBe('assistant')
    expect(second.state.messages).toEqual([assistant])
    // Once ended, resume finds nothing: no message is added, no error.
    const third = createChat(sdk, { id: 'default-1', transport: new sdk.ai.DefaultChatTransport({ api }) })
    await third.chat.resumeStream()
    expect(third.state.messages).toEqual([])
    expect(third.state.status).toBe('ready')
  })

  it('turns a gap into a transient data-rewind-gap chunk, never a Rewind frame', async () => {
    const gapHub = createHub({ heartbeatInterval: 60_000, responses: { maxEvents: 5 } })
    const gapServer = await startChatServer({ hub: gapHub, sdk, tokens: TOKENS, interval: 0 })
    try {
      const response = await post(gapServer.url, 'wire-gap')
      const location = response.headers.get('content-location')!
      const list = events(await response.text())
      const first = list[0]!.id!
      // The first chunk was evicted long ago: a client resuming after it is told, in band.
      const resumed = await fetch(`${gapServer.url}${location}`, { headers: { 'last-event-id': first } })
      const body = await resumed.text()
      expectClean(events(body))
      const chunks = await sdkChunks(sdk, body)
      expect(chunks[0]).toEqual({ type: 'data-rewind-gap', transient: true, data: { reason: 'evicted' } })
    } finally {
      await gapHub.close()
      await gapServer.close()
    }
  })
})

describe('FrameTranslator', () => {
  it('keeps chunk events and comments, drops id-only frames, ends each way with a terminal chunk then [DONE]', () => {
    const t = new FrameTranslator()
    expect(t.push('retry: 1000\n\n:\n\nid: 1-0\n\n')).toBe('retry: 1000\n\n:\n\n')
    expect(t.push('id: 1-1\ndata: {"type":"start"}\n\nid: 1-2\nda')).toBe(
      'id: 1-1\ndata: {"type":"start"}\n\n',
    )
    expect(t.push('ta: {"type":"finish"}\n\n')).toBe('id: 1-2\ndata: {"type":"finish"}\n\n')
    expect(t.push('id: 1-3\nevent: rewind-end\ndata: done\n\n')).toBe('id: 1-3\ndata: [DONE]\n\n')
    expect(new FrameTranslator().push('id: 9\nevent: rewind-end\ndata: cancelled\n\n')).toBe(
      'id: 9\ndata: {"type":"abort","reason":"stopped"}\n\ndata: [DONE]\n\n',
    )
    expect(new FrameTranslator().push('id: 9\nevent: rewind-end\ndata: failed\n\n')).toBe(
      'id: 9\ndata: {"type":"error","errorText":"the answer failed before it finished"}\n\ndata: [DONE]\n\n',
    )
    expect(new FrameTranslator({ endEvent: 'end' }).push('id: 9\nevent: end\ndata: done\n\n')).toBe(
      'id: 9\ndata: [DONE]\n\n',
    )
  })
})
