/**
 * The public surface, chosen on purpose: the names of the root entry and of the two subpaths, values
 * and types, are pinned here and listed in the README ("Exports"), so a name is added or dropped
 * deliberately. The
 * built declarations carry nothing internal.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { exportedNames } from '../../../test/support/exported-names.js'
import * as adapter from '../src/adapter.js'
import * as frame from '../src/frame.js'
import * as root from '../src/index.js'

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url))
const README = readFileSync(`${PACKAGE_DIR}README.md`, 'utf8')

const ROOT_VALUES = [
  'HUB_DEFAULTS',
  'MAX_STREAM_NAME_LENGTH',
  'MAX_TIMER_DELAY',
  'MEMORY_STORE_DEFAULTS',
  'RESPONSE_DEFAULTS',
  'REWIND_ERROR_CODES',
  'RewindError',
  'createHub',
  'createMemoryStore',
  'throttleErrors',
]

const ROOT_TYPES = [
  'CloseReason',
  'ConnectionInfo',
  'EventFilter',
  'EventSink',
  'GapInfo',
  'GapPolicy',
  'GapReason',
  'HistoryOptions',
  'Hub',
  'HubOptions',
  'HubResponses',
  'HubStats',
  'MemoryStore',
  'MemoryStoreOptions',
  'PublishInput',
  'ResponseEnd',
  'ResponseHandle',
  'ResponseOptions',
  'ResponseProducer',
  'ResponseSource',
  'ResponseStatus',
  'ResumeId',
  'RewindErrorCode',
  'Serializer',
  'ServeOptions',
  'StartResponseOptions',
  'StoredEvent',
  'StreamItem',
  'StreamSource',
  'SubscribeOptions',
  'Subscription',
  'ThrottleErrorsOptions',
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

const FRAME_TYPES = ['EventFields', 'Serializer']

/** What the adapters and stores of this repository import from `/adapter`, and nothing else. */
const ADAPTER_VALUES = [
  'RESPONSE_STREAM_PREFIX',
  'describeError',
  'describeValue',
  'eventStreamHeaders',
  'hubFromOptions',
  'positiveInteger',
  'readResumeId',
  'serveSink',
  'storeErrorReport',
  'ServedStreams',
  'timerDelay',
  'resolveSharedStoreOptions',
  'positiveDelay',
  'readCount',
  'boundOption',
  'decodeStoredData',
  'encodeStoredFrame',
  'SharedResponseRecords',
  'AttachedHub',
]

const ADAPTER_TYPES = [
  'AsyncHistoryStore',
  'EventSink',
  'HistoryStore',
  'NewEvent',
  'Position',
  'ReadResult',
  'ResponseEnd',
  'ResponseLimits',
  'ResponseRecords',
  'ResponseState',
  'ResponseStatus',
  'SinkAnswer',
  'SinkServeOptions',
  'StoreDelivery',
  'StoredEvent',
  'SyncHistoryStore',
  'SharedStoreOptions',
  'ResolvedSharedStoreOptions',
]

const entry = (name: string): string => `${PACKAGE_DIR}src/${name}.ts`
const namesOf = exportedNames([entry('index'), entry('frame'), entry('adapter')])

describe('exports', () => {
  it('the root entry holds what an application uses, and no Hub value: createHub is the one constructor', () => {
    expect(namesOf(entry('index'), root)).toEqual({
      values: ROOT_VALUES.sort(),
      types: ROOT_TYPES.sort(),
    })
    expect('Hub' in root).toBe(false)
    expect('hubFromOptions' in root).toBe(false)
  })

  it('@rewind/core/frame holds the framing functions', () => {
    expect(namesOf(entry('frame'), frame)).toEqual({
      values: FRAME_VALUES.sort(),
      types: FRAME_TYPES.sort(),
    })
  })

  it('@rewind/core/adapter holds what adapters and stores are built from', () => {
    expect(namesOf(entry('adapter'), adapter)).toEqual({
      values: ADAPTER_VALUES.sort(),
      types: ADAPTER_TYPES.sort(),
    })
  })

  it('the defaults are frozen objects of plain values', () => {
    for (const defaults of [root.HUB_DEFAULTS, root.MEMORY_STORE_DEFAULTS, root.RESPONSE_DEFAULTS]) {
      expect(Object.isFrozen(defaults)).toBe(true)
      for (const value of Object.values(defaults)) expect(['number', 'string']).toContain(typeof value)
    }
  })

  it('every exported name is listed in the README', () => {
    const names = [
      ...ROOT_VALUES,
      ...ROOT_TYPES,
      ...FRAME_VALUES,
      ...FRAME_TYPES,
      ...ADAPTER_VALUES,
      ...ADAPTER_TYPES,
    ]
    expect(names.filter((name) => !README.includes(`\`${name}`))).toEqual([])
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
