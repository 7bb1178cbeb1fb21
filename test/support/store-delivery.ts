/** What a store under test delivers, recorded as the hub would receive it (store contract tests). */
import type { StoredEvent } from '@rewind/core'
import type { StoreDelivery } from '@rewind/core/adapter'

/** Collects what a store's tail delivers and resets, per stream. */
export class Collector implements StoreDelivery {
  readonly delivered = new Map<string, StoredEvent[]>()
  readonly resets: string[] = []
  /** How many `deliver` calls (batches) there were. */
  batches = 0
  deliver(stream: string, events: readonly StoredEvent[]): void {
    this.batches++
    const list = this.delivered.get(stream) ?? []
    list.push(...events)
    this.delivered.set(stream, list)
  }
  reset(stream: string): void {
    this.resets.push(stream)
  }
  /** The ids delivered on `stream`, in order. */
  ids(stream: string): string[] {
    return (this.delivered.get(stream) ?? []).map((event) => event.id)
  }
  /** The data delivered on `stream`, in order. */
  data(stream: string): string[] {
    return (this.delivered.get(stream) ?? []).map((event) => event.data)
  }
}

/** An event to append: `data` serialized as the hub does (a string as is, else JSON), `value` kept. */
export function newEvent(data: unknown, event?: string) {
  return { event, data: typeof data === 'string' ? data : JSON.stringify(data), value: data }
}

/** What a store reads from a stream with no events, from the start: nothing, at `0-0`, done. */
export const EMPTY_READ = {
  events: [],
  position: { id: '0-0', major: 0, minor: 0 },
  done: true,
} as const
