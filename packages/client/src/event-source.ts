/**
 * The event source: one logical stream over as many HTTP responses as it takes. It connects with
 * `fetch`, parses the body, keeps the position (and saves it when asked), drops events it already
 * delivered, and reconnects with backoff until the stream ends, the server refuses it, or it is closed.
 * What it holds is the lifecycle and the `EventTarget` surface; what each request carries and what
 * each answer means are decided in `exchange.ts`, saving the position is `position.ts`'s.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html
 */
import type { EventSourceMessage } from 'eventsource-parser'
import { backoffDelay } from './backoff.js'
import { describeError, RewindClientError } from './errors.js'
import {
  EndEvent,
  type EndReason,
  type EventMap,
  GapEvent,
  OpenEvent,
  SourceErrorEvent,
  type SourceEventMap,
  type SourceItem,
  SourceMessageEvent,
} from './events.js'
import {
  absolute,
  judgeAnswer,
  type NextRequest,
  nextRequest,
  originOf,
  type ResumeDecision,
  requestHeaders,
  requestInit,
  resumeDecision,
  resumeLocation,
  resumesOnStart,
} from './exchange.js'
import { ItemChannel } from './iteration.js'
import {
  type EventSourceOptions,
  type ResolvedOptions,
  type ResponseInfo,
  resolveOptions,
} from './options.js'
import { createStreamParser, type StreamParser } from './parse.js'
import { SavedPosition, SeenIds } from './position.js'

type Handler<T, E> = ((this: T, event: E) => void) | null
// Spelled out rather than the DOM's names, which Node's types do not declare globally.
type ListenerOptions =
  | boolean
  | { capture?: boolean; once?: boolean; passive?: boolean; signal?: AbortSignal }
type RemoveListenerOptions = boolean | { capture?: boolean }
type Listener = ((event: Event) => void) | { handleEvent(event: Event): void }
type AnyListener = Listener | null

/** What the parser found in one piece of the body, handed over in order once the piece is parsed. */
type Parsed =
  | { kind: 'event'; message: EventSourceMessage }
  | { kind: 'position'; id: string }
  | { kind: 'too-large' }

const CONNECTING = 0
const OPEN = 1
const CLOSED = 2

function ignore(): void {}

/** The page's URL in a browser, `undefined` in Node. */
function pageUrl(): string | undefined {
  return (globalThis as { location?: { href?: string } }).location?.href
}

/**
 * An `EventSource` on `fetch` that keeps Rewind's guarantees on the client's side. Use
 * {@link createEventSource} to make one; it connects at once.
 *
 * Listen with `addEventListener` or the `onX` properties, or iterate it with `for await`; the
 * loop ends when the stream ends for good, and throws if the source stops on an error.
 */
export class RewindEventSource<Events extends EventMap = Record<string, string>> extends EventTarget {
  static readonly CONNECTING = CONNECTING
  static readonly OPEN = OPEN
  static readonly CLOSED = CLOSED
  readonly CONNECTING = CONNECTING
  readonly OPEN = OPEN
  readonly CLOSED = CLOSED

  /** The URL the source was created with. */
  readonly url: string

  readonly #options: ResolvedOptions
  readonly #seen: SeenIds
  readonly #saved: SavedPosition
  readonly #parser: StreamParser
  readonly #parsed: Parsed[] = []
  readonly #channels = new Set<ItemChannel<SourceItem<Events>>>()
  readonly #handlers = new Map<string, (event: Event) => void>()
  #readyState: number = CONNECTING
  #lastEventId: string
  #request: NextRequest
  #retry: number
  #failures = 0
  #response: ResponseInfo | undefined
  #location: string | undefined
  // Stryker disable next-line StringLiteral: read only by #dispatch, which runs after an answer set it
  #origin = ''
  #controller: AbortController | undefined
  #stallTimer: ReturnType<typeof setTimeout> | undefined
  #sleepTimer: ReturnType<typeof setTimeout> | undefined
  #wake: (() => void) | undefined
  #readyWaiter: (() => void) | undefined
  #failure: RewindClientError | undefined

  constructor(url: string | URL, options: EventSourceOptions = {}) {
    super()
    this.#options = resolveOptions(options)
    // Resolved at once, as EventSource does: a relative URL in Node (no document) would otherwise
    // fail every attempt as a network error, and be retried for ever.
    const resolved = typeof url === 'string' || url instanceof URL ? absolute(url, pageUrl()) : undefined
    if (resolved === undefined || String(url) === '') {
      throw new RewindClientError(
        'ERR_INVALID_ARGUMENT',
        `url must be a URL, absolute where there is no page to resolve it against (Node); got '${String(url)}'`,
        { field: 'url' },
      )
    }
    const o = this.#options
    this.url = resolved
    this.#lastEventId = o.lastEventId
    this.#retry = o.retry
    this.#request = { url: this.url, method: o.method, body: o.body ?? undefined, headers: undefined }
    this.#seen = new SeenIds(o.dedupeWindow)
    this.#saved = new SavedPosition(o.store, o.storageKey)
    this.#parser = createStreamParser(
      {
        onEvent: (message) => this.#parsed.push({ kind: 'event', message }),
        onPosition: (id) => this.#parsed.push({ kind: 'position', id }),
        onRetry: (milliseconds) => {
          this.#retry = Math.min(milliseconds, o.maxRetryDelay)
        },
        // Stryker disable next-line ObjectLiteral,StringLiteral: #deliver takes any item neither an event nor a position for too large
        onTooLarge: () => this.#parsed.push({ kind: 'too-large' }),
      },
      o.maxEventSize,
    )
    if (o.signal?.aborted) {
      this.#readyState = CLOSED
      return
    }
    o.signal?.addEventListener('abort', this.#onAbort)
    this.#run().catch((error: unknown) => {
      // Only a bug gets here; stop rather than leave the source hanging.
      this.#fail(
        new RewindClientError('ERR_NETWORK', `the source failed: ${describeError(error)}`, { cause: error }),
      )
    })
  }

  /** `CONNECTING` (0), `OPEN` (1) or `CLOSED` (2), as for `EventSource`. */
  get readyState(): number {
    return this.#readyState
  }

  /** The stream's position: the last event id received (`''` for none), sent on every reconnection. */
  get lastEventId(): string {
    return this.#lastEventId
  }

  /** Closes the source for good: aborts the request, clears every timer and ends `for await` loops. */
  close(): void {
    // Stryker disable next-line ConditionalExpression: closing again repeats an idempotent shutdown, and every channel is finished already
    if (this.#readyState === CLOSED) return
    this.#shutdown()
    for (const channel of this.#channels) channel.finish()
  }

  get onopen(): Handler<this, OpenEvent> {
    return this.#handler('open')
  }
  set onopen(handler: Handler<this, OpenEvent>) {
    this.#setHandler('open', handler)
  }
  get onmessage(): Handler<this, SourceMessageEvent<Events['message']>> {
    return this.#handler('message')
  }
  set onmessage(handler: Handler<this, SourceMessageEvent<Events['message']>>) {
    this.#setHandler('message', handler)
  }
  get onerror(): Handler<this, SourceErrorEvent> {
    return this.#handler('error')
  }
  set onerror(handler: Handler<this, SourceErrorEvent>) {
    this.#setHandler('error', handler)
  }
  get ongap(): Handler<this, GapEvent> {
    return this.#handler('gap')
  }
  set ongap(handler: Handler<this, GapEvent>) {
    this.#setHandler('gap', handler)
  }
  get onend(): Handler<this, EndEvent> {
    return this.#handler('end')
  }
  set onend(handler: Handler<this, EndEvent>) {
    this.#setHandler('end', handler)
  }

  override addEventListener<Type extends keyof SourceEventMap>(
    type: Type,
    listener:
      | ((this: this, event: SourceEventMap[Type]) => void)
      | { handleEvent(event: SourceEventMap[Type]): void }
      | null,
    options?: ListenerOptions,
  ): void
  override addEventListener<Type extends keyof Events & string>(
    type: Type,
    listener: ((this: this, event: SourceMessageEvent<Events[Type]>) => void) | null,
    options?: ListenerOptions,
  ): void
  override addEventListener(type: string, listener: AnyListener, options?: ListenerOptions): void
  override addEventListener(type: string, listener: unknown, options?: ListenerOptions): void {
    super.addEventListener(type, listener as Listener, options)
  }

  override removeEventListener<Type extends keyof SourceEventMap>(
    type: Type,
    listener:
      | ((this: this, event: SourceEventMap[Type]) => void)
      | { handleEvent(event: SourceEventMap[Type]): void }
      | null,
    options?: RemoveListenerOptions,
  ): void
  override removeEventListener<Type extends keyof Events & string>(
    type: Type,
    listener: ((this: this, event: SourceMessageEvent<Events[Type]>) => void) | null,
    options?: RemoveListenerOptions,
  ): void
  override removeEventListener(type: string, listener: AnyListener, options?: RemoveListenerOptions): void
  override removeEventListener(type: string, listener: unknown, options?: RemoveListenerOptions): void {
    super.removeEventListener(type, listener as Listener, options)
  }

  /**
   * The stream's events and gaps, from now on. The response is read no faster than the loop takes
   * them; the loop ends when the stream ends or the source is closed, and throws the error that
   * stopped the source, if one did.
   *
   * @example
   * ```ts
   * for await (const item of source) {
   *   if (item.kind === 'gap') await refetch()
   *   else render(item.data)
   * }
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<SourceItem<Events>> {
    const channel = new ItemChannel<SourceItem<Events>>(
      () => this.#ready(),
      (returned) => {
        this.#channels.delete(returned)
        this.#ready()
      },
    )
    if (this.#readyState === CLOSED) channel.finish(this.#failure)
    else this.#channels.add(channel)
    return channel
  }

  readonly #onAbort = (): void => this.close()

  #handler<E>(type: string): Handler<this, E> {
    return (this.#handlers.get(type) as Handler<this, E> | undefined) ?? null
  }

  #setHandler(type: string, handler: unknown): void {
    const previous = this.#handlers.get(type)
    // Stryker disable next-line ConditionalExpression: removing an undefined listener is a no-op of EventTarget
    if (previous !== undefined) super.removeEventListener(type, previous)
    this.#handlers.delete(type)
    if (typeof handler !== 'function') return
    this.#handlers.set(type, handler as (event: Event) => void)
    super.addEventListener(type, handler as (event: Event) => void)
  }

  async #run(): Promise<void> {
    const o = this.#options
    const position = await this.#saved.position()
    if (position !== '') this.#lastEventId = position
    // Only a stream opened with another method than GET saves the URL that resumes it.
    const url = this.#request.method === 'GET' ? '' : await this.#saved.url()
    if (url !== '') this.#location = url
    if (resumesOnStart(this.#request.method, { position, url })) {
      // A reloaded page whose POST was answered: resume that answer, never post again.
      const next = await this.#nextRequest(0, 'a saved position was found', undefined)
      if (this.#readyState === CLOSED) return
      if (next instanceof RewindClientError) {
        // Forget it, so the next page load starts afresh instead of failing the same way.
        this.#saved.forget()
        this.#fail(next)
        return
      }
      this.#request = next
    }
    for (let attempt = 0; this.#readyState !== CLOSED; attempt++) {
      const dropped = await this.#connect(attempt)
      if (dropped === undefined || this.#readyState === CLOSED) return
      if (this.#failures >= o.maxRetries) {
        this.#fail(dropped)
        return
      }
      const next = await this.#nextRequest(attempt + 1, 'the stream dropped', dropped)
      if (this.#readyState === CLOSED) return
      if (next instanceof RewindClientError) {
        this.#fail(next)
        return
      }
      this.#request = next
      const delay = backoffDelay(
        { base: this.#retry, cap: o.maxRetryDelay, factor: o.backoffFactor },
        this.#failures,
      )
      this.#failures++
      this.#readyState = CONNECTING
      this.dispatchEvent(new SourceErrorEvent(dropped, delay))
      if (this.#readyState === CLOSED) return
      await this.#sleep(delay)
    }
  }

  /** Makes one request and reads its response; resolves with the error to reconnect after, or `undefined` when stopped. */
  async #connect(attempt: number): Promise<RewindClientError | undefined> {
    const o = this.#options
    const request = this.#request
    const controller = new AbortController()
    this.#controller = controller
    let response: Response
    try {
      const headers = requestHeaders(
        typeof o.headers === 'function'
          ? await o.headers({ attempt, lastEventId: this.#lastEventId })
          : o.headers,
        request.headers,
        this.#lastEventId,
      )
      if (this.#readyState === CLOSED) return undefined
      const init = requestInit(request, headers, o.credentials, controller.signal)
      // A body is sent once: what follows is a resumption, never the same request again.
      request.body = undefined
      // Called unbound: a browser's fetch throws "Illegal invocation" when `this` is not the window.
      const fetchEvents = o.fetch
      response = await fetchEvents(request.url, init)
    } catch (error) {
      if (this.#readyState === CLOSED) return undefined
      return new RewindClientError(
        'ERR_NETWORK',
        `${request.method} ${request.url} failed: ${describeError(error)}`,
        { cause: error },
      )
    }
    const info: ResponseInfo = {
      url: response.url || request.url,
      status: response.status,
      headers: response.headers,
    }
    this.#response = info
    const location = resumeLocation(response.headers, info.url)
    if (location !== undefined) {
      this.#location = location
      // Saved at once, before any event: a page reloaded while waiting for the first resumes from it.
      if (request.method !== 'GET') this.#saved.saveUrl(location)
    }
    if (this.#readyState === CLOSED) {
      // Stryker disable next-line OptionalChaining: a throw here rejects #run, whose catch fails a closed source: a no-op
      response.body?.cancel().catch(ignore)
      return undefined
    }
    const verdict = judgeAnswer(
      {
        method: request.method,
        url: info.url,
        status: response.status,
        contentType: response.headers.get('content-type') ?? '',
        hasBody: response.body !== null,
      },
      o.shouldRetry,
    )
    if (verdict.kind !== 'open') response.body?.cancel().catch(ignore)
    switch (verdict.kind) {
      case 'end':
        this.#end('no-content')
        return undefined
      case 'reconnect':
        return verdict.error
      case 'stop':
        if (verdict.forget) this.#saved.forget()
        this.#fail(verdict.error)
        return undefined
    }
    this.#origin = originOf(info.url)
    this.#readyState = OPEN
    this.dispatchEvent(new OpenEvent(info))
    // An answer opens only with a body.
    const body = response.body!
    if (this.#readyState !== OPEN) {
      body.cancel().catch(ignore)
      return undefined
    }
    return this.#read(body, controller, info.url)
  }

  async #read(
    body: ReadableStream<Uint8Array>,
    controller: AbortController,
    url: string,
  ): Promise<RewindClientError | undefined> {
    const { stallTimeout } = this.#options
    const reader = body.getReader()
    const decoder = new TextDecoder()
    this.#parser.reset()
    let stalled = false
    try {
      for (;;) {
        if (stallTimeout > 0) {
          this.#stallTimer = setTimeout(() => {
            stalled = true
            controller.abort()
          }, stallTimeout)
        }
        const { done, value } = await reader.read()
        clearTimeout(this.#stallTimer)
        this.#stallTimer = undefined
        if (done) break
        // The backoff starts over only once bytes flow: a server that answers 200 and ends at once
        // (a proxy in trouble) is backed off from, not asked again and again at the base delay.
        if (value.length > 0) this.#failures = 0
        this.#parser.feed(decoder.decode(value, { stream: true }))
        await this.#deliver()
        if (this.#readyState === CLOSED) {
          reader.cancel().catch(ignore)
          return undefined
        }
      }
    } catch (error) {
      clearTimeout(this.#stallTimer)
      this.#stallTimer = undefined
      if (this.#readyState === CLOSED) return undefined
      if (stalled) return new RewindClientError('ERR_STALLED', `no data from ${url} for ${stallTimeout} ms`)
      return new RewindClientError(
        'ERR_NETWORK',
        `the stream from ${url} broke off: ${describeError(error)}`,
        {
          cause: error,
        },
      )
    }
    return new RewindClientError('ERR_NETWORK', `${url} ended the stream`)
  }

  /** Hands over what the last piece of the body held, in order, waiting for `for await` loops to ask for more. */
  async #deliver(): Promise<void> {
    const parsed = this.#parsed
    for (let index = 0; index < parsed.length && this.#readyState !== CLOSED; index++) {
      const item = parsed[index]!
      if (item.kind === 'event') this.#dispatch(item.message)
      else if (item.kind === 'position') this.#move(item.id)
      else {
        this.#fail(
          new RewindClientError(
            'ERR_EVENT_TOO_LARGE',
            // Stryker disable next-line OptionalChaining: #connect sets #response before any event is read
            `an event from ${this.#response?.url ?? this.url} is larger than maxEventSize (${this.#options.maxEventSize} characters): raise the option if such events are expected`,
            { field: 'maxEventSize' },
          ),
        )
      }
      if (this.#busy()) await new Promise<void>((resolve) => (this.#readyWaiter = resolve))
    }
    parsed.length = 0
  }

  #dispatch(message: EventSourceMessage): void {
    const o = this.#options
    const type = message.event ?? 'message'
    const id = message.id
    if (type === o.gapEvent) {
      // After anything but an eviction, ids may start over (a restart, another stream): old ones mean nothing.
      if (message.data !== 'evicted') this.#seen.clear()
      if (id !== undefined) this.#move(id)
      const lastEventId = this.#lastEventId
      this.dispatchEvent(new GapEvent({ reason: message.data, lastEventId }))
      this.#offer({ kind: 'gap', reason: message.data, lastEventId })
      return
    }
    if (type === o.endEvent) {
      if (id !== undefined) this.#lastEventId = id
      this.#end(message.data)
      return
    }
    if (id !== undefined && id !== '' && o.dedupeWindow > 0) {
      if (id === this.#lastEventId || this.#seen.has(id)) return
      this.#seen.add(id)
    }
    if (id !== undefined) this.#move(id)
    let data: unknown = message.data
    if (o.json) {
      try {
        data = JSON.parse(message.data)
      } catch (error) {
        this.dispatchEvent(
          new SourceErrorEvent(
            new RewindClientError(
              'ERR_INVALID_JSON',
              `the data of a '${type}' event${id === undefined ? '' : ` (id ${id})`} is not JSON: the event was skipped`,
              { field: 'json', cause: error },
            ),
            undefined,
          ),
        )
        return
      }
    }
    const lastEventId = this.#lastEventId
    this.dispatchEvent(new SourceMessageEvent(type, { data, id, lastEventId, origin: this.#origin }))
    this.#offer({ kind: 'message', type, data, id, lastEventId } as SourceItem<Events>)
  }

  /** Moves the position, and saves it when asked to. */
  #move(id: string): void {
    if (id === this.#lastEventId) return
    this.#lastEventId = id
    this.#saved.savePosition(id)
  }

  /** Decides how to reconnect: the request, or the error that stops the source. */
  async #nextRequest(
    attempt: number,
    reason: string,
    dropped: RewindClientError | undefined,
  ): Promise<NextRequest | RewindClientError> {
    const decision = await this.#askResume(attempt)
    return nextRequest(this.#request, this.#location, decision, { reason, dropped })
  }

  /** What the `resume` option decides, when it is given. */
  async #askResume(attempt: number): Promise<ResumeDecision> {
    const { resume } = this.#options
    // Stryker disable next-line ObjectLiteral,StringLiteral: nextRequest takes any kind but threw, stop and request for the default
    if (resume === undefined) return { kind: 'default' }
    const { url, method } = this.#request
    try {
      const context = { lastEventId: this.#lastEventId, url, method, response: this.#response, attempt }
      return resumeDecision(await resume(context))
    } catch (error) {
      return { kind: 'threw', error }
    }
  }

  #sleep(delay: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve
      // Not unref'd: a pending reconnection is work the program asked for, like an open request.
      this.#sleepTimer = setTimeout(() => {
        this.#sleepTimer = undefined
        this.#wake = undefined
        resolve()
      }, delay)
    })
  }

  #offer(item: SourceItem<Events>): void {
    for (const channel of this.#channels) channel.push(item)
  }

  #busy(): boolean {
    for (const channel of this.#channels) if (channel.busy) return true
    return false
  }

  #ready(): void {
    if (this.#readyWaiter === undefined || this.#busy()) return
    const ready = this.#readyWaiter
    this.#readyWaiter = undefined
    ready()
  }

  /** The stream ended for good: forget the saved position, close, and tell. */
  #end(reason: EndReason): void {
    this.#saved.forget()
    this.#shutdown()
    this.dispatchEvent(new EndEvent({ reason, lastEventId: this.#lastEventId }))
    for (const channel of this.#channels) channel.finish()
  }

  /** The source stops on an error: close, tell, and make `for await` loops throw it. */
  #fail(error: RewindClientError): void {
    if (this.#readyState === CLOSED) return
    this.#failure = error
    this.#shutdown()
    this.dispatchEvent(new SourceErrorEvent(error, undefined))
    for (const channel of this.#channels) channel.finish(error)
  }

  #shutdown(): void {
    this.#readyState = CLOSED
    this.#controller?.abort()
    this.#controller = undefined
    clearTimeout(this.#stallTimer)
    clearTimeout(this.#sleepTimer)
    this.#stallTimer = undefined
    this.#sleepTimer = undefined
    this.#wake?.()
    this.#wake = undefined
    this.#readyWaiter?.()
    this.#readyWaiter = undefined
    this.#options.signal?.removeEventListener('abort', this.#onAbort)
  }
}

/**
 * Opens an event stream: like `new EventSource(url)`, with headers, POST, a saved position,
 * deduplication, backoff, and typed `gap` and `end` events.
 *
 * @example
 * ```ts
 * const source = createEventSource<{ message: string; order: Order }>('/events', {
 *   headers: async () => ({ authorization: `Bearer ${await getToken()}` }),
 *   storageKey: 'orders',
 *   json: true,
 * })
 * source.addEventListener('order', (event) => show(event.data))
 * source.ongap = (event) => refetch(event.reason)
 * ```
 */
export function createEventSource<Events extends EventMap = Record<string, string>>(
  url: string | URL,
  options?: EventSourceOptions,
): RewindEventSource<Events> {
  return new RewindEventSource<Events>(url, options)
}
