/**
 * The event source: one logical stream over as many HTTP responses as it takes. It connects with
 * `fetch`, parses the body, keeps the position (and saves it when asked), drops events it already
 * delivered, and reconnects with backoff until the stream ends, the server refuses it, or it is closed.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html
 */
import type { EventSourceMessage } from 'eventsource-parser'
import { backoffDelay } from './backoff.js'
import { RewindClientError } from './errors.js'
import {
  EndEvent,
  type EndReason,
  GapEvent,
  type GapReason,
  OpenEvent,
  SourceErrorEvent,
  SourceMessageEvent,
} from './events.js'
import { ItemChannel } from './iteration.js'
import {
  type EventSourceOptions,
  type HeadersValue,
  type ResolvedOptions,
  type ResponseInfo,
  resolveOptions,
} from './options.js'
import { createStreamParser, type StreamParser } from './parse.js'
import { SeenIds } from './position.js'

/** Names of a stream's events mapped to the type of their data, for typed listeners and items. */
export type EventMap = Record<string, unknown>

/** What `for await` yields for an event of the stream. */
export interface MessageItem<Type extends string = string, Data = string> {
  kind: 'message'
  /** `message`, or the event's `event:` name. */
  type: Type
  data: Data
  /** The id the event carried, or `undefined` when it had none. */
  id: string | undefined
  /** The stream's position after this event. */
  lastEventId: string
}

/** What `for await` yields for the server's gap signal: events were missed (see {@link GapEvent}). */
export interface GapItem {
  kind: 'gap'
  reason: GapReason
  lastEventId: string
}

/** An item of `for await (const item of source)`: an event of the stream, or a gap. */
export type SourceItem<Events extends EventMap = EventMap> =
  | { [Type in keyof Events & string]: MessageItem<Type, Events[Type]> }[keyof Events & string]
  | GapItem

/** The source's own events, besides the stream's. */
export interface SourceEventMap {
  open: OpenEvent
  error: SourceErrorEvent
  gap: GapEvent
  end: EndEvent
}

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

/** The request the next connection makes. */
interface NextRequest {
  url: string
  method: string
  body: RequestInit['body'] | undefined
  headers: HeadersValue | undefined
}

const CONNECTING = 0
const OPEN = 1
const CLOSED = 2

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function ignore(): void {}

/** The page's URL in a browser, `undefined` in Node. */
function pageUrl(): string | undefined {
  return (globalThis as { location?: { href?: string } }).location?.href
}

/** `url` resolved against `base`, or `undefined` when that is not a valid URL. */
function absolute(url: string | URL, base: string | undefined): string | undefined {
  try {
    return new URL(url, base).href
  } catch {
    return undefined
  }
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
    this.#parser = createStreamParser(
      {
        onEvent: (message) => this.#parsed.push({ kind: 'event', message }),
        onPosition: (id) => this.#parsed.push({ kind: 'position', id }),
        onRetry: (milliseconds) => {
          this.#retry = Math.min(milliseconds, o.maxRetryDelay)
        },
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
        new RewindClientError('ERR_NETWORK', `the source failed: ${describe(error)}`, { cause: error }),
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
    if (previous !== undefined) super.removeEventListener(type, previous)
    this.#handlers.delete(type)
    if (typeof handler !== 'function') return
    this.#handlers.set(type, handler as (event: Event) => void)
    super.addEventListener(type, handler as (event: Event) => void)
  }

  async #run(): Promise<void> {
    const o = this.#options
    const stored = await this.#load(o.storageKey)
    if (stored !== '') this.#lastEventId = stored
    // The URL is saved as soon as the POST is answered, the position only with the first event: a
    // page reloaded in between (waiting for the first token) has the one without the other.
    const resumable = this.#request.method !== 'GET'
    const url = resumable ? await this.#load(this.#urlKey()) : ''
    if (url !== '') this.#location = url
    if (resumable && (stored !== '' || url !== '')) {
      // A reloaded page whose POST was answered: resume that answer, never post again.
      const next = await this.#nextRequest(0, 'a saved position was found', undefined)
      if (this.#readyState === CLOSED) return
      if (next instanceof RewindClientError) {
        // Forget it, so the next page load starts afresh instead of failing the same way.
        this.#forget()
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
      const headers = new Headers(
        typeof o.headers === 'function'
          ? await o.headers({ attempt, lastEventId: this.#lastEventId })
          : o.headers,
      )
      if (request.headers !== undefined) {
        for (const [name, value] of new Headers(request.headers)) headers.set(name, value)
      }
      headers.set('accept', 'text/event-stream')
      if (this.#lastEventId === '') headers.delete('last-event-id')
      else headers.set('last-event-id', this.#lastEventId)
      if (this.#readyState === CLOSED) return undefined
      // `cache` is missing from Node's RequestInit type; browsers must not answer from their HTTP cache.
      const init: RequestInit & { cache?: string } = {
        method: request.method,
        headers,
        cache: 'no-store',
        signal: controller.signal,
      }
      if (o.credentials !== undefined) init.credentials = o.credentials
      if (request.body !== undefined) init.body = request.body
      // A body is sent once: what follows is a resumption, never the same request again.
      request.body = undefined
      // Called unbound: a browser's fetch throws "Illegal invocation" when `this` is not the window.
      const fetchEvents = o.fetch
      response = await fetchEvents(request.url, init)
    } catch (error) {
      if (this.#readyState === CLOSED) return undefined
      return new RewindClientError(
        'ERR_NETWORK',
        `${request.method} ${request.url} failed: ${describe(error)}`,
        {
          cause: error,
        },
      )
    }
    const info: ResponseInfo = {
      url: response.url || request.url,
      status: response.status,
      headers: response.headers,
    }
    this.#response = info
    const location = response.headers.get('location') ?? response.headers.get('content-location')
    if (location !== null) {
      try {
        this.#location = new URL(location, info.url).href
        // Kept with the position, so a reloaded page resumes a POST answer from the same URL.
        if (request.method !== 'GET') this.#write(this.#urlKey(), this.#location)
      } catch {
        // A Location that is not a URL is not one to resume from.
      }
    }
    if (this.#readyState === CLOSED) {
      response.body?.cancel().catch(ignore)
      return undefined
    }
    if (response.status !== 200) {
      response.body?.cancel().catch(ignore)
      if (response.status === 204) {
        this.#end('no-content')
        return undefined
      }
      const retry = o.shouldRetry(response.status)
      const error = new RewindClientError(
        'ERR_HTTP_STATUS',
        `${request.method} ${info.url} answered ${response.status}` +
          (retry ? '' : ': not retried (the shouldRetry option decides which statuses are)'),
        { status: response.status },
      )
      if (retry) return error
      // The server does not know the stream (an answer that expired): a saved position of it would
      // make every later page load ask again and stop the same way; forgotten, the next one starts afresh.
      if (response.status === 404) this.#forget()
      this.#fail(error)
      return undefined
    }
    const contentType = response.headers.get('content-type') ?? ''
    if (contentType.split(';')[0]!.trim().toLowerCase() !== 'text/event-stream') {
      response.body?.cancel().catch(ignore)
      this.#fail(
        new RewindClientError(
          'ERR_CONTENT_TYPE',
          `${info.url} answered with Content-Type '${contentType}', not text/event-stream: check that the URL serves an event stream`,
          { status: 200 },
        ),
      )
      return undefined
    }
    if (response.body === null) {
      return new RewindClientError('ERR_NETWORK', `${info.url} answered without a body`, { status: 200 })
    }
    try {
      this.#origin = new URL(info.url).origin
    } catch {
      this.#origin = ''
    }
    this.#readyState = OPEN
    this.dispatchEvent(new OpenEvent(info))
    if (this.#readyState !== OPEN) {
      response.body.cancel().catch(ignore)
      return undefined
    }
    return this.#read(response.body, controller, info.url)
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
      return new RewindClientError('ERR_NETWORK', `the stream from ${url} broke off: ${describe(error)}`, {
        cause: error,
      })
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
    this.#save(id)
  }

  #save(id: string): void {
    if (this.#options.storageKey !== undefined) this.#write(this.#options.storageKey, id)
  }

  /** Where the URL that resumes a non-GET stream is kept, next to its position. */
  #urlKey(): string | undefined {
    const { storageKey } = this.#options
    return storageKey === undefined ? undefined : `${storageKey}:url`
  }

  /** Reads a saved value, or `''`. */
  async #load(key: string | undefined): Promise<string> {
    const { store } = this.#options
    if (store === undefined || key === undefined) return ''
    try {
      const value = await store.get(key)
      return typeof value === 'string' && !/[\r\n\0]/.test(value) ? value : ''
    } catch {
      // Persistence is best effort: without the saved value the stream starts as if there were none.
      return ''
    }
  }

  /** Saves a value, or forgets it when it is `''`. */
  #write(key: string | undefined, value: string): void {
    const { store } = this.#options
    if (store === undefined || key === undefined) return
    try {
      const written =
        value !== '' ? store.set(key, value) : store.delete ? store.delete(key) : store.set(key, '')
      if (written instanceof Promise) written.catch(ignore)
    } catch {
      // Best effort (storage full or disabled): the position in memory still holds for this page.
    }
  }

  /** Forgets the saved position (and the URL that resumes it). */
  #forget(): void {
    this.#write(this.#options.storageKey, '')
    this.#write(this.#urlKey(), '')
  }

  /** Decides how to reconnect after a drop: the request, or the error that stops the source. */
  async #nextRequest(
    attempt: number,
    situation: string,
    dropped: RewindClientError | undefined,
  ): Promise<NextRequest | RewindClientError> {
    const o = this.#options
    const current = this.#request
    if (o.resume !== undefined) {
      let decided: Awaited<ReturnType<NonNullable<EventSourceOptions['resume']>>>
      try {
        decided = await o.resume({
          lastEventId: this.#lastEventId,
          url: current.url,
          method: current.method,
          response: this.#response,
          attempt,
        })
      } catch (error) {
        return new RewindClientError('ERR_NOT_RESUMABLE', `the resume option threw: ${describe(error)}`, {
          field: 'resume',
          cause: error,
        })
      }
      if (decided === null) {
        return new RewindClientError('ERR_NOT_RESUMABLE', 'the resume option returned null: not resuming', {
          field: 'resume',
          cause: dropped,
        })
      }
      if (decided !== undefined) {
        const url = decided.url === undefined ? current.url : absolute(decided.url, current.url)
        if (url === undefined) {
          return new RewindClientError(
            'ERR_NOT_RESUMABLE',
            `the resume option returned an invalid url: ${String(decided.url)}`,
            {
              field: 'resume',
              cause: dropped,
            },
          )
        }
        return {
          url,
          method: (decided.method ?? (decided.url === undefined ? current.method : 'GET')).toUpperCase(),
          body: decided.body ?? undefined,
          headers: decided.headers,
        }
      }
    }
    if (current.method === 'GET') return current
    if (this.#location !== undefined)
      return { url: this.#location, method: 'GET', body: undefined, headers: undefined }
    return new RewindClientError(
      'ERR_NOT_RESUMABLE',
      `${current.method} ${current.url}: ${situation}, and a body is never sent twice: have the server answer with a Location header naming a GET URL of the stream, or pass the resume option`,
      { field: 'resume', cause: dropped },
    )
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
    this.#forget()
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
