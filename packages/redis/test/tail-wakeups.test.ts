/**
 * How the single-server tail picks up a stream watched while its blocking read is in flight, on a
 * real Redis: it wakes the read with `CLIENT UNBLOCK` (scripted here, to answer as Redis does when
 * the read has not reached it yet), retries a bounded number of times, wakes a newer read that
 * still misses a stream, and leaves alone a read that already follows every stream. Reads block for
 * a minute: a stream picked up sooner was picked up by a wake.
 */
import { describe, expect, it } from 'vitest'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { redisForTests } from './helpers/redis-server.js'
import { type Harness, type HarnessOptions, tailOn } from './helpers/tail-harness.js'

const server = await redisForTests('tail wakeups')

/** Attempts the tail makes to wake one read (UNBLOCK_ATTEMPTS in tail.ts). */
const ATTEMPTS = 8
/** The pause after the last attempt: 2^(attempts - 1) ms. */
const LAST_PAUSE = 2 ** (ATTEMPTS - 1)

/** One `CLIENT UNBLOCK` the tail asked for: the client id, and whether a test's `add` was running. */
interface UnblockCall {
  readonly clientId: number
  readonly duringAdd: boolean
}

describe.skipIf(server === undefined)('the live tail waking its blocking read', () => {
  /**
   * A tail whose `CLIENT UNBLOCK` is answered by `answer` (given the harness, the call's index and
   * the client id; by default it really unblocks), its calls recorded. `add` watches a stream.
   */
  function scripted(
    answer: (t: Harness, call: number, clientId: number) => Promise<number> = (t, _, clientId) =>
      t.admin.call('CLIENT', 'UNBLOCK', clientId) as Promise<number>,
    options: HarnessOptions = {},
  ) {
    const calls: UnblockCall[] = []
    let adding = false
    const t: Harness = tailOn(server!.url, {
      ...options,
      unblock: (clientId) => {
        calls.push({ clientId, duringAdd: adding })
        return answer(t, calls.length, clientId)
      },
    })
    const add = (name: string): string => {
      const key = t.key(name)
      adding = true
      try {
        t.tail.add(name, key, '0-0')
      } finally {
        adding = false
      }
      return key
    }
    return { ...t, calls, add }
  }

  /** Waits until the tail has sent `n` blocking reads. */
  const reads = (t: Harness, n: number) => waitUntil(() => t.reads().length === n, `read #${n}`)

  /** Follows a, then adds b once a's read is in flight (which misses b); returns a's key. */
  async function addDuringRead(t: ReturnType<typeof scripted>): Promise<string> {
    const a = t.add('a')
    await reads(t, 1)
    t.add('b')
    return a
  }

  /** Waits past the 1 ms pause that follows a failed attempt (set before this sleep's timer). */
  async function expectNoRetry(t: ReturnType<typeof scripted>): Promise<void> {
    await sleep(20)
    expect(t.calls).toHaveLength(1)
  }

  it('retries while Redis answers that the read is not blocked yet, then picks the stream up', async () => {
    // The read reaches Redis only once the event loop has turned (I/O), and the first two answers
    // say 0 whatever happens: attempts made without a pause between them would all fail.
    let turned = false
    const t = scripted((t, call, clientId) => {
      if (call === 1) setImmediate(() => (turned = true))
      return call < 3 || !turned
        ? Promise.resolve(0)
        : (t.admin.call('CLIENT', 'UNBLOCK', clientId) as Promise<number>)
    })
    try {
      t.add('a')
      await reads(t, 1)
      const b = t.add('b')
      const id = await t.append(b, '0-0', 'on the new stream')
      await waitUntil(() => t.batches.length === 1, 'the new stream to be picked up')
      expect(t.batches).toEqual([['b', [id]]])
      expect(t.calls).toHaveLength(3)
      expect(t.connections).toHaveLength(1)
      const [first] = t.calls
      expect(t.calls.map((call) => call.clientId)).toEqual([
        first!.clientId,
        first!.clientId,
        first!.clientId,
      ])
    } finally {
      await t.close()
    }
  })

  it(`gives up after ${ATTEMPTS} attempts, and tries again for the next stream`, async () => {
    const t = scripted(() => Promise.resolve(0))
    try {
      await addDuringRead(t)
      expect(t.calls).toHaveLength(1)
      // One round at a time: a stream added during it starts none of its own.
      t.add('c')
      expect(t.calls).toHaveLength(1)
      await waitUntil(() => t.calls.length >= ATTEMPTS, 'the attempts')
      // The tail's pause after the last attempt was set before this one, and is no longer.
      await sleep(LAST_PAUSE + 20)
      expect(t.calls).toHaveLength(ATTEMPTS)
      // Done with that read: a stream added now starts a new round, at once.
      t.add('d')
      expect(t.calls).toHaveLength(ATTEMPTS + 1)
      expect(t.calls.at(-1)!.duringAdd).toBe(true)
      expect(t.reads()).toHaveLength(1)
    } finally {
      await t.close()
    }
  })

  it("takes Redis's word that the read was woken: no second attempt", async () => {
    // Redis says 1 (woken), though nothing was sent: the read goes on blocking, and is left alone.
    const t = scripted(() => Promise.resolve(1))
    try {
      await addDuringRead(t)
      expect(t.calls).toHaveLength(1)
      await expectNoRetry(t)
      expect(t.reads()).toHaveLength(1)
    } finally {
      await t.close()
    }
  })

  it('never wakes the command it sends before reading, which does not block', async () => {
    let adding: (() => void) | undefined
    // A stream added just as the tail asks Redis for its connection's id.
    const t = scripted(undefined, {
      onSend: ([name]) => {
        if (name === 'CLIENT') adding?.()
      },
    })
    adding = () => t.add('b')
    try {
      t.add('a')
      await reads(t, 1)
      expect(t.reads()[0]).toContain(t.key('b'))
      expect(t.calls).toEqual([])
    } finally {
      await t.close()
    }
  })

  it('stops retrying once the read it was waking has returned', async () => {
    let answer: ((unblocked: number) => void) | undefined
    const t = scripted((_t, call) =>
      call === 1 ? new Promise<number>((resolve) => (answer = resolve)) : Promise.resolve(0),
    )
    try {
      const a = await addDuringRead(t)
      await waitUntil(() => answer, 'the first attempt')
      // The read returns by itself (an entry on a stream it follows) and the next one follows both.
      const id = await t.append(a, '0-0', 'ends the read')
      await reads(t, 2)
      expect(t.batches).toEqual([['a', [id]]])
      answer!(0)
      await expectNoRetry(t)
    } finally {
      await t.close()
    }
  })

  it('gives up on a CLIENT UNBLOCK that fails, without a report: the read ends within blockMs anyway', async () => {
    const t = scripted(() => Promise.reject(new Error('the command connection is down')))
    try {
      await addDuringRead(t)
      await expectNoRetry(t)
      // The round is over: the next stream starts another.
      t.add('c')
      expect(t.calls).toHaveLength(2)
      expect(t.reported).toEqual([])
    } finally {
      await t.close()
    }
  })

  it('wakes a read sent while it waited for the answer, if that read misses a stream added since', async () => {
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    // The first wake works at once, but its answer is held back until the test lets it through.
    const t = scripted(async (t, call, clientId) => {
      const unblocked = (await t.admin.call('CLIENT', 'UNBLOCK', clientId)) as number
      if (call === 1) await held
      return unblocked
    })
    try {
      await addDuringRead(t)
      // Woken, the first read is followed by one over a and b; c comes after it was sent.
      await reads(t, 2)
      const c = t.add('c')
      const id = await t.append(c, '0-0', 'on the stream added last')
      release()
      await waitUntil(() => t.batches.length === 1, 'the last stream to be picked up')
      expect(t.batches).toEqual([['c', [id]]])
      expect(t.calls).toHaveLength(2)
    } finally {
      release()
      await t.close()
    }
  })

  it('leaves alone a read that already follows every stream', async () => {
    let answered = false
    // The answer comes once the read that replaced the woken one is on its way.
    const t = scripted(async (t, _call, clientId) => {
      const unblocked = (await t.admin.call('CLIENT', 'UNBLOCK', clientId)) as number
      await reads(t, 2)
      answered = true
      return unblocked
    })
    try {
      await addDuringRead(t)
      await waitUntil(() => answered, 'the answer')
      expect(t.calls).toHaveLength(1)
      expect(t.reads()).toHaveLength(2)
    } finally {
      await t.close()
    }
  })

  it('does not cut short the pause after a failed read when a stream is added', async () => {
    // The first stream's key is not a stream: every read fails, then waits a minute.
    const t = scripted(undefined, {
      minReconnectDelay: 60_000,
      maxReconnectDelay: 60_000,
      expectReports: true,
    })
    try {
      const a = t.key('a')
      await t.admin.set(a, 'not a stream')
      t.add('a')
      await waitUntil(() => t.reported.length === 1, 'the failed read')
      t.add('b')
      // A pause cut short would send the next read before any other event is handled.
      await new Promise((resolve) => setImmediate(resolve))
      expect(t.reads()).toHaveLength(1)
      expect(t.calls).toEqual([])
    } finally {
      await t.close()
    }
  })
})
