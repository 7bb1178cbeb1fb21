/**
 * The heartbeat: one timer per hub, running only while the hub has connections, whose tick lets
 * every silent connection send a comment (so proxies keep idle streams open and dead peers show).
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined

  /** `interval` 0 disables it. */
  constructor(
    private readonly interval: number,
    private readonly tick: () => void,
  ) {}

  /** Starts the timer if it is not running (and not disabled). */
  start(): void {
    if (this.timer !== undefined || this.interval === 0) return
    this.timer = setInterval(this.tick, this.interval)
    // A heartbeat alone must not keep the process alive.
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}
