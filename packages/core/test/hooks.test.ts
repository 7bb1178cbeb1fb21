/**
 * `Hooks`: `onGap` may choose the gap policy (and only a valid one counts), and a hook that throws
 * is reported through `onError` with its stream, never thrown into the stream that called it.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Hooks } from '../src/hooks.js'
import type { HubHooks } from '../src/hub-options.js'
import type { GapPolicy } from '../src/types.js'

/** Hooks over `given`, with an `onError` that records what it hears, and the hub's counters. */
function hooksWith(given: Partial<HubHooks>, gapPolicy: GapPolicy = 'replay') {
  const reported: [unknown, unknown][] = []
  const counters = { gaps: 0, errors: 0 }
  const hooks = new Hooks(
    {
      onGap: undefined,
      onConnect: undefined,
      onDisconnect: undefined,
      onReject: undefined,
      onError: (error, info) => reported.push([error, info]),
      ...given,
    },
    gapPolicy,
    counters,
  )
  return { hooks, reported, counters }
}

describe('Hooks.decideGap', () => {
  it('takes the policy onGap returns over the default and the override, whichever it is', () => {
    for (const policy of ['replay', 'reset'] as const) {
      for (const decided of ['replay', 'reset'] as const) {
        const { hooks } = hooksWith({ onGap: () => decided }, policy)
        expect(hooks.decideGap('s', 'evicted', 'id', undefined)).toBe(decided)
        expect(hooks.decideGap('s', 'evicted', 'id', policy)).toBe(decided)
      }
    }
  })

  it('holds for anything onGap returns: a valid policy is taken, anything else keeps the policy in force', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom('replay', 'reset', 'Replay', 'reset ', '', undefined, null), fc.anything()),
        fc.constantFrom<GapPolicy>('replay', 'reset'),
        fc.constantFrom<GapPolicy | undefined>('replay', 'reset', undefined),
        (decided, policy, override) => {
          const seen: unknown[] = []
          const { hooks, counters } = hooksWith(
            {
              onGap: (info) => {
                seen.push(info)
                return decided as GapPolicy
              },
            },
            policy,
          )
          const inForce = override ?? policy
          const expected = decided === 'replay' || decided === 'reset' ? decided : inForce
          expect(hooks.decideGap('s', 'malformed', null, override)).toBe(expected)
          expect(seen).toEqual([{ stream: 's', reason: 'malformed', lastEventId: null, policy: inForce }])
          expect(counters).toEqual({ gaps: 1, errors: 0 })
        },
      ),
    )
  })
})

describe('Hooks: a connection hook that throws', () => {
  it('is reported through onError with its stream and counted, and not thrown to the caller', () => {
    const failures = [
      new Error('onConnect failed'),
      new Error('onDisconnect failed'),
      new Error('onReject failed'),
    ]
    const throwing = (error: Error) => () => {
      throw error
    }
    const { hooks, reported, counters } = hooksWith({
      onConnect: throwing(failures[0]!),
      onDisconnect: throwing(failures[1]!),
      onReject: throwing(failures[2]!),
    })
    expect(() => hooks.connect({ stream: 'a' })).not.toThrow()
    expect(() => hooks.disconnect({ stream: 'b', reason: 'client' })).not.toThrow()
    expect(() => hooks.reject({ stream: undefined, reason: 'limit' })).not.toThrow()
    expect(reported).toEqual([
      [failures[0], { stream: 'a' }],
      [failures[1], { stream: 'b' }],
      [failures[2], { stream: undefined }],
    ])
    expect(counters.errors).toBe(3)
  })

  it('passes each hook its info, and a hook that returns reports nothing', () => {
    const heard: unknown[] = []
    const { hooks, reported, counters } = hooksWith({
      onConnect: (info) => heard.push(['connect', info]),
      onDisconnect: (info) => heard.push(['disconnect', info]),
      onReject: (info) => heard.push(['reject', info]),
    })
    hooks.connect({ stream: 'a' })
    hooks.disconnect({ stream: 'a', reason: 'shutdown' })
    hooks.reject({ stream: 'b', reason: 'closed' })
    expect(heard).toEqual([
      ['connect', { stream: 'a' }],
      ['disconnect', { stream: 'a', reason: 'shutdown' }],
      ['reject', { stream: 'b', reason: 'closed' }],
    ])
    expect(reported).toEqual([])
    expect(counters.errors).toBe(0)
  })
})
