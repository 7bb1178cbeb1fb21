/**
 * Responses on Redis: a response's events are an ordinary Redis stream (so any instance replays it and
 * the live tail delivers it), and its lifecycle record is a hash beside it: status, the producer's
 * lease deadline, the TTL after the end, and the id of the terminal event. Every change of status
 * happens in a script that checks the status first, so of two instances that end a response at once
 * exactly one appends the terminal event, and no event is ever appended after it.
 */
import { RewindError } from '@rewind/core'
import {
  type NewEvent,
  RESPONSE_STREAM_PREFIX,
  type ResponseEnd,
  type ResponseLimits,
  type ResponseState,
  type ResponseStatus,
  SharedResponseRecords,
} from '@rewind/core/adapter'
import type { Cluster, Redis } from 'ioredis'
import type { CommandConnection } from './connection.js'
import { FIELDS } from './scripts.js'

/** A response's stream starts empty, so a client without a position starts after `0-0`. */
const ORIGIN = '0-0'

/** Redis's clock in milliseconds, the same for every instance (their own clocks may disagree). */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

/** The id of the newest entry of KEYS[2], recorded in each new entry as its predecessor. */
const PREV = `local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local prev = '0-0'
if newest[1] then prev = newest[1][1] end`

/** KEYS: record, stream. ARGV: lease, expiry bound (lifetime + ttl), ttl. Returns 1, or 0 if the id is taken. */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
${NOW}
redis.call('HSET', KEYS[1], 'status', 'active', 'lease', now + tonumber(ARGV[1]), 'ttl', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

/**
 * Sends the new id on the stream's shard channel when `ARGV[argument]` is `'1'` (on a cluster), as the
 * append script of ordinary streams does: it wakes the live tails.
 */
const notify = (argument: number): string =>
  `if ARGV[${argument}] == '1' then redis.call('SPUBLISH', KEYS[2], id) end`

/**
 * KEYS: record, stream. ARGV: maxEvents, event, string flag, data, notify flag, seq, maxBytes.
 * Appends event number `seq` only right after event `seq - 1` (the record counts them), so a stored
 * answer has no hole even when an append fails while later ones are on their way: those are refused,
 * and the producer sends them again in order. Returns the new id; for a `seq` stored already (sent
 * again after its reply was lost), the newest id, without storing it twice; `{count}` when an earlier
 * event is missing; nil once the response has ended.
 *
 * The oldest entries are then dropped while the stream holds more than `maxEvents` entries or more
 * than `maxBytes` bytes of data and event names (the record keeps the running total); the newest
 * entry always stays. Dropped entries are deleted exactly, and the first entry left records its
 * predecessor, so a client that resumes from before it gets the `evicted` gap signal.
 */
const APPEND = `
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return false end
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local seq = tonumber(ARGV[6])
if seq <= count then
  local stored = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if stored[1] then return stored[1][1] end
  return '0-1'
end
if seq ~= count + 1 then return {count} end
${PREV}
local id = redis.call('XADD', KEYS[2], '*',
  '${FIELDS.prev}', prev, '${FIELDS.event}', ARGV[2], '${FIELDS.string}', ARGV[3], '${FIELDS.data}', ARGV[4])
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0') + #ARGV[2] + #ARGV[4]
local len = redis.call('XLEN', KEYS[2])
local maxEvents = tonumber(ARGV[1])
local maxBytes = tonumber(ARGV[7])
while (len > maxEvents or bytes > maxBytes) and len > 1 do
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 64)
  local dropped = {}
  for i = 1, #oldest do
    if not ((len > maxEvents or bytes > maxBytes) and len > 1) then break end
    local fields = oldest[i][2]
    for j = 1, #fields, 2 do
      if fields[j] == '${FIELDS.event}' or fields[j] == '${FIELDS.data}' then bytes = bytes - #fields[j + 1] end
    end
    len = len - 1
    dropped[#dropped + 1] = oldest[i][1]
  end
  redis.call('XDEL', KEYS[2], unpack(dropped))
end
redis.call('HSET', KEYS[1], 'count', seq, 'bytes', bytes)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
${notify(5)}
return id
`

/**
 * KEYS: record, stream. ARGV: reason, end event name, only-if-lapsed flag, fallback ttl, notify flag.
 * Returns {status, end id} after the call, or nil for an unknown response.
 */
const END = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status ~= 'active' then return {status, redis.call('HGET', KEYS[1], 'end') or ''} end
if ARGV[3] == '1' then
  ${NOW}
  if tonumber(redis.call('HGET', KEYS[1], 'lease') or '0') > now then return {'active', ''} end
end
${PREV}
local id = redis.call('XADD', KEYS[2], '*',
  '${FIELDS.prev}', prev, '${FIELDS.event}', ARGV[2], '${FIELDS.string}', '1', '${FIELDS.data}', ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'end', id)
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
${notify(5)}
return {ARGV[1], id}
`

/** KEYS: record. ARGV: lease. Returns 1, or 0 once the response is no longer active. */
const RENEW = `
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
${NOW}
redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[1]))
return 1
`

interface ResponseScripts {
  rewindResponseCreate(
    record: string,
    stream: string,
    lease: number,
    expiry: number,
    ttl: number,
  ): Promise<number>
  rewindResponseAppend(
    record: string,
    stream: string,
    maxEvents: number,
    event: string,
    string: '0' | '1',
    data: string,
    notify: '0' | '1',
    seq: number,
    maxBytes: number,
  ): Promise<string | [count: number] | null>
  rewindResponseEnd(
    record: string,
    stream: string,
    reason: ResponseEnd,
    endEvent: string,
    onlyIfLapsed: '0' | '1',
    ttl: number,
    notify: '0' | '1',
  ): Promise<[status: string, endId: string] | null>
  rewindResponseRenew(record: string, lease: number): Promise<number>
}

type ScriptedClient = (Redis | Cluster) & ResponseScripts

/** The responses of a Redis store (`store.responses`); the hub drives them. */
export class RedisResponses extends SharedResponseRecords {
  constructor(
    private readonly connection: CommandConnection,
    /** The Redis key of a stream. */
    private readonly key: (stream: string) => string,
    private readonly unavailable: (action: string, stream: string, cause: unknown) => Error,
  ) {
    super()
    const client = connection.client
    client.defineCommand('rewindResponseCreate', { numberOfKeys: 2, lua: CREATE })
    client.defineCommand('rewindResponseAppend', { numberOfKeys: 2, lua: APPEND })
    client.defineCommand('rewindResponseEnd', { numberOfKeys: 2, lua: END })
    client.defineCommand('rewindResponseRenew', { numberOfKeys: 1, lua: RENEW })
  }

  async create(_id: string, stream: string, limits: ResponseLimits): Promise<boolean> {
    const created = await this.run('create', stream, (client) =>
      client.rewindResponseCreate(
        this.record(stream),
        this.key(stream),
        limits.lease,
        limits.maxLifetime + limits.ttl,
        limits.ttl,
      ),
    )
    return created === 1
  }

  async append(
    _id: string,
    stream: string,
    event: NewEvent,
    limits: ResponseLimits,
    seq: number,
  ): Promise<string | undefined> {
    const reply = await this.run('append to', stream, (client) =>
      client.rewindResponseAppend(
        this.record(stream),
        this.key(stream),
        limits.maxEvents,
        event.event ?? '',
        typeof event.value === 'string' ? '1' : '0',
        event.data,
        this.notify,
        seq,
        limits.maxBytes,
      ),
    )
    if (Array.isArray(reply)) {
      throw new RewindError(
        'ERR_HISTORY_LOST',
        `Redis holds ${reply[0]} events of the response in ${JSON.stringify(stream)}, so event ${seq} cannot follow them: it lost some (a restart without persistence, a failover to a lagging replica)`,
      )
    }
    return reply ?? undefined
  }

  /** One atomic script, told whether a live lease stops it. */
  protected async finish(
    stream: string,
    event: NewEvent,
    reason: ResponseEnd,
    limits: ResponseLimits,
    onlyIfLapsed: boolean,
  ): Promise<{ state: ResponseState } | undefined> {
    const reply = await this.run('end', stream, (client) =>
      client.rewindResponseEnd(
        this.record(stream),
        this.key(stream),
        reason,
        event.event ?? '',
        onlyIfLapsed ? '1' : '0',
        limits.ttl,
        this.notify,
      ),
    )
    if (reply === null) return undefined
    return { state: stateOf(reply[0], reply[1]) }
  }

  async get(id: string): Promise<ResponseState | undefined> {
    const stream = `${RESPONSE_STREAM_PREFIX}${id}`
    const [status, endId] = await this.run('read', stream, (client) =>
      client.hmget(this.record(stream), 'status', 'end'),
    )
    // ioredis answers null for a field the hash lacks (here: no record).
    return status == null ? undefined : stateOf(status, endId ?? '')
  }

  async renew(id: string, lease: number): Promise<boolean> {
    const stream = `${RESPONSE_STREAM_PREFIX}${id}`
    return (
      (await this.run('renew', stream, (client) =>
        client.rewindResponseRenew(this.record(stream), lease),
      )) === 1
    )
  }

  /** `'1'` on a cluster, where appends wake the live tails with `SPUBLISH`. */
  private get notify(): '0' | '1' {
    return this.connection.cluster === undefined ? '0' : '1'
  }

  /**
   * The key of a response's record: its stream's key with a suffix no response id can have, after
   * the stream's hash tag, so both are in one slot.
   */
  private record(stream: string): string {
    return `${this.key(stream)}:record`
  }

  private run<T>(action: string, stream: string, send: (client: ScriptedClient) => Promise<T>): Promise<T> {
    return this.connection.run(
      (client) => send(client as unknown as ScriptedClient),
      (cause) => this.unavailable(`${action} the response of`, stream, cause),
    )
  }
}

function stateOf(status: string, endId: string): ResponseState {
  return {
    status: status as ResponseStatus,
    origin: ORIGIN,
    endId: endId === '' ? undefined : endId,
  }
}
