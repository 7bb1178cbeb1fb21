/**
 * The public types, checked by `tsc` (`expectTypeOf` does nothing at run time): `fastify.sse` and
 * `reply.sse` come from the module augmentation, and the plugin options are the hub's plus two.
 * Code that would fail at run time on purpose sits in functions that are type-checked, never called.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { describe, expectTypeOf, it } from 'vitest'
import ssePlugin, {
  type Hub,
  type HubOptions,
  ssePlugin as named,
  type ServeOptions,
  type SsePluginOptions,
  type StreamSource,
  type Subscription,
} from '../src/index.js'

describe('types', () => {
  it('fastify.sse is the hub, typed through the augmentation', () => {
    expectTypeOf<FastifyInstance['sse']>().toEqualTypeOf<Hub<string | Promise<string>>>()
    // Any store: the in-memory one returns the id, an asynchronous one a promise; `await` covers both.
    expectTypeOf<FastifyInstance['sse']['publish']>().returns.toEqualTypeOf<string | Promise<string>>()
    expectTypeOf<ReturnType<FastifyInstance['sse']['stats']>['subscribers']>().toBeNumber()
    expectTypeOf<FastifyInstance['sse']['close']>().returns.toEqualTypeOf<Promise<void>>()
    expectTypeOf<Hub<Promise<string>>>().toMatchTypeOf<FastifyInstance['sse']>()
  })

  it('reply.sse takes a stream name, a response or an async iterable and returns the reply', () => {
    expectTypeOf<FastifyReply['sse']>().parameters.toEqualTypeOf<[StreamSource, ServeOptions?]>()
    expectTypeOf<FastifyReply['sse']>().returns.toEqualTypeOf<FastifyReply>()
    expectTypeOf<ReturnType<FastifyReply['sse']>>().not.toEqualTypeOf<Subscription>()
    expectTypeOf<StreamSource>().toEqualTypeOf<
      | string
      | { response: string }
      | AsyncIterable<string | { data: unknown; event?: string; id?: string; retry?: number }>
    >()

    function routes(app: FastifyInstance) {
      app.get('/events', (_request, reply) =>
        // The filter's event is inferred: no import needed for the common case.
        reply.sse('news', { filter: (event) => event.event === 'public', gapPolicy: 'reset' }),
      )
      app.get('/tokens', async (_request, reply) => {
        async function* tokens() {
          yield 'a'
          yield { data: { token: 'b' }, event: 'token' }
        }
        return reply.sse(tokens())
      })
      // @ts-expect-error a number is not a source
      app.get('/bad', (_request, reply) => reply.sse(42))
      // @ts-expect-error filters are synchronous predicates
      app.get('/bad-filter', (_request, reply) => reply.sse('news', { filter: async () => true }))
    }
    expectTypeOf(routes).toBeFunction()
  })

  it('the plugin options are the hub options plus hub and closeRetry', () => {
    expectTypeOf<SsePluginOptions>().toMatchTypeOf<HubOptions>()
    expectTypeOf<SsePluginOptions['closeRetry']>().toEqualTypeOf<number | undefined>()

    function registrations(app: FastifyInstance) {
      app.register(ssePlugin, { history: { maxEvents: 500 }, retry: null, closeRetry: 5000 })
      app.register(named, { gapPolicy: 'reset' })
      app.register(ssePlugin)
      // @ts-expect-error an unknown gap policy
      app.register(ssePlugin, { gapPolicy: 'skip' })
      // @ts-expect-error retry takes milliseconds
      app.register(ssePlugin, { retry: '3s' })
    }
    expectTypeOf(registrations).toBeFunction()
  })
})
