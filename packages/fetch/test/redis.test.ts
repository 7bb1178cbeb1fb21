/**
 * The Fetch adapter on an asynchronous store (Redis): the `Response` resolves once the client's
 * position is fixed, so an event published as soon as the client has its response reaches it (as
 * `open` means subscribed on the Node adapters); answers end and then answer 204 from the store.
 */
import { createRedisStore, type RedisStore } from '@rewind/redis'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { waitUntil } from '../../express/test/helpers/wait.js'
import { deleteKeys, redisForTests, uniquePrefix } from '../../redis/test/helpers/redis-server.js'
import { sse } from '../src/index.js'

const server = await redisForTests('@rewind/fetch on Redis')

describe.skipIf(server === undefined)('@rewind/fetch on the Redis store', () => {
  const prefixes: string[] = []
  const stores: RedisStore[] = []
  const made: { close(): Promise<void> }[] = []

  afterAll(async () => {
    await Promise.all(made.map((events) => events.close()))
    await Promise.all(stores.map((store) => store.close()))
    const admin = new Redis(server!.url)
    for (const prefix of prefixes) await deleteKeys(admin, prefix)
    admin.disconnect()
    await server!.close()
  })

  function events() {
    const prefix = uniquePrefix('fetch')
    prefixes.push(prefix)
    const store = createRedisStore({ redis: server!.url, prefix })
    stores.push(store)
    const created = sse({ store })
    made.push(created)
    return created
  }

  async function textOf(response: Response, until: (text: string) => boolean): Promise<string> {
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ''
    const deadline = Date.now() + 5000
    while (!until(text)) {
      if (Date.now() > deadline) throw new Error(`still waiting; body so far: ${JSON.stringify(text)}`)
      const { value, done } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    await reader.cancel().catch(() => {})
    return text
  }

  it('resolves the Response once subscribed: an event published right after it arrives', async () => {
    const live = events()
    for (let i = 0; i < 10; i++) {
      const response = await live.serve(new Request('http://localhost/events'), 'news')
      const id = await live.publish('news', { data: `right after ${i}` })
      const text = await textOf(response, (body) => body.includes(`id: ${id}\ndata: right after ${i}`))
      expect(text).toContain(`data: right after ${i}`)
    }
  })

  it('serves an answer to its end, then 204 to a client that has it, and 404 for an unknown id', async () => {
    const live = events()
    const { id, done } = await live.responses.start(
      (async function* () {
        yield 'a'
        yield 'b'
      })(),
    )
    await done
    const response = await live.serve(new Request('http://localhost/responses'), { response: id })
    expect(response.status).toBe(200)
    const text = await textOf(response, (body) => body.includes('event: rewind-end'))
    expect(text).toMatch(/data: a\n\n[\s\S]*data: b\n\n[\s\S]*event: rewind-end\ndata: done\n\n/)
    const endId = /id: (\S+)\nevent: rewind-end/.exec(text)![1]!
    const again = await live.serve(
      new Request('http://localhost/responses', { headers: { 'last-event-id': endId } }),
      { response: id },
    )
    expect(again.status).toBe(204)
    const unknown = await live.serve(new Request('http://localhost/responses'), { response: 'nope' })
    expect(unknown.status).toBe(404)
    await waitUntil(() => live.hub.stats().connections === 0, 'the streams to end')
  })
})
