/**
 * Responses (answers) on a shared store, across two app instances: the fixture (two hubs on one
 * namespace of a store, each behind its own HTTP server) and the behaviours every shared store must
 * show, run by the Redis and the Postgres suites against their real server. A store's own file adds
 * what only it does (expiry in Redis, sweeps in Postgres...).
 */
import { createServer, type Server } from 'node:http'
import { createHub, type Hub, type HubOptions, type StreamItem } from '@rewind/core'
import type { AsyncHistoryStore } from '@rewind/core/adapter'
import { EventSource } from 'eventsource'
import { afterEach, expect, it } from 'vitest'
import { QUICK_HUB } from './hub-options.js'
import { listen } from './listen.js'
import { RawClient } from './sse-clients.js'
import { sleep, waitUntil } from './wait.js'

/** A store the fixture can close. */
export type ClosableStore = AsyncHistoryStore & { close(): Promise<void> }

/** One app instance: a hub on a shared store, serving `/responses/<id>`. */
export interface Instance<S extends ClosableStore> {
  readonly hub: Hub<Promise<string>>
  readonly store: S
  readonly http: Server
  readonly requests: { count: number }
  url(id: string): string
  close(): Promise<void>
}

/** How a suite makes stores: stores made on one namespace (a key prefix, a schema) share data. */
export interface StoreMaker<S extends ClosableStore, O> {
  /** A fresh namespace; the suite drops it after its tests. */
  namespace(): string
  store(namespace: string, options: O | undefined): S
}

export interface Instances<S extends ClosableStore, O> {
  instance(namespace: string, options?: Omit<HubOptions, 'store'>, storeOptions?: O): Promise<Instance<S>>
  /** A fresh namespace from the maker, listed in `namespaces`. */
  namespace(): string
  /** Every namespace made so far, for the suite to drop after its tests. */
  readonly namespaces: readonly string[]
  /** Two instances on one fresh namespace. */
  pair(options?: Omit<HubOptions, 'store'>): Promise<[Instance<S>, Instance<S>]>
  /** A byte-level client of `url`, closed after the test. */
  open(url: string, lastEventId?: string): Promise<RawClient>
  /** Closes `client` after the test. */
  track(client: { close(): void }): void
}

/** The fixture; call it inside a `describe`, which then closes every instance and client after each test. */
export function answerInstances<S extends ClosableStore, O>(maker: StoreMaker<S, O>): Instances<S, O> {
  const instances: Instance<S>[] = []
  const clients: { close(): void }[] = []
  const namespaces: string[] = []

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close()
    for (const instance of instances.splice(0)) await instance.close()
  })

  async function instance(
    namespace: string,
    options: Omit<HubOptions, 'store'> = {},
    storeOptions?: O,
  ): Promise<Instance<S>> {
    const store = maker.store(namespace, storeOptions)
    // Errors are expected where a test cuts an instance off its store; the assertions say what clients see.
    const hub = createHub({ ...QUICK_HUB, closeGrace: 200, ...options, store })
    const requests = { count: 0 }
    const http = createServer((req, res) => {
      requests.count++
      hub.serve(req, res, { response: decodeURIComponent((req.url ?? '').split('/')[2] ?? '') })
    })
    http.keepAliveTimeout = 20
    const listening = await listen(http)
    const created: Instance<S> = {
      hub,
      store,
      http,
      requests,
      url: (id) => `${listening.url}/responses/${id}`,
      async close() {
        await hub.close()
        await store.close()
        await listening.close()
      },
    }
    instances.push(created)
    return created
  }

  function namespace(): string {
    const made = maker.namespace()
    namespaces.push(made)
    return made
  }

  return {
    instance,
    namespace,
    namespaces,
    async pair(options = {}) {
      const shared = namespace()
      return [await instance(shared, options), await instance(shared, options)]
    },
    async open(url, lastEventId) {
      const client = await RawClient.open(url, lastEventId)
      clients.push(client)
      return client
    },
    track(client) {
      clients.push(client)
    },
  }
}

/** A producer of `n` tokens `t0`, `t1`..., one every `interval` ms; `record` says how it stopped. */
export function tokens(n: number, interval: number, record: { finished?: boolean; aborted?: boolean } = {}) {
  return async function* (signal: AbortSignal): AsyncGenerator<StreamItem> {
    try {
      for (let i = 0; i < n; i++) {
        await sleep(interval)
        yield `t${i}`
      }
    } finally {
      record.finished = true
      record.aborted = signal.aborted
    }
  }
}

export const expected = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`)
export const dataOf = (client: RawClient) =>
  client.events.filter((e) => e.event === undefined).map((e) => e.data)
export const endOf = (client: RawClient) => client.events.find((e) => e.event === 'rewind-end')?.data

/** The behaviours every shared store shows across instances; call inside the store's `describe`. */
export function answersAcrossInstances<S extends ClosableStore, O>({
  pair,
  open,
  track,
}: Instances<S, O>): void {
  it('replays a response started on A from its start on B, then live, then the end', async () => {
    const [a, b] = await pair()
    const { id, done } = await a.hub.responses.start(tokens(40, 5))
    await sleep(50)
    const client = await open(b.url(id))
    await waitUntil(() => client.ended, 'the end of the body')
    expect(dataOf(client)).toEqual(expected(40))
    expect(endOf(client)).toBe('done')
    expect(await done).toBe('done')
    // The id of the end answers 204 on either instance: an EventSource stops there.
    const again = await open(a.url(id), client.lastEventId)
    expect(again.status).toBe(204)
  })

  it('resumes a client cut on A exactly on B', async () => {
    const [a, b] = await pair()
    const { id } = await a.hub.responses.start(tokens(100, 2))
    const first = await open(a.url(id))
    await waitUntil(() => first.events.length >= 15, '15 events')
    first.close()
    const second = await open(b.url(id), first.lastEventId)
    await waitUntil(() => second.ended, 'the end of the body')
    expect([...dataOf(first), ...dataOf(second)]).toEqual(expected(100))
    expect(endOf(second)).toBe('done')
  })

  it('an eventsource client on B stops for good after the end, with every token once', async () => {
    const [a, b] = await pair()
    const { id } = await a.hub.responses.start(tokens(30, 2))
    const source = new EventSource(b.url(id))
    track(source)
    const seen: string[] = []
    source.onmessage = (event) => seen.push(event.data)
    await waitUntil(() => source.readyState === EventSource.CLOSED, 'the client to stop')
    expect(seen).toEqual(expected(30))
    const requests = b.requests.count
    await sleep(200)
    expect(b.requests.count).toBe(requests)
  })

  it('a cancel received on B stops the producer running on A within 1 s', async () => {
    const [a, b] = await pair()
    const record: { finished?: boolean; aborted?: boolean } = {}
    const { id, done } = await a.hub.responses.start(tokens(100_000, 5, record))
    const client = await open(b.url(id))
    await waitUntil(() => client.events.length >= 3, 'tokens')
    const started = performance.now()
    expect(await b.hub.responses.cancel(id)).toBe('cancelled')
    expect(await done).toBe('cancelled')
    await waitUntil(() => record.finished === true, 'the producer to stop', 1000)
    const elapsed = performance.now() - started
    expect(record.aborted).toBe(true)
    expect(elapsed).toBeLessThan(1000)
    await waitUntil(() => client.ended, 'the client to end')
    expect(endOf(client)).toBe('cancelled')
    expect(await a.hub.responses.status(id)).toBe('cancelled')
  })

  it('refuses a second producer on the same id from another instance', async () => {
    const [a, b] = await pair()
    await a.hub.responses.start(tokens(5, 20), { id: 'shared-id' })
    await expect(b.hub.responses.start(tokens(5, 1), { id: 'shared-id' })).rejects.toMatchObject({
      code: 'ERR_RESPONSE_EXISTS',
    })
  })

  it('when the producing instance stops renewing its lease, a client on B gets `failed` within 1.5 × the lease', async () => {
    const [a, b] = await pair({ responses: { lease: 400 } })
    const { id } = await a.hub.responses.start(tokens(100_000, 10))
    const client = await open(b.url(id))
    await waitUntil(() => client.events.length >= 3, 'tokens')
    // A's connections to the store are gone: it can neither append nor renew, as if the process had died.
    await a.store.close()
    const lost = performance.now()
    await waitUntil(() => client.ended, 'the client to end', 3000)
    expect(endOf(client)).toBe('failed')
    expect(performance.now() - lost).toBeLessThan(600 + 400)
  })
}
