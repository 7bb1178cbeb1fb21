/**
 * What a browser block of the READMEs (marked `<!-- snippet: browser -->`) may use without
 * declaring it: the `EventSource` the surrounding prose opened, and the page's own functions the
 * prose names. Browser blocks are type-checked against these declarations and the DOM's types
 * (under `strict`, without Node's types) but not run.
 */

declare global {
  /** The page's `EventSource` of the example above. */
  const source: EventSource
  /** The page's way to reload its state after a gap. */
  function refetchState(): void
  /** The page's way to reload its state after a gap; the reason, when it has one, is for a log. */
  function refetch(reason?: string): Promise<void>
  /** The page's way to get a fresh sign-in token. */
  function getToken(): Promise<string>
  /** Shows an event's data on the page. */
  function show(data: unknown): void
  /** Appends a token of a streamed answer to the page. */
  function append(token: string): void
  /** Marks a streamed answer as over, with how it ended. */
  function finish(reason: string): void
  /** What the user asked, from the page's form. */
  const question: string
}

export {}
