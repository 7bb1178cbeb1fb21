/**
 * The Lua scripts of the store, sent with EVALSHA (ioredis falls back to EVAL when Redis has not
 * cached them yet, for example after a restart). Scripts run atomically, which is what lets an entry
 * record its predecessor and a read see its bounds and its page in one consistent state.
 */
import type { Cluster, Redis } from 'ioredis'

/** Field names of a stream entry. */
export const FIELDS = {
  /** Id of the entry that was newest when this one was added (`0-0` for the first). */
  prev: 'prev',
  /** Event type; empty for the default `message`. */
  event: 'event',
  /** `1` when the value was published as a string (then `data` is the value itself), else `0`. */
  string: 'string',
  /** The data as serialized at publish time. */
  data: 'data',
} as const

/**
 * Lua shared by the scripts. `lastGenerated` is the id Redis last generated in a stream: the newest
 * entry's, or, once trimming by age has emptied the stream, the id of the entry it removed last.
 * `trimByAge` removes the entries older than `maxAge` ms (`'0'`: none) by Redis's own clock, which is
 * also the clock of the ids it generates.
 */
const SHARED_LUA = `
local function lastGenerated(key)
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
local function trimByAge(key, mode, maxAge)
  if maxAge == '0' then return end
  local now = redis.call('TIME')
  local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(maxAge)
  if cutoff > 0 then redis.call('XTRIM', key, 'MINID', mode, string.format('%.0f', cutoff)) end
end
`

/**
 * KEYS[1] stream key; ARGV: trim mode (`~` or `=`), maxLen, maxAge (ms, `'0'` for none), stream TTL
 * (ms, `'0'` to keep the key forever), notify flag (`'1'` on a cluster: the newest id is sent with
 * `SPUBLISH` on the shard channel named like the key, which wakes the cluster's live tails; never
 * sent on a single server, whose tail blocks in `XREAD`), then for each event to append, in order:
 * its type, string flag and data. Returns the new ids, in order. One call for a burst (see
 * append-batches.ts): a tail blocked in `XREAD` is woken once, after the script, with all of them.
 * Every entry carries all four fields, even an empty event: entries with the same fields as their
 * listpack's first entry are stored without field names, which keeps each one small. Each entry
 * records the id before it; a stream that exists but is empty (trimmed by age) still records its
 * last id as the predecessor, so a client that saw it resumes without a false gap. The TTL is set
 * again on every append, so only an idle stream's key expires.
 */
const APPEND = `${SHARED_LUA}
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = '0-0'
if newest[1] then prev = newest[1][1]
elseif redis.call('EXISTS', KEYS[1]) == 1 then prev = lastGenerated(KEYS[1]) end
local ids = {}
for i = 6, #ARGV, 3 do
  prev = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], ARGV[2], '*',
    '${FIELDS.prev}', prev, '${FIELDS.event}', ARGV[i], '${FIELDS.string}', ARGV[i + 1], '${FIELDS.data}', ARGV[i + 2])
  ids[#ids + 1] = prev
end
trimByAge(KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] == '0' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
if ARGV[5] == '1' then redis.call('SPUBLISH', KEYS[1], prev) end
return ids
`

/**
 * KEYS[1] stream key; ARGV[1] start of the page (an XRANGE start such as \`(1-2\`, or empty for no
 * page), ARGV[2] page size, ARGV[3] trim mode, ARGV[4] maxAge (ms, `'0'` for none). Trims by age
 * first, so an idle stream does not serve entries older than `maxAge`. Returns the first retained
 * id, its predecessor, the newest id (all empty for an empty stream), the page, and the stream's
 * last generated id (empty when the key does not exist).
 */
const READ = `${SHARED_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', '', '', {}, ''} end
trimByAge(KEYS[1], ARGV[3], ARGV[4])
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if not first[1] then return {'', '', '', {}, lastGenerated(KEYS[1])} end
local prev = ''
local fields = first[1][2]
for i = 1, #fields, 2 do
  if fields[i] == '${FIELDS.prev}' then prev = fields[i + 1] break end
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local page = {}
if ARGV[1] ~= '' then page = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2]) end
return {first[1][1], prev, newest[1][1], page, newest[1][1]}
`

/** KEYS[1] stream key. Returns the stream's last generated id, or `0-0` when the key does not exist. */
const START = `${SHARED_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return '0-0' end
return lastGenerated(KEYS[1])
`

/** A raw stream entry as ioredis returns it: the id and the flat field/value list. */
export type RawEntry = [id: string, fields: string[]]

/** What the read script returns. */
export type ReadReply = [
  firstId: string,
  firstPrev: string,
  newestId: string,
  page: RawEntry[],
  lastGeneratedId: string,
]

/** The store's scripts, as commands of a client. */
export interface Scripts {
  rewindAppend(
    key: string,
    mode: '~' | '=',
    maxLen: number,
    maxAge: string,
    streamTtl: string,
    notify: '0' | '1',
    /** Type, string flag (`'1'` for a string value) and data of each event, in order. */
    ...events: string[]
  ): Promise<string[]>
  rewindRead(key: string, start: string, count: number, mode: '~' | '=', maxAge: string): Promise<ReadReply>
  rewindStart(key: string): Promise<string>
}

/** A client (of one server or of a cluster) with the store's scripts defined on it. */
export type ScriptedRedis = (Redis | Cluster) & Scripts

/**
 * Defines the scripts as commands of `client` (idempotent). The names are prefixed so they do not
 * collide with commands an application defines on a client it shares with the store.
 */
export function defineScripts(client: Redis | Cluster): ScriptedRedis {
  client.defineCommand('rewindAppend', { numberOfKeys: 1, lua: APPEND })
  client.defineCommand('rewindRead', { numberOfKeys: 1, lua: READ })
  client.defineCommand('rewindStart', { numberOfKeys: 1, lua: START })
  return client as ScriptedRedis
}
