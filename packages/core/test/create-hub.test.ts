import { describe, expect, it } from 'vitest'
import { hubFromOptions } from '../src/adapter.js'
import { RewindError } from '../src/errors.js'
import { createHub } from '../src/index.js'
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
})
