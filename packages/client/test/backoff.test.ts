/**
 * Backoff: the delay rule for all inputs, then what a server that refuses every request observes:
 * delays that grow, are randomized, and stop growing at the cap.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { waitUntil } from '../../../test/support/wait.js'
import { backoffDelay } from '../src/index.js'
import { listen } from './support/server.js'
import { record } from './support/source.js'

describe('backoffDelay', () => {
  it('is within [0, min(cap, base × factor^attempt)) for every attempt and every random draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60_000 }),
        fc.integer({ min: 1, max: 120_000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.integer({ min: 0, max: 2000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (base, cap, factor, attempt, draw) => {
          const delay = backoffDelay({ base, cap, factor }, attempt, () => draw)
          expect(Number.isInteger(delay)).toBe(true)
          expect(delay).toBeGreaterThanOrEqual(0)
          const window = Math.floor(Math.min(cap, Math.max(base, 1) * factor ** attempt))
          expect(delay).toBeLessThanOrEqual(Math.max(0, window - 1))
        },
      ),
    )
  })

  it('spans the whole window: full jitter, not a fixed delay with a little noise', () => {
    const policy = { base: 100, cap: 10_000, factor: 2 }
    expect(backoffDelay(policy, 3, () => 0)).toBe(0)
    expect(backoffDelay(policy, 3, () => 0.999_999)).toBe(799)
    expect(backoffDelay(policy, 20, () => 0.999_999)).toBe(9999)
  })

  it('grows from 1 ms when the base is 0, instead of retrying in a tight loop', () => {
    const windows = [0, 5, 10].map((attempt) =>
      backoffDelay({ base: 0, cap: 30_000, factor: 2 }, attempt, () => 0.999_999),
    )
    expect(windows).toEqual([0, 31, 1023])
  })
})

describe('reconnecting to a server that refuses', () => {
  it('waits longer and longer, at random, and never past the cap', async () => {
    const server = await listen((_req, res) => res.writeHead(503).end())
    const base = 20
    const cap = 320
    const { log } = record(server.url(), { retry: base, maxRetryDelay: cap })
    const attempts = 16
    await waitUntil(() => server.requests.length >= attempts, `${attempts} requests`, 15_000)
    const delays = log
      .flatMap((entry) => ('code' in entry ? [entry.reconnectDelay!] : []))
      .slice(0, attempts - 1)
    const gaps = server.requests.slice(1, attempts).map((request, n) => request.at - server.requests[n]!.at)

    delays.forEach((delay, n) => {
      expect(delay, `attempt ${n}`).toBeLessThan(Math.min(cap, base * 2 ** n))
      // What the server saw: the delay, plus the time a request takes.
      expect(gaps[n]!, `gap ${n}`).toBeGreaterThanOrEqual(delay - 2)
    })
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length
    const early = mean(delays.slice(0, 3))
    const late = mean(delays.slice(6))
    // Early windows are 20, 40 and 80 ms; from the sixth attempt on every window is the 320 ms cap,
    // whose mean draw is 160 ms: the odds of the late mean falling under the early one are negligible.
    expect(late).toBeGreaterThan(early)
    expect(Math.max(...delays)).toBeLessThan(cap)
    // Randomized: the capped delays are not all the same.
    expect(new Set(delays.slice(6)).size).toBeGreaterThan(3)
    console.info(
      `[client] delays under a refusing server (window ${base} ms doubling, cap ${cap} ms): ${delays.join(', ')} ms`,
    )
  }, 30_000)

  it('keeps backing off from a server that answers 200 and ends at once, with no byte', async () => {
    const server = await listen((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(),
    )
    const { log } = record(server.url(), { retry: 10, maxRetryDelay: 5000 })
    await waitUntil(() => server.requests.length >= 9, '9 requests', 15_000)
    const delays = log.flatMap((entry) => ('code' in entry ? [entry.reconnectDelay!] : []))
    // Windows of 10, 20, … 1280 ms: were the count reset at each empty 200, every delay would be under 10 ms.
    expect(Math.max(...delays.slice(4, 8))).toBeGreaterThanOrEqual(10)
  }, 30_000)
})
