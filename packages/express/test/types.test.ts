/**
 * The public types where inference matters. These assertions are checked by `tsc` (the package's
 * typecheck includes the tests); at run time `expectTypeOf` does nothing.
 */
import type { CloseReason, StoredEvent } from '@rewind/core'
import type { AsyncHistoryStore } from '@rewind/core/adapter'
import type { Request, RequestHandler, Response } from 'express'
import { describe, expectTypeOf, it } from 'vitest'
import {
  type ServeOptions,
  type SseMiddleware,
  type SseResponder,
  type StreamSource,
  type Subscription,
  sse,
} from '../src/index.js'

describe('types', () => {
  it('publish returns the id, or a promise of it with an asynchronous store', () => {
    expectTypeOf(sse).returns.toExtend<SseMiddleware<string | Promise<string>>>()
    expectTypeOf<ReturnType<SseMiddleware<string>['publish']>>().toEqualTypeOf<string>()
    expectTypeOf<ReturnType<SseMiddleware<Promise<string>>['publish']>>().toEqualTypeOf<Promise<string>>()
    // Never called: only the inferred types of these calls matter.
    const inferred = (store: AsyncHistoryStore) => ({
      sync: sse({ history: { maxEvents: 10 } }),
      async: sse({ store }),
    })
    expectTypeOf<ReturnType<typeof inferred>['sync']>().toEqualTypeOf<SseMiddleware<string>>()
    expectTypeOf<ReturnType<typeof inferred>['async']>().toEqualTypeOf<SseMiddleware<Promise<string>>>()
  })

  it('the middleware and its one-line handlers are Express request handlers', () => {
    expectTypeOf<SseMiddleware>().toExtend<RequestHandler>()
    expectTypeOf<SseMiddleware['handler']>().returns.toEqualTypeOf<RequestHandler>()
    expectTypeOf<SseMiddleware['handler']>()
      .parameter(0)
      .toEqualTypeOf<StreamSource | ((req: Request) => StreamSource)>()
    expectTypeOf<SseMiddleware['handler']>()
      .parameter(1)
      .toEqualTypeOf<ServeOptions | ((req: Request) => ServeOptions) | undefined>()
  })

  it('res.sse is declared on every Express response and returns a subscription', () => {
    expectTypeOf<Response['sse']>().toEqualTypeOf<SseResponder>()
    expectTypeOf<SseResponder>().returns.toEqualTypeOf<Subscription>()
    expectTypeOf<Subscription['done']>().toEqualTypeOf<Promise<CloseReason>>()
    expectTypeOf<NonNullable<ServeOptions['filter']>>().parameter(0).toEqualTypeOf<StoredEvent>()
  })
})
