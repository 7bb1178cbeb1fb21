/** Streams by the thousand for the torture suite, opened with test/support's raw client. */
import { RawHttpClient } from '../../support/raw-client.js'
import { waitUntil } from '../../support/wait.js'
import { pool } from './wait.js'

/**
 * Opens `count` light streams to `port`, 200 at a time, each pushed to `clients` as it connects;
 * resolves once every one has its first body bytes (or was closed: the caller checks which).
 */
export async function openLightStreams(port: number, count: number, clients: RawHttpClient[]): Promise<void> {
  await pool(count, 200, async () => {
    const client = new RawHttpClient(port, { light: true })
    clients.push(client)
    await waitUntil(
      () => client.bodyBytes > 0 || client.closed,
      () => `a stream to open: ${client.describe()}`,
      30_000,
    )
  })
}
