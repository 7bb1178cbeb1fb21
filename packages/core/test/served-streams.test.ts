/** `ServedStreams`: an adapter closes a hub it created, and only its own streams of a given hub. */
import { describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { ServedStreams } from '../src/served-streams.js'
import type { Subscription } from '../src/types.js'
import { cleanUpAfterEach, hub, sink } from './helpers/hubs.js'

/** The streams `served` still holds (its private set): an ended stream must not stay in it. */
function held(served: ServedStreams): number {
  return (served as unknown as { open: Set<Subscription> }).open.size
}

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

  it('gives a created hub the retry hint itself, not the opening one, and none when there is none', async () => {
    const created = hub({ retry: 3000 })
    const served = new ServedStreams(created, false)
    const client = sink()
    served.add(created.subscribe('news', client))
    await served.close(100_000)
    const retries = client.parse().retries
    expect(retries).toHaveLength(2)
    // A random delay from half to one and a half times the hint.
    expect(retries[1]).toBeGreaterThanOrEqual(50_000)
    expect(retries[1]).toBeLessThanOrEqual(150_000)

    const quiet = hub({ retry: 3000 })
    const other = sink()
    const plain = new ServedStreams(quiet, false)
    plain.add(quiet.subscribe('news', other))
    await plain.close()
    expect(quiet.closed).toBe(true)
    expect(other.parse().retries).toEqual([3000])
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
    await expect(served.close(1000)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'retry',
      message:
        'a given hub is closed by its owner, and the retry hint with it: call hub.close({ retry }) instead',
    })
    expect(ours.ended).toBe(false)
  })

  it('with a given hub, forgets a stream once it ends, so a long-lived adapter holds only open ones', async () => {
    const given = hub()
    const served = new ServedStreams(given, true)
    const subscriptions = Array.from({ length: 3 }, () => served.add(given.subscribe('news', sink())))
    expect(held(served)).toBe(3)
    subscriptions[0]!.close()
    subscriptions[2]!.close()
    await Promise.all([subscriptions[0]!.done, subscriptions[2]!.done])
    expect(held(served)).toBe(1)
    // An ended stream is not even noted.
    served.add(subscriptions[0]!)
    expect(held(served)).toBe(1)
    await served.close()
    expect(held(served)).toBe(0)
  })

  it('with a given hub, resolves only once every stream it ended is done, one still opening included', async () => {
    const given = hub()
    const { id, done } = await given.responses.start(async function* () {
      yield 'a'
    })
    await done
    // A response's stream opens once its record is read: closed before that, it is done only after.
    let seen: Promise<{ done: boolean; closed: boolean }> | undefined
    const server = await listenForTest((req, res) => {
      const served = new ServedStreams(given, true)
      const subscription = served.add(given.serve(req, res, { response: id }))
      let ended = false
      void subscription.done.then(() => {
        ended = true
      })
      seen = served.close().then(() => ({ done: ended, closed: subscription.closed }))
    })
    const response = await fetch(server.url, { signal: AbortSignal.timeout(10_000) })
    expect(await response.text()).toBe('')
    expect(await seen).toEqual({ done: true, closed: true })
  })
})
