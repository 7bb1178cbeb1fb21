/**
 * Hubs and in-memory sinks for unit tests of the hub and its parts: every hub and sink made here is
 * closed and checked after each test (call {@link cleanUpAfterEach} once per file).
 */
import type { EventSourceMessage } from 'eventsource-parser'
import { afterEach, expect, vi } from 'vitest'
import { thrownAs } from '../../../../test/support/throws.js'
import { RewindError } from '../../src/errors.js'
import { createHub, HUB_DEFAULTS, type Hub, type HubOptions } from '../../src/index.js'
import { MemorySink } from './memory-sink.js'

const hubs: Hub[] = []
const sinks: MemorySink[] = []

export function hub(options: HubOptions = {}): Hub {
  // No heartbeat unless a test asks for one: its timer would only add noise.
  const created = createHub({ heartbeatInterval: 0, ...options }) as Hub
  hubs.push(created)
  return created
}

/** Closes `created` after the test, like the hubs made by {@link hub}. */
export function track(created: Hub): void {
  hubs.push(created)
}

export function sink(options: { full?: boolean } = {}): MemorySink {
  const created = new MemorySink(options)
  sinks.push(created)
  return created
}

/** Closes every hub made by {@link hub} and checks every sink made by {@link sink}, after each test. */
export function cleanUpAfterEach(): void {
  afterEach(async () => {
    await Promise.all(hubs.splice(0).map((h) => h.close()))
    // The hub must never write to a response it has ended or that has closed.
    for (const s of sinks.splice(0)) expect(s.writesAfterEnd).toBe(0)
    vi.restoreAllMocks()
    vi.useRealTimers()
  })
}

export function events(s: MemorySink, gapEvent = HUB_DEFAULTS.gapEvent): EventSourceMessage[] {
  return s.parse().events.filter((e) => e.event !== gapEvent)
}

export function gaps(s: MemorySink, gapEvent = HUB_DEFAULTS.gapEvent): EventSourceMessage[] {
  return s.parse().events.filter((e) => e.event === gapEvent)
}

/** The `RewindError` that `fn` throws; the test fails if it throws anything else, or nothing. */
export function caught(fn: () => unknown): RewindError {
  return thrownAs(fn, RewindError)
}

export function publishAll(h: Hub, stream: string, data: readonly string[]): string[] {
  return data.map((d) => h.publish(stream, { data: d }))
}
