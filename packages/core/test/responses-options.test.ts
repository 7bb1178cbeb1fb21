/**
 * The options, ids and handle of responses (responses.ts): what is refused and how, the defaults,
 * and the bookkeeping of running producers. Serving responses is in responses.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { listen } from '../../../test/support/listen.js'
import { createHub, type Hub, RewindError } from '../src/index.js'
import { RESPONSE_DEFAULTS, type Responses } from '../src/responses.js'
import { ManualStore } from './helpers/manual-store.js'

const hubs: Hub[] = []
afterEach(async () => {
  vi.useRealTimers()
  await Promise.all(hubs.splice(0).map((h) => h.close()))
})

function newHub(options: Parameters<typeof createHub>[0] = {}): Hub {
  const hub = createHub({ heartbeatInterval: 0, ...options }) as Hub
  hubs.push(hub)
  return hub
}

/** A producer that yields one token, then waits until `release` is called (or its signal aborts). */
function held(): { producer: (signal: AbortSignal) => AsyncGenerator<string>; release: () => void } {
  let release = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  return {
    release: () => release(),
    producer: async function* (signal) {
      yield 'first'
      await Promise.race([gate, new Promise((resolve) => signal.addEventListener('abort', resolve))])
    },
  }
}

async function refusal(promise: Promise<unknown>): Promise<RewindError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(RewindError)
  return error as RewindError
}

describe('response ids', () => {
  it('refuses an id that does not fit in a URL and a Redis key unescaped, naming the field', async () => {
    const hub = newHub()
    // Each of these would pass as a stream name, so only the id check stops them.
    const bad: unknown[] = ['a'.repeat(129), 'a/b', 'a%2F', 'a:b', '', 'a b', 'é', 42, null]
    for (const id of bad) {
      const error = await refusal(hub.responses.start(held().producer, { id: id as string }))
      expect(error.code, String(id)).toBe('ERR_INVALID_ARGUMENT')
      expect(error.field, String(id)).toBe('id')
      expect(error.message).toContain('a response id must be 1 to 128 characters among A-Z a-z 0-9 . _ ~ -')
    }
  })

  it('accepts every unreserved URL character, up to 128 of them', async () => {
    const hub = newHub()
    for (const id of ['a'.repeat(128), 'AZaz09._~-', 'x']) {
      const { producer, release } = held()
      const handle = await hub.responses.start(producer, { id })
      expect(handle.id).toBe(id)
      release()
      expect(await handle.done).toBe('done')
    }
  })

  it('names the id when it is taken, and the producer when it is not one', async () => {
    const hub = newHub()
    const { producer, release } = held()
    await hub.responses.start(producer, { id: 'taken' })
    const taken = await refusal(hub.responses.start(held().producer, { id: 'taken' }))
    expect([taken.code, taken.field]).toEqual(['ERR_RESPONSE_EXISTS', 'id'])
    const notProducer = await refusal(hub.responses.start(42 as never))
    expect([notProducer.code, notProducer.field]).toEqual(['ERR_INVALID_ARGUMENT', 'producer'])
    release()
  })

  it('names the bound that is out of range', async () => {
    const hub = newHub()
    for (const field of ['maxEvents', 'maxBytes', 'maxLifetime', 'ttl'] as const) {
      const error = await refusal(hub.responses.start(held().producer, { [field]: -1 }))
      expect([error.code, error.field]).toEqual(['ERR_INVALID_ARGUMENT', field])
    }
  })

  it('refuses to start a response on a store that keeps none, naming the store', async () => {
    const hub = newHub({ store: new ManualStore() })
    const error = await refusal(hub.responses.start(held().producer))
    expect([error.code, error.field]).toEqual(['ERR_INVALID_ARGUMENT', 'store'])
    expect(error.message).toBe(
      "this hub's store keeps no responses; use the in-memory store or @rewind/redis",
    )
  })

  it('says how to fix a bad producer and a taken id', async () => {
    const hub = newHub()
    const notProducer = await refusal(hub.responses.start(42 as never))
    expect(notProducer.message).toBe(
      'a response needs an async iterable, or a function (signal) => async iterable',
    )
    const { producer, release } = held()
    await hub.responses.start(producer, { id: 'mine' })
    const taken = await refusal(hub.responses.start(held().producer, { id: 'mine' }))
    expect(taken.message).toBe(
      'a response with id "mine" already exists; give each response its own id (or omit id for a random one)',
    )
    release()
  })

  it('names the lease when the hub is given a bad one', () => {
    let error: unknown
    try {
      newHub({ responses: { lease: 0 } })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RewindError)
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'lease' })
  })
})

describe('serving a response id', () => {
  it('answers 404 to a request for an id that could never name a response', async () => {
    const hub = newHub()
    const server = await listen((req, res) =>
      hub.serve(req, res, { response: decodeURIComponent(req.url!.slice(1)) }),
    )
    try {
      for (const id of ['a b', 'a:b', 'x'.repeat(129)]) {
        const response = await fetch(`${server.url}/${encodeURIComponent(id)}`)
        expect(response.status, id).toBe(404)
        expect(await response.json()).toMatchObject({ error: expect.stringContaining('unknown response') })
      }
    } finally {
      await server.close()
    }
  })
})

describe('a response handle', () => {
  it('cancels its response: the producer stops and the response ends cancelled', async () => {
    const hub = newHub()
    const handle = await hub.responses.start(held().producer)
    expect(await handle.cancel()).toBe('cancelled')
    expect(await handle.done).toBe('cancelled')
    expect(await hub.responses.status(handle.id)).toBe('cancelled')
  })

  it('leaves the running set once its response has ended, however it ended', async () => {
    const hub = newHub()
    const responses = hub.responses as Responses
    const a = held()
    const first = await hub.responses.start(a.producer)
    const second = await hub.responses.start(held().producer)
    expect(responses.producing).toBe(2)
    a.release()
    await first.done
    expect(responses.producing).toBe(1)
    await second.cancel()
    expect(responses.producing).toBe(0)
  })
})

describe('the default lifetime', () => {
  it('is one hour: a response on the defaults is still running after 59 minutes, and failed after 60', async () => {
    expect(RESPONSE_DEFAULTS.maxLifetime).toBe(60 * 60 * 1000)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const hub = newHub()
    const handle = await hub.responses.start(held().producer)
    await vi.advanceTimersByTimeAsync(59 * 60 * 1000)
    expect(await hub.responses.status(handle.id)).toBe('active')
    await vi.advanceTimersByTimeAsync(60 * 1000 + 1)
    expect(await handle.done).toBe('failed')
  })
})
