/**
 * Aborting leaves nothing behind: run in a fresh process (so no other test's handles count), a
 * source aborted while it waits to reconnect, and one aborted while reading with a stall timer,
 * leave no timer, and the process exits by itself.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const cwd = fileURLToPath(new URL('..', import.meta.url))

describe('abort', () => {
  it('clears every timer, so the process exits by itself', async () => {
    const started = performance.now()
    const output = await new Promise<string>((resolve, reject) => {
      // A timer left behind would keep the process alive for up to a minute: the timeout catches it.
      execFile(
        process.execPath,
        ['test/fixtures/abort-cleanup.mjs'],
        { cwd, timeout: 15_000 },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      )
    })
    const seen = JSON.parse(output) as Record<string, unknown>
    expect(seen).toEqual({
      before: 0,
      reconnectDelay: expect.any(Number),
      // The reconnection timer (up to a minute) was pending, then cleared by the abort.
      waiting: 1,
      afterAbortWhileWaiting: 0,
      // The stall timer was armed, then cleared by the abort.
      reading: 1,
      afterAbortWhileReading: 0,
      readyStates: [2, 2],
    })
    expect(performance.now() - started).toBeLessThan(10_000)
  })
})
