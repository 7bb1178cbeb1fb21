/**
 * Calling the application's hooks: `onGap` may choose the policy, `onError` hears every failure,
 * and a hook that throws is reported through `onError`, never thrown into the stream that called it.
 */
import type { HubHooks } from './hub-options.js'
import type { GapReason } from './store.js'
import type { CloseReason, ConnectionInfo, GapPolicy } from './types.js'

export class Hooks {
  constructor(
    private readonly hooks: HubHooks,
    private readonly gapPolicy: GapPolicy,
    /** The hub's counters that hooks add to. */
    private readonly counters: { gaps: number; errors: number },
  ) {}

  connect(info: ConnectionInfo): void {
    this.call(this.hooks.onConnect, info)
  }

  disconnect(info: ConnectionInfo & { reason: CloseReason }): void {
    this.call(this.hooks.onDisconnect, info)
  }

  reject(info: ConnectionInfo & { reason: 'limit' | 'closed' }): void {
    this.call(this.hooks.onReject, info)
  }

  /** Applies the gap policy and the `onGap` hook. */
  decideGap(
    stream: string,
    reason: GapReason,
    lastEventId: string | null,
    override: GapPolicy | undefined,
  ): GapPolicy {
    this.counters.gaps++
    const policy = override ?? this.gapPolicy
    const onGap = this.hooks.onGap
    if (onGap === undefined) return policy
    try {
      const decided = onGap({ stream, reason, lastEventId, policy })
      return decided === 'replay' || decided === 'reset' ? decided : policy
    } catch (error) {
      this.reportError(error, stream)
      return policy
    }
  }

  /** Reports an error through `onError`. */
  reportError(error: unknown, stream: string | undefined): void {
    this.counters.errors++
    try {
      this.hooks.onError(error, { stream })
    } catch {
      // A failing error hook must not take the stream or the process down.
    }
  }

  private call<T extends ConnectionInfo>(hook: ((info: T) => void) | undefined, info: T): void {
    if (hook === undefined) return
    try {
      hook(info)
    } catch (error) {
      this.reportError(error, info.stream)
    }
  }
}
