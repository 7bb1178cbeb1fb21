import type { Hub } from '@rewind/core'
import type { SyncHistoryStore } from '@rewind/core/adapter'
import express, { type Express } from 'express'
import { afterEach, beforeEach, onTestFinished } from 'vitest'
import { sleep } from '../../../../test/support/wait.js'
import { type SseMiddleware, type SseOptions, sse } from '../../src/index.js'

/** `sse(options)` whose hub is closed when the test finishes. */
export function useEvents(
  options: SseOptions & { store?: SyncHistoryStore | undefined; hub?: Hub<string> | undefined } = {},
): SseMiddleware<string> {
  const events = sse(options)
  onTestFinished(() => events.close())
  return events
}

/** An Express app with {@link useEvents} mounted (`app.use(events)`), for a test's own routes. */
export function useEventsApp(options: Parameters<typeof useEvents>[0] = {}): {
  events: SseMiddleware<string>
  app: Express
} {
  const events = useEvents(options)
  const app = express()
  app.use(events)
  return { events, app }
}

/**
 * The routes of the cleanup and shutdown tests: `/news`, `/rooms/:room` (stream `room:<room>`) and
 * `/ticks`, an endless iterable that yields every `tickMs`.
 */
export function mountStreams(app: Express, events: SseMiddleware<string>, tickMs: number): void {
  app.get('/news', events.handler('news'))
  app.get(
    '/rooms/:room',
    events.handler(({ params: { room } }) => `room:${room}`),
  )
  app.get('/ticks', (_req, res) => {
    res.sse(
      (async function* () {
        for (let n = 0; ; n++) {
          yield String(n)
          await sleep(tickMs)
        }
      })(),
    )
  })
}

/** The rejections nobody handled while each test of the enclosing `describe` ran. */
export function recordUnhandled(): unknown[] {
  const unhandled: unknown[] = []
  const record = (reason: unknown) => unhandled.push(reason)
  beforeEach(() => {
    unhandled.length = 0
    process.on('unhandledRejection', record)
  })
  afterEach(() => {
    process.off('unhandledRejection', record)
  })
  return unhandled
}
