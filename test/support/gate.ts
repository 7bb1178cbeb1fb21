/** A gate for connection attempts, so a test can hold a client's reconnection back. */

/** Open until `hold()`; then `passage` resolves once `release()` opens it again. */
export class Gate {
  /** What an attempt awaits while the gate is held; `undefined` while it is open. */
  passage: Promise<void> | undefined
  private open = () => {}

  /** Holds the next attempts back until `release()`. */
  readonly hold = (): void => {
    this.passage = new Promise((resolve) => {
      this.open = resolve
    })
  }

  /** Lets the held attempts, and every later one, through. */
  readonly release = (): void => {
    this.passage = undefined
    this.open()
  }
}
