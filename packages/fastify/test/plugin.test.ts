/** Registering the plugin: options, decorators, a shared hub, and where the decorators are visible. */

import { createHub } from '@rewind/core'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { waitUntil, within } from '../../../test/support/wait.js'
import { type Hub, RewindError, ssePlugin } from '../src/index.js'
import { createApp, createSseApp, listen } from './helpers/app.js'
import { FetchStream } from './helpers/clients.js'

describe('registration', () => {
  it('decorates fastify.sse with a hub and reply.sse', async () => {
    const app = await createSseApp()
    await app.ready()

    expect(app.hasDecorator('sse')).toBe(true)
    expect(app.hasReplyDecorator('sse')).toBe(true)
    expect(typeof app.sse.publish).toBe('function')
    expect(typeof app.sse.stats).toBe('function')
    expect(typeof app.sse.close).toBe('function')
    expect(app.sse.closed).toBe(false)
  })

  it.each([
    ['history.maxEvents', { history: { maxEvents: 0 } }],
    ['maxEventBytes above maxQueueBytes', { maxEventBytes: 2048, maxQueueBytes: 1024 }],
    ['closeRetry', { closeRetry: -1 }],
  ])('an invalid option (%s) rejects register() with ERR_INVALID_ARGUMENT', async (_name, options) => {
    const app = createApp()

    const error = await app.register(ssePlugin, options).then(
      () => undefined,
      (caught: unknown) => caught,
    )

    expect(error).toBeInstanceOf(RewindError)
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it('refuses a closeRetry no timer can take at register(), not later when fastify.close() runs', async () => {
    const app = createApp()
    const error = await app.register(ssePlugin, { closeRetry: 2 ** 31 }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    await app.close().catch(() => undefined)
    expect(error).toBeInstanceOf(RewindError)
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'closeRetry' })
    // The same wording as every other delay option, naming the bound and how to fix the value.
    expect((error as RewindError).message).toContain(
      'closeRetry must be at most 2147483647 ms (MAX_TIMER_DELAY',
    )

    // The bound itself is a valid delay: registering and closing both succeed.
    const longest = createApp()
    await longest.register(ssePlugin, { closeRetry: 2 ** 31 - 1 })
    await within(longest.close(), 'fastify.close() with closeRetry at MAX_TIMER_DELAY')
  })

  it('a second registration in the same context rejects ready() instead of crashing', async () => {
    const app = createApp()
    app.register(ssePlugin)
    app.register(ssePlugin)

    await expect(app.ready()).rejects.toMatchObject({ code: 'FST_ERR_DEC_ALREADY_PRESENT' })
  })

  it('uses a given hub, so code outside Fastify can publish; fastify.close() ends its streams and leaves the hub open', async () => {
    const hub = createHub({ heartbeatInterval: 0 })
    onTestFinished(() => hub.close())
    // Fastify's default close, so only the plugin's preClose hook can end the stream.
    const app = createApp({ forceCloseConnections: 'idle' })
    await app.register(ssePlugin, { hub })
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const stream = await FetchStream.open(`${url}/events`)

    expect(app.sse).toBe(hub)
    const id = hub.publish('news', { data: 'from outside' })
    await stream.waitForEvents(1)
    expect(stream.events[0]).toMatchObject({ id, data: 'from outside' })

    await within(app.close(), 'fastify.close()')
    await within(stream.ended, 'the stream to end')
    // The hub is the caller's: still open, still publishing, for whoever else it serves.
    expect(hub.closed).toBe(false)
    expect(typeof hub.publish('news', { data: 'after fastify.close()' })).toBe('string')
  })

  it('refuses closeRetry with a given hub: only the owner of a hub closes it, so only the owner sends the hint', async () => {
    const hub = createHub({ heartbeatInterval: 0 })
    onTestFinished(() => hub.close())
    const app = createApp()
    const error = await app.register(ssePlugin, { hub, closeRetry: 1000 }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    await app.close().catch(() => undefined)
    expect(error).toBeInstanceOf(RewindError)
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'closeRetry' })
    expect(hub.closed).toBe(false)
  })
})

describe('encapsulation', () => {
  it('works inside a child context with a route prefix; the decorators stay in that context', async () => {
    // Fastify's default close, so only the child's preClose hook can end the stream.
    const app = createApp({ forceCloseConnections: 'idle' })
    let child: FastifyInstance | undefined
    await app.register(
      async (instance) => {
        await instance.register(ssePlugin, { heartbeatInterval: 0 })
        instance.get('/events', (_request, reply) => reply.sse('news'))
        instance.post('/news', async () => ({ id: instance.sse.publish('news', { data: 'hello' }) }))
        child = instance
      },
      { prefix: '/api' },
    )
    const { url } = await listen(app)

    // fastify-plugin lifts the decorators to the context that registered the plugin, not above it.
    expect(child!.hasDecorator('sse')).toBe(true)
    expect(app.hasDecorator('sse')).toBe(false)
    expect(app.hasReplyDecorator('sse')).toBe(false)
    const stream = await FetchStream.open(`${url}/api/events`)
    const posted = (await (await fetch(`${url}/api/news`, { method: 'POST' })).json()) as { id: string }
    await stream.waitForEvents(1)
    expect(stream.events[0]).toMatchObject({ id: posted.id, data: 'hello' })
    expect((await fetch(`${url}/events`)).status).toBe(404)

    // The child's preClose hook ends its streams when the root closes.
    await within(app.close(), 'fastify.close() of the root')
    await within(stream.ended, 'the stream to end')
    expect(child!.sse.closed).toBe(true)
  })

  it('registered on the root, the same hub serves every child context', async () => {
    const app = await createSseApp()
    let childHub: Hub<string | Promise<string>> | undefined
    await app.register(
      async (instance) => {
        childHub = instance.sse
        instance.get('/events', (_request, reply) => reply.sse('news'))
      },
      { prefix: '/v1' },
    )
    const { url } = await listen(app)

    expect(childHub).toBe(app.sse)
    const stream = await FetchStream.open(`${url}/v1/events`)
    app.sse.publish('news', { data: 'root publish' })
    await stream.waitForEvents(1)
    expect(stream.messages()).toEqual(['root publish'])
  })

  it('sibling contexts that each register the plugin get separate hubs', async () => {
    const app = createApp()
    const hubs: Hub<string | Promise<string>>[] = []
    for (const prefix of ['/a', '/b']) {
      await app.register(
        async (instance) => {
          await instance.register(ssePlugin, { heartbeatInterval: 0 })
          hubs.push(instance.sse)
          instance.get('/events', (_request, reply) => reply.sse('news'))
        },
        { prefix },
      )
    }
    const { url } = await listen(app)
    const a = await FetchStream.open(`${url}/a/events`)
    const b = await FetchStream.open(`${url}/b/events`)
    await waitUntil(() => hubs.every((hub) => hub.stats().subscribers === 1), 'one subscriber on each hub')

    expect(hubs[0]).not.toBe(hubs[1])
    hubs[0]!.publish('news', { data: 'only a' })
    hubs[1]!.publish('news', { data: 'only b' })
    await a.waitForEvents(1)
    await b.waitForEvents(1)
    expect(a.messages()).toEqual(['only a'])
    expect(b.messages()).toEqual(['only b'])
  })
})
