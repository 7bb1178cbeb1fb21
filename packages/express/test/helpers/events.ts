import type { Hub } from '@rewind/core'
import type { SyncHistoryStore } from '@rewind/core/adapter'
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
