/**
 * Services a suite needs (Redis, a browser, a binary). Outside CI a missing one skips its tests
 * loudly; under CI (`CI` set) it fails them, so a broken provision never passes as a skip.
 */
import { Redis } from 'ioredis'

/** Default of `REDIS_URL`: the shared test Redis. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

/** Says that `message` (what is missing) skips these tests; throws instead under CI. */
export function unavailable(message: string): false {
  const { CI } = process.env
  if (CI) throw new Error(`${message}. CI is set, so this is a failure, not a skip.`)
  console.warn(`\n${'!'.repeat(78)}\n!! SKIPPED: ${message}\n${'!'.repeat(78)}\n`)
  return false
}

/** Whether Redis answers a PING at `url`; if not, says so for `who` (the tests skipped, or failed under CI). */
export async function redisAnswers(url: string, who: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await probe.connect()
    await probe.ping()
    return true
  } catch (error) {
    return unavailable(`${who}: no Redis at ${url}: ${(error as Error).message}`)
  } finally {
    probe.disconnect()
  }
}
