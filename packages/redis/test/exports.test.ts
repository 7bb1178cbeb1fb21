/**
 * The public surface, values and types, pinned as core's is: `createRedisStore` is the one
 * constructor, so `RedisStore` is a type only. Each name is documented in the README ("Exports").
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { exportedNames } from '../../../test/support/exported-names.js'
import * as redis from '../src/index.js'

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url))
const ENTRY = `${PACKAGE_DIR}src/index.ts`

const VALUES = [
  'DEFAULT_BLOCK_MS',
  'DEFAULT_COMMAND_TIMEOUT',
  'DEFAULT_MAX_LEN',
  'DEFAULT_MAX_RECONNECT_DELAY',
  'DEFAULT_MIN_RECONNECT_DELAY',
  'DEFAULT_PREFIX',
  'DEFAULT_REDIS_URL',
  'DEFAULT_STREAM_TTL',
  'createRedisStore',
]

const TYPES = ['Deserializer', 'RedisStore', 'RedisStoreOptions', 'TrimMode']

describe('exports', () => {
  it('holds the constructor, the defaults and the option types, and no RedisStore value', () => {
    expect(exportedNames([ENTRY])(ENTRY, redis)).toEqual({ values: VALUES, types: TYPES })
    expect('RedisStore' in redis).toBe(false)
  })

  it('documents every exported name in the README', () => {
    const readme = readFileSync(`${PACKAGE_DIR}README.md`, 'utf8')
    expect([...VALUES, ...TYPES].filter((name) => !readme.includes(`\`${name}`))).toEqual([])
  })
})
