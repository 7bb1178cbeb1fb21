/**
 * Redis going back in time, on a redis-server of the test's own: it reloads an older snapshot (as
 * after a crash with RDB persistence, or a failover to a lagging replica), so ids it once issued are
 * gone while later ones follow. A client resuming from such an id must be told, never fed the later
 * events as if nothing were missing.
 */
import { Redis } from 'ioredis'
import { expect, it } from 'vitest'
import { BrowserClient, RawClient } from '../../../test/support/sse-clients.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { describeOnRedis, recoveringStore, spawnForTests } from './helpers/redis-server.js'
import { startApp } from './helpers/sse.js'

const redis = await spawnForTests('rollback')

describeOnRedis('Redis rolled back to an older snapshot', redis, (redis) => {
  it('signals a gap to a client resuming from an id Redis lost, before and after new ids pass it', async () => {
    const { store, errors } = recoveringStore(redis.url, 'rollback')
    const app = await startApp(store, { heartbeatInterval: 40, onError: (e) => errors.push(e) })
    const clients: { close(): void }[] = []
    try {
      const kept: string[] = []
      for (let i = 0; i < 3; i++) kept.push(await app.hub.publish('s', { data: `kept${i}` }))
      const admin = new Redis(redis.url)
      // SAVE writes the snapshot into the server's own directory; a restart loads it back.
      expect(await admin.save()).toBe('OK')
      await admin.quit()
      const lost: string[] = []
      for (let i = 0; i < 3; i++) lost.push(await app.hub.publish('s', { data: `lost${i}` }))

      // A client that read up to an id published after the snapshot, and an EventSource that stays
      // connected through the restart and reconnects by itself.
      const reader = await RawClient.open(app.url('s'), kept[2])
      clients.push(reader)
      await waitUntil(() => reader.messages.length === 3, 'the events after the snapshot')
      expect(reader.lastEventId).toBe(lost[2])
      const browser = new BrowserClient(`${app.url('s')}?lastEventId=${encodeURIComponent(kept[2]!)}`)
      clients.push(browser)
      await waitUntil(() => browser.messages.length === 3, 'the browser to get the events after the snapshot')

      await redis.stop('SIGKILL')
      await redis.start()

      // Redis now holds only the snapshot: the client's id is newer than anything it has.
      let early: RawClient | undefined
      for (let tries = 0; tries < 200; tries++) {
        early = await RawClient.open(app.url('s'), reader.lastEventId)
        clients.push(early)
        await waitUntil(() => early!.ended || early!.events.length > 0, 'an answer')
        if (early.events.length > 0) break
        await sleep(20)
      }
      await waitUntil(() => early!.messages.length === 3, 'the replay of what the snapshot holds')
      expect(early!.gaps.map((gap) => gap.data)).toEqual(['unknown'])
      expect(early!.messages.map((message) => message.id)).toEqual(kept)

      // New ids move past the lost ones: the client's id now lies between retained entries.
      const after: string[] = []
      for (let i = 0; i < 2; i++) after.push(await app.hub.publish('s', { data: `after${i}` }))
      expect(after[0]! > lost[2]!).toBe(true)
      // The live tail, whose last id is one Redis lost, sees the hole once it reads the new entries
      // and ends the subscribers following the stream (they resume from history). A client that
      // connects before that can be among them, and is ended with nothing: an EventSource comes
      // back (the browser below does), a raw client does not. So the resumed clients connect after.
      await waitUntil(
        () => errors.some((error) => String(error).includes('missed the entries')),
        'the live tail to see the hole',
      )
      for (const id of [lost[2]!, lost[0]!]) {
        const resumed = await RawClient.open(app.url('s'), id)
        clients.push(resumed)
        await waitUntil(
          () => resumed.messages.some((message) => message.id === after[1]),
          // What the client got, so a failure says where the replay stopped.
          () =>
            `the replay after ${id} (status ${resumed.status}, ended ${resumed.ended}, events ${JSON.stringify(resumed.events)}, ids published after ${JSON.stringify(after)}, store errors ${errors.map(String).join('; ')})`,
        )
        const silent = resumed.gaps.length === 0 ? resumed.messages.length : 0
        console.info(`resume from lost id ${id}: ${silent} events delivered without a gap signal`)
        expect(
          resumed.gaps.map((gap) => gap.data),
          id,
        ).toEqual(['unknown'])
        expect(resumed.messages.map((message) => message.id)).toEqual([...kept, ...after])
      }

      // The EventSource was ended by the live tail (which saw the hole) and came back with its last
      // id, which Redis lost: it gets the gap signal too.
      await waitUntil(
        () => browser.messages.some((message) => message.id === after[1]),
        'the browser to get the new events',
      )
      const seen = browser.events.map((event) => (event.event === 'rewind-gap' ? event.data : event.id))
      expect(seen).toEqual([...lost, 'unknown', ...kept, ...after])
    } finally {
      for (const client of clients) client.close()
      await app.close()
      await store.close()
    }
  })
})
