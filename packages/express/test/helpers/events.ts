import type { Hub } from '@rewind/core'
import type { SyncHistoryStore } from '@rewind/core/adapter'
import express, { type Express } from 'express'
import { onTestFinished } from 'vitest'
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
