/**
 * Bun drops a response that stays quiet for its `idleTimeout` (10 s by default), streaming or not.
 * A hub made by `@rewind/fetch` sends a heartbeat often enough that a quiet stream survives it; the
 * same stream with the heartbeat off is dropped, which shows the test can tell the two apart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openStream } from '../support/raw-client.js'
import { sleep, waitUntil } from '../support/wait.js'
import type { RunningApp } from './apps/node-apps.ts'
import { runtimeBinary, startRuntime } from './apps/runtimes.ts'

const { CI } = process.env
const missing = runtimeBinary('bun') === undefined && CI !== 'true'
/** Longer than Bun's default idle timeout, which Bun checks every few seconds. */
const QUIET_FOR = 16_000

describe.skipIf(missing)('a quiet stream on Bun', () => {
  let withHeartbeat: RunningApp
  let withoutHeartbeat: RunningApp
  beforeAll(async () => {
    ;[withHeartbeat, withoutHeartbeat] = await Promise.all([
      startRuntime('bun', {}),
      startRuntime('bun', { heartbeatInterval: 0 }),
    ])
  })
  afterAll(async () => {
    await Promise.all([withHeartbeat?.stop(), withoutHeartbeat?.stop()])
  })

  it(
    'outlives the idle timeout with the default heartbeat, and is dropped without one',
    async () => {
      const kept = await openStream(`${withHeartbeat.base}/events`)
      const dropped = await openStream(`${withoutHeartbeat.base}/events`)
      let keptClosed = false
      let droppedAt = 0
      kept.response.once('close', () => {
        keptClosed = true
      })
      const opened = Date.now()
      dropped.response.once('close', () => {
        droppedAt = Date.now() - opened
      })
      await waitUntil(() => droppedAt > 0, 'Bun to drop the stream without heartbeats', QUIET_FOR)
      expect(droppedAt).toBeGreaterThanOrEqual(9_000)
      await sleep(Math.max(0, QUIET_FOR - (Date.now() - opened)))
      expect(keptClosed).toBe(false)
      expect(kept.comments.length).toBeGreaterThanOrEqual(2)
      const response = await fetch(`${withHeartbeat.base}/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: 'still here' }),
      })
      const [id] = ((await response.json()) as { ids: string[] }).ids
      expect((await kept.waitForEvents(1))[0]).toMatchObject({ id, data: 'still here' })
    },
    QUIET_FOR + 15_000,
  )
})
