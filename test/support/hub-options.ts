/** Hub options shared by the suites that serve hubs over real HTTP to byte-level clients. */
import type { HubOptions } from '@rewind/core'

/**
 * Clients told to come back after 50 ms, no heartbeats (they would interleave with the events a test
 * counts), and errors left to the assertions: tests that cut a hub off its store expect some.
 */
export const QUICK_HUB = {
  retry: 50,
  heartbeatInterval: 0,
  onError: () => {},
} as const satisfies HubOptions
