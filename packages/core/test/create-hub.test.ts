import { describe, expect, it } from 'vitest'
import { thrownBy } from '../../../test/support/throws.js'
import { hubFromOptions } from '../src/adapter.js'
import { RewindError } from '../src/errors.js'
import { createHub } from '../src/index.js'
import { CORE_VERSION } from '../src/version.js'
import { cleanUpAfterEach } from './helpers/hubs.js'
import { MemorySink } from './helpers/memory-sink.js'

cleanUpAfterEach()

describe('hubFromOptions', () => {
  it('returns the given hub, or builds one from the options over the defaults', async () => {
    const shared = createHub()
    expect(hubFromOptions({ hub: shared })).toBe(shared)
    const built = hubFromOptions({ gapEvent: 'gap' }, { gapEvent: 'ignored', retry: null })
    expect(built).not.toBe(shared)
    // The options win over the defaults: the gap signal of a malformed position is named 'gap'.
    const s = new MemorySink()
    built.subscribe('s', s, { lastEventId: null })
    expect(s.parse().events.map((e) => e.event)).toEqual(['gap'])
    await Promise.all([shared.close(), built.close()])
  })

  it('refuses a hub together with hub options, naming the ones that would be ignored', async () => {
    const shared = createHub()
    try {
      hubFromOptions({ hub: shared, history: { maxEvents: 5 }, retry: undefined as never })
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(RewindError)
      expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'hub' })
      expect((error as Error).message).toContain('history')
      expect((error as Error).message).not.toContain('retry')
    }
    expect(() => hubFromOptions({ hub: {} as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
    await shared.close()
  })

  it('names exactly the options that would be ignored, and the fix', async () => {
    const shared = createHub()
    expect(thrownBy(() => hubFromOptions({ hub: shared, gapEvent: 'g', retry: 5 }))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'hub',
      message:
        'pass either a hub or hub options, not both: gapEvent, retry would be ignored; give them to createHub() instead',
    })
    await shared.close()
  })

  it('refuses a value that is no hub (null and unbranded values too) as not a hub', () => {
    const notAHub = (hub: unknown) => thrownBy(() => hubFromOptions({ hub: hub as never }))
    for (const hub of [null, {}, 5, { [Symbol.for('rewind.hub')]: 1 }]) {
      expect(notAHub(hub)).toBeInstanceOf(RewindError)
      expect(notAHub(hub)).toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
        field: 'hub',
        message: 'hub must be a hub made by createHub()',
      })
    }
  })
})

describe('the brand of a hub', () => {
  it("is this copy's version under the global rewind.hub symbol, which other copies read", () => {
    const hub = createHub()
    expect((hub as unknown as Record<symbol, unknown>)[Symbol.for('rewind.hub')]).toBe(CORE_VERSION)
    return hub.close()
  })

  it('tells a hub of another version apart, naming both versions and the fix', () => {
    const foreign = { [Symbol.for('rewind.hub')]: '0.0.9' }
    const error = thrownBy(() => hubFromOptions({ hub: foreign as never }))
    expect(error).toBeInstanceOf(RewindError)
    expect(error).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'hub',
      message: `hub was made by another copy of @rewind/core: two copies of @rewind/core are installed (${CORE_VERSION} and 0.0.9): dedupe them (npm dedupe / pnpm dedupe) so that the app and the adapters share one`,
    })
  })

  it('tells a hub of the same version apart as one loaded with both import and require', () => {
    const foreign = { [Symbol.for('rewind.hub')]: CORE_VERSION }
    expect(thrownBy(() => hubFromOptions({ hub: foreign as never }))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'hub',
      message: `hub was made by another copy of @rewind/core: two copies of @rewind/core are installed (${CORE_VERSION} and ${CORE_VERSION}): dedupe them (npm dedupe / pnpm dedupe) so that the app and the adapters share one; if both are ${CORE_VERSION}, one is loaded with import and one with require: use one`,
    })
  })
})
