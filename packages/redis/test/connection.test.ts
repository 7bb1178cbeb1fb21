/**
 * The command connection's refusals and its client rules, without Redis: what `redis` and
 * `cluster` may be (each refusal a typed ERR_INVALID_ARGUMENT naming the option, with its message),
 * that a client from another copy of ioredis is recognised by its shape and never closed by the
 * store, and that a closed connection refuses at once.
 */
import { RewindError } from '@rewind/core'
import { describe, expect, it } from 'vitest'
import { thrownAs } from '../../../test/support/throws.js'
import { CommandConnection } from '../src/connection.js'
import { resolveOptions } from '../src/options.js'

const OPTIONS = resolveOptions({})

/** The refusal of a connection made of `redis` and `cluster`. */
function refusal(redis: unknown, cluster?: unknown): RewindError {
  const error = thrownAs(
    () => new CommandConnection(redis as string, cluster as undefined, OPTIONS, () => {}),
    RewindError,
  )
  expect(error.code).toBe('ERR_INVALID_ARGUMENT')
  return error
}

/** An object shaped like an ioredis client, recording what is called on it. */
function clientShape(status: unknown = 'ready') {
  const calls: string[] = []
  const record =
    (name: string) =>
    (..._args: unknown[]) => {
      calls.push(name)
      return undefined
    }
  return {
    calls,
    client: {
      status,
      duplicate: record('duplicate'),
      defineCommand: record('defineCommand'),
      on: record('on'),
      removeListener: record('removeListener'),
      quit: record('quit'),
      disconnect: record('disconnect'),
    },
  }
}

describe('CommandConnection', () => {
  it('refuses a redis option that is neither a URL nor a client, saying what it got', () => {
    for (const [redis, got] of [
      [42, 'number'],
      [null, 'null'],
      [{}, 'object'],
      [clientShape(1).client, 'object'],
      [{ ...clientShape().client, duplicate: 'no' }, 'object'],
      [{ ...clientShape().client, defineCommand: undefined }, 'object'],
      // A function carrying a client's methods is still not a client.
      [Object.assign(() => {}, clientShape().client), 'function'],
    ] as const) {
      const error = refusal(redis)
      expect(error.field).toBe('redis')
      expect(error.message).toBe(`redis must be a connection URL or an ioredis client, got ${got}`)
    }
  })

  it('refuses a cluster option with redis too, or without startup nodes', () => {
    const both = refusal('redis://127.0.0.1:6379', [{ host: '127.0.0.1', port: 7000 }])
    expect(both.field).toBe('cluster')
    expect(both.message).toBe(
      'give either redis (a URL or a client) or cluster (the startup nodes of a Redis Cluster), not both',
    )
    for (const cluster of [[], 'redis://127.0.0.1:7000', {}]) {
      const error = refusal(undefined, cluster)
      expect(error.field).toBe('cluster')
      expect(error.message).toBe(
        'cluster must be a non-empty array of startup nodes ({ host, port } or redis:// URLs)',
      )
    }
  })

  it('adopts a client by its shape, as a single server, and never closes it', async () => {
    const { client, calls } = clientShape()
    const connection = new CommandConnection(client as never, undefined, OPTIONS, () => {})
    expect(connection.owned).toBe(false)
    expect(connection.cluster).toBeUndefined()
    expect(connection.client).toBe(client)
    expect(calls.filter((call) => call === 'defineCommand')).toHaveLength(3)
    await connection.close()
    expect(calls).not.toContain('quit')
    expect(calls).not.toContain('disconnect')
  })

  it('refuses every command at once once closed', async () => {
    const { client } = clientShape()
    const connection = new CommandConnection(client as never, undefined, OPTIONS, () => {})
    await connection.close()
    let sent = false
    const failure = await connection
      .run(
        async () => {
          sent = true
        },
        (cause) => new Error(`failed: ${(cause as Error).message}`),
      )
      .then(
        () => undefined,
        (error: unknown) => error,
      )
    expect(sent).toBe(false)
    expect((failure as Error).message).toBe('failed: the store is closed')
  })
})
