/** `ServedStreams`: an adapter closes a hub it created, and only its own streams of a given hub. */
import { describe, expect, it } from 'vitest'
import { ServedStreams } from '../src/served-streams.js'
import { cleanUpAfterEach, hub, sink } from './helpers/hubs.js'

cleanUpAfterEach()

describe('ServedStreams', () => {
  it('closes a hub the adapter created, with the retry hint', async () => {
    const created = hub()
    const served = new ServedStreams(created, false)
    const client = sink()
    served.add(created.subscribe('news', client))
    await served.close(1000)
    expect(created.closed).toBe(true)
    expect(client.ended).toBe(true)
    expect(client.parse().retries.at(-1)).toBeGreaterThanOrEqual(500)
  })

  it('with a given hub, ends only the streams it served and leaves the hub open', async () => {
    const given = hub()
    const served = new ServedStreams(given, true)
    const ours = sink()
    const theirs = sink()
    const subscription = served.add(given.subscribe('news', ours))
    given.subscribe('news', theirs)

    await served.close()
    expect(subscription.closed).toBe(true)
    expect(ours.ended).toBe(true)
    expect(given.closed).toBe(false)
    expect(theirs.ended).toBe(false)
    expect(given.stats().subscribers).toBe(1)
  })

  it('with a given hub, refuses a retry hint before anything ends: only the hub closing sends one', async () => {
    const given = hub()
    const served = new ServedStreams(given, true)
    const ours = sink()
    served.add(given.subscribe('news', ours))
    await expect(served.close(1000)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'retry' })
    expect(ours.ended).toBe(false)
  })
})
