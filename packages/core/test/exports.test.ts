/**
 * The public surface, chosen on purpose: the names of the root entry and of the two subpaths are
 * pinned here and listed in the README ("Exports"), so a name is added or dropped deliberately. The
 * built declarations carry nothing internal.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import * as adapter from '../src/adapter.js'
import * as frame from '../src/frame.js'
import * as root from '../src/index.js'

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url))
const README = readFileSync(`${PACKAGE_DIR}README.md`, 'utf8')

const ROOT_VALUES = [
  'DEFAULT_CLOSE_GRACE',
  'DEFAULT_END_EVENT',
  'DEFAULT_ERROR_REPORT_INTERVAL',
  'DEFAULT_GAP_EVENT',
  'DEFAULT_HEARTBEAT_INTERVAL',
  'DEFAULT_MAX_BYTES',
  'DEFAULT_MAX_EVENTS',
  'DEFAULT_MAX_EVENT_BYTES',
  'DEFAULT_MAX_QUEUE_BYTES',
  'DEFAULT_MAX_RESPONSES',
  'DEFAULT_MAX_STREAMS',
  'DEFAULT_OVERLOAD_RETRY',
  'DEFAULT_RESPONSE_LEASE',
  'DEFAULT_RESPONSE_MAX_BYTES',
  'DEFAULT_RESPONSE_MAX_EVENTS',
  'DEFAULT_RESPONSE_MAX_LIFETIME',
  'DEFAULT_RESPONSE_TTL',
  'DEFAULT_RETRY',
  'MAX_STREAM_NAME_LENGTH',
  'MAX_TIMER_DELAY',
  'REWIND_ERROR_CODES',
  'RewindError',
  'createHub',
  'createMemoryStore',
  'throttleErrors',
]

const FRAME_VALUES = [
  'assertFieldValue',
  'encodeComment',
  'encodeData',
  'encodeEvent',
  'encodeIdOnly',
  'encodeRetry',
  'serializeData',
]

const ADAPTER_VALUES = [
  'EVENT_STREAM_CONTENT_TYPE',
  'LAST_EVENT_ID_QUERY_PARAMETER',
  'MAX_LAST_EVENT_ID_LENGTH',
  'MemoryHistory',
  'RESPONSE_STREAM_PREFIX',
  'hubFromOptions',
  'isAfter',
  'parseLastEventId',
  'readResumeId',
  'eventStreamHeaders',
  'serveSink',
  'UNAVAILABLE_BODY',
  'UNKNOWN_RESPONSE_BODY',
  'timerDelay',
  'positiveInteger',
  'describeValue',
  'describeError',
  'storeErrorReport',
  'ServedStreams',
]

describe('exports', () => {
  it('the root entry holds what an application uses, and no Hub value: createHub is the one constructor', () => {
    expect(Object.keys(root).sort()).toEqual([...ROOT_VALUES].sort())
    expect('Hub' in root).toBe(false)
    expect('hubFromOptions' in root).toBe(false)
  })

  it('@rewind/core/frame holds the framing functions', () => {
    expect(Object.keys(frame).sort()).toEqual([...FRAME_VALUES].sort())
  })

  it('@rewind/core/adapter holds what adapters and stores are built from', () => {
    expect(Object.keys(adapter).sort()).toEqual([...ADAPTER_VALUES].sort())
  })

  it('every exported value is listed in the README', () => {
    const missing = [...ROOT_VALUES, ...FRAME_VALUES, ...ADAPTER_VALUES].filter(
      (name) => !README.includes(`\`${name}`),
    )
    expect(missing).toEqual([])
  })
})

describe('built declarations', () => {
  const declarations = readdirSync(`${PACKAGE_DIR}dist`)
    .filter((file) => file.endsWith('.d.ts') || file.endsWith('.d.cts'))
    .map((file) => readFileSync(`${PACKAGE_DIR}dist/${file}`, 'utf8'))

  it('exist for the root and both subpaths', () => {
    const files = readdirSync(`${PACKAGE_DIR}dist`)
    for (const entry of ['index', 'frame', 'adapter']) {
      expect(files).toContain(`${entry}.d.ts`)
      expect(files).toContain(`${entry}.d.cts`)
    }
  })

  it('carry no @internal member and no mutable member of the hub', () => {
    const all = declarations.join('\n')
    expect(all).not.toContain('@internal')
    const hub = /declare class Hub<[\s\S]*?\n}/.exec(all)?.[0]
    expect(hub).toBeDefined()
    // Every field of the class (a member line, at the class's indentation) is readonly, private, or
    // an accessor: nothing an application can assign.
    const fields = hub!.split('\n').filter((line) => /^ {4}[A-Za-z_$][\w$]*\??:/.test(line))
    expect(fields).toEqual([])
    for (const internal of ['counters', 'turn', 'markTurn', 'decideGap', 'readHistory', 'release']) {
      expect(hub).not.toMatch(new RegExp(`^\\s*(readonly )?${internal}[(:<]`, 'm'))
    }
  })
})
