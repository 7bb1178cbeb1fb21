/**
 * The Lua scripts of the store, sent with EVALSHA (ioredis falls back to EVAL when Redis has not
 * cached them yet, for example after a restart). Scripts run atomically, which is what lets an entry
 * record its predecessor and a read see its bounds and its page in one consistent state.
 */
import type { Redis } from 'ioredis'

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
 * KEYS[1] stream key; ARGV: trim mode (`~` or `=`), maxLen, event, string flag, data.
 * Every entry carries all four fields, even an empty event: entries with the same fields as their
 * listpack's first entry are stored without field names, which keeps each one small.
 */
const APPEND = `
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = '0-0'
if newest[1] then prev = newest[1][1] end
return redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], ARGV[2], '*',
  '${FIELDS.prev}', prev, '${FIELDS.event}', ARGV[3], '${FIELDS.string}', ARGV[4], '${FIELDS.data}', ARGV[5])
`

/**
 * KEYS[1] stream key; ARGV[1] start of the page (an XRANGE start such as \`(1-2\`, or empty for no
 * page), ARGV[2] page size. Returns the first retained id, its predecessor, the newest id (all empty
 * for an empty stream) and the page.
 */
const READ = `
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if not first[1] then return {'', '', '', {}} end
local prev = ''
local fields = first[1][2]
for i = 1, #fields, 2 do
  if fields[i] == '${FIELDS.prev}' then prev = fields[i + 1] break end
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local page = {}
if ARGV[1] ~= '' then page = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2]) end
return {first[1][1], prev, newest[1][1], page}
`

/** KEYS[1] stream key. Returns the stream's last generated id, or `0-0` when the key does not exist. */
const START = `
if redis.call('EXISTS', KEYS[1]) == 0 then return '0-0' end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return info[i + 1] end
end
return '0-0'
`

/** A raw stream entry as ioredis returns it: the id and the flat field/value list. */
export type RawEntry = [id: string, fields: string[]]

/** What the read script returns. */
export type ReadReply = [firstId: string, firstPrev: string, newestId: string, page: RawEntry[]]

/** A client with the store's scripts defined on it. */
export interface ScriptedRedis extends Redis {
  rewindAppend(
    key: string,
    mode: '~' | '=',
    maxLen: number,
    event: string,
    string: '0' | '1',
    data: string,
  ): Promise<string>
  rewindRead(key: string, start: string, count: number): Promise<ReadReply>
  rewindStart(key: string): Promise<string>
}

/**
 * Defines the scripts as commands of `client` (idempotent). The names are prefixed so they do not
 * collide with commands an application defines on a client it shares with the store.
 */
export function defineScripts(client: Redis): ScriptedRedis {
  client.defineCommand('rewindAppend', { numberOfKeys: 1, lua: APPEND })
  client.defineCommand('rewindRead', { numberOfKeys: 1, lua: READ })
  client.defineCommand('rewindStart', { numberOfKeys: 1, lua: START })
  return client as ScriptedRedis
}
