/** A client for tests that look at (or break) the live tail's connection a store opens on it. */
import { Redis } from 'ioredis'

/** A client on `url` whose duplicates (the store's tail connections) are handed to `seen` as they open. */
export function clientWithTails(url: string, seen: (tail: Redis) => void): Redis {
  const client = new Redis(url)
  const duplicate = client.duplicate.bind(client)
  client.duplicate = (override) => {
    const tail = duplicate(override)
    seen(tail)
    return tail
  }
  return client
}
