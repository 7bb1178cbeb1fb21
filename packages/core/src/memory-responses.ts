/**
 * Responses in memory: each response's events in a history of its own (bounded by the response's
 * limits, not by the feed history's), and its lifecycle record beside it. Ended responses are dropped
 * after their TTL; the number of records is bounded.
 */
import { RewindError } from './errors.js'
import { MemoryHistory } from './memory-history.js'
import type {
  NewEvent,
  ResponseEnd,
  ResponseLimits,
  ResponseRecords,
  ResponseState,
  ResponseStatus,
  StoredEvent,
} from './store.js'
import { MAX_TIMER_DELAY } from './validation.js'

/** Default of `MemoryStoreOptions.maxResponses`. */
export const DEFAULT_MAX_RESPONSES = 1000

interface MemoryResponse {
  readonly stream: string
  readonly history: MemoryHistory
  status: ResponseStatus
  endId: string | undefined
  expiry: NodeJS.Timeout | undefined
  /** Events appended so far: the `seq` of the last one (see `ResponseRecords.append`). */
  count: number
}

export class MemoryResponses implements ResponseRecords {
  /** Records by response id, oldest first (a Map keeps insertion order). */
  private readonly records = new Map<string, MemoryResponse>()
  private readonly byStream = new Map<string, MemoryResponse>()

  constructor(
    private readonly maxResponses: number,
    private readonly now: () => number,
  ) {}

  /** The history of a response's stream, if `stream` is one. */
  history(stream: string): MemoryHistory | undefined {
    return this.byStream.get(stream)?.history
  }

  /** Number of responses kept, active or ended. */
  get size(): number {
    return this.records.size
  }

  create(id: string, stream: string, limits: ResponseLimits): boolean {
    if (this.records.has(id)) return false
    if (this.records.size >= this.maxResponses && !this.evictOldestEnded()) {
      throw new RewindError(
        'ERR_RESPONSE_LIMIT',
        `${this.maxResponses} responses are active at once, the most this store keeps (maxResponses); wait for one to end, or raise maxResponses`,
        { field: 'maxResponses' },
      )
    }
    const history = new MemoryHistory({
      maxEvents: limits.maxEvents,
      maxBytes: limits.maxBytes,
      now: this.now,
    })
    const record: MemoryResponse = {
      stream,
      history,
      status: 'active',
      endId: undefined,
      expiry: undefined,
      count: 0,
    }
    this.records.set(id, record)
    this.byStream.set(stream, record)
    return true
  }

  append(
    id: string,
    stream: string,
    event: NewEvent,
    _limits: ResponseLimits,
    seq: number,
  ): StoredEvent | undefined {
    const record = this.records.get(id)
    if (record === undefined || record.status !== 'active') return undefined
    // Appends here are synchronous, so they arrive in order; the check keeps the contract that a
    // shared store's scripts enforce (and a caller that skips a number is told, not given a hole).
    if (seq !== record.count + 1) {
      throw new RewindError(
        'ERR_HISTORY_LOST',
        `append ${seq} of the response in ${JSON.stringify(stream)} does not follow the ${record.count} stored; append each event once, in order`,
      )
    }
    record.count = seq
    return record.history.append(event)
  }

  end(
    id: string,
    _stream: string,
    event: NewEvent,
    reason: ResponseEnd,
    limits: ResponseLimits,
  ): { state: ResponseState; event?: StoredEvent } | undefined {
    const record = this.records.get(id)
    if (record === undefined) return undefined
    if (record.status !== 'active') return { state: stateOf(record) }
    const stored = record.history.append(event)
    record.status = reason
    record.endId = stored.id
    // Resolved limits are validated already; the cap only keeps a direct caller's TTL from firing at once.
    record.expiry = setTimeout(() => this.drop(id), Math.min(limits.ttl, MAX_TIMER_DELAY))
    record.expiry.unref()
    return { state: stateOf(record), event: stored }
  }

  get(id: string): ResponseState | undefined {
    const record = this.records.get(id)
    return record === undefined ? undefined : stateOf(record)
  }

  clear(): void {
    for (const record of this.records.values()) clearTimeout(record.expiry)
    this.records.clear()
    this.byStream.clear()
  }

  private drop(id: string): void {
    const record = this.records.get(id)
    // Stryker disable next-line ConditionalExpression: drop only runs for a kept record (the eviction finds it in the map; clear and drop cancel the expiry timer when they remove one), so the guard is defensive
    if (record === undefined) return
    clearTimeout(record.expiry)
    this.records.delete(id)
    this.byStream.delete(record.stream)
  }

  private evictOldestEnded(): boolean {
    for (const [id, record] of this.records) {
      if (record.status !== 'active') {
        this.drop(id)
        return true
      }
    }
    return false
  }
}

function stateOf(record: MemoryResponse): ResponseState {
  return { status: record.status, origin: `${record.history.epoch}-0`, endId: record.endId }
}
