/**
 * `@rewind/ai-sdk/client`: a `ChatTransport` for `useChat` whose answers survive the connection.
 * When the connection drops mid-answer it reconnects inside the same stream with `Last-Event-ID`
 * (`@rewind/client`'s backoff with full jitter), so the chat's message carries on from the exact
 * chunk, never twice and never a delta without its part's start; after a reload,
 * `reconnectToStream` replays the answer from its first chunk.
 */
import { createEventSource, type RewindEventSource, type SourceItem } from '@rewind/client'
import type { ChatRequestOptions, ChatTransport, UIMessage, UIMessageChunk } from 'ai'

type HeaderInit = Record<string, string> | Headers

/** Options of {@link RewindChatTransport}. */
export interface RewindChatTransportOptions {
  /**
   * The chat endpoint: answers are POSTed here and resumed from `{api}/{chatId}/stream`.
   * @defaultValue `'/api/chat'`
   */
  api?: string
  /**
   * Headers of every request, or a function that returns them (called before each attempt, so a
   * reconnection carries a fresh token).
   * @defaultValue none
   */
  headers?: HeaderInit | (() => HeaderInit | Promise<HeaderInit>)
  /**
   * Extra JSON properties of the POST body, beside `id`, `messages`, `trigger` and `messageId`.
   * @defaultValue none
   */
  body?: object | (() => object)
  /**
   * Whether cookies go with the requests, as `fetch` says it.
   * @defaultValue `'same-origin'`
   */
  credentials?: RequestInit['credentials']
  /**
   * The `fetch` to use.
   * @defaultValue `globalThis.fetch`
   */
  fetch?: typeof fetch
  /**
   * Base of the reconnection delay in milliseconds: the n-th attempt in a row waits a random time up
   * to `min(maxRetryDelay, retry × 2^n)`.
   * @defaultValue 1000
   */
  retry?: number
  /**
   * Largest reconnection delay, in milliseconds.
   * @defaultValue 30000
   */
  maxRetryDelay?: number
  /**
   * Most reconnection attempts in a row without a byte received; then the chat gets the error.
   * @defaultValue 20
   */
  maxRetries?: number
  /**
   * Reconnect when no byte arrives for this many milliseconds (a half-open connection); `0` turns it off.
   * @defaultValue 45000
   */
  stallTimeout?: number
}

/** Default of {@link RewindChatTransportOptions.maxRetries}. */
export const DEFAULT_MAX_RETRIES = 20
/** Default of {@link RewindChatTransportOptions.stallTimeout}. */
export const DEFAULT_STALL_TIMEOUT = 45_000

const DONE = '[DONE]'

/** Every event of a UI message stream is a `message` whose data is a chunk's JSON (or `[DONE]`). */
type Events = { message: string }

/**
 * The Rewind transport for `useChat` (`@ai-sdk/react`) and any `Chat`.
 *
 * @example
 * ```ts
 * const { messages, sendMessage } = useChat({ transport: new RewindChatTransport(), resume: true })
 * ```
 */
export class RewindChatTransport<UI_MESSAGE extends UIMessage = UIMessage>
  implements ChatTransport<UI_MESSAGE>
{
  /** A resumed answer starts from its first chunk: the chat resets its message state on it. */
  readonly resumeStreamIsReplay = true
  private readonly api: string

  constructor(private readonly options: RewindChatTransportOptions = {}) {
    this.api = options.api ?? '/api/chat'
  }

  async sendMessages(
    options: {
      trigger: 'submit-message' | 'regenerate-message'
      chatId: string
      messageId: string | undefined
      messages: UI_MESSAGE[]
      abortSignal: AbortSignal | undefined
    } & ChatRequestOptions,
  ): Promise<ReadableStream<UIMessageChunk>> {
    const extra = typeof this.options.body === 'function' ? this.options.body() : this.options.body
    const body = JSON.stringify({
      ...extra,
      ...(options.body as object | undefined),
      id: options.chatId,
      messages: options.messages,
      trigger: options.trigger,
      messageId: options.messageId,
    })
    const stream = await this.open(this.api, options.chatId, options, { method: 'POST', body })
    // A POST is answered with a stream, even if it ends at once.
    return stream ?? emptyStream()
  }

  reconnectToStream(
    options: { chatId: string; abortSignal?: AbortSignal | undefined } & ChatRequestOptions,
  ): Promise<ReadableStream<UIMessageChunk> | null> {
    return this.open(this.streamUrl(options.chatId), options.chatId, options, { method: 'GET' })
  }

  private streamUrl(chatId: string): string {
    return `${this.api}/${encodeURIComponent(chatId)}/stream`
  }

  /**
   * Opens the answer's event stream and resolves once its first chunk is there (or with `null` if
   * the server answered 204: no answer to resume). Drops are resumed inside the stream.
   */
  private async open(
    url: string,
    chatId: string,
    request: { abortSignal?: AbortSignal | undefined } & ChatRequestOptions,
    first: { method: string; body?: string },
  ): Promise<ReadableStream<UIMessageChunk> | null> {
    const o = this.options
    const signal = request.abortSignal
    // The URL that resumes this very answer, from the server's Content-Location; before the first
    // response, the chat's resume URL (which serves its active answer from the start).
    let location: string | undefined
    const source: RewindEventSource<Events> = createEventSource<Events>(url, {
      method: first.method,
      ...(first.body === undefined ? {} : { body: first.body }),
      headers: async () => {
        const headers = new Headers(typeof o.headers === 'function' ? await o.headers() : o.headers)
        for (const [name, value] of new Headers(request.headers)) headers.set(name, value)
        if (first.body !== undefined) headers.set('content-type', 'application/json')
        return headers
      },
      ...(o.credentials === undefined ? {} : { credentials: o.credentials }),
      ...(signal === undefined ? {} : { signal }),
      ...(o.fetch === undefined ? {} : { fetch: o.fetch }),
      ...(o.retry === undefined ? {} : { retry: o.retry }),
      ...(o.maxRetryDelay === undefined ? {} : { maxRetryDelay: o.maxRetryDelay }),
      maxRetries: o.maxRetries ?? DEFAULT_MAX_RETRIES,
      stallTimeout: o.stallTimeout ?? DEFAULT_STALL_TIMEOUT,
      resume: (context) => ({ url: location ?? resolve(this.streamUrl(chatId), context.url), method: 'GET' }),
    })
    source.addEventListener('open', (event) => {
      const given = event.headers.get('content-location')
      if (given !== null) location = resolve(given, event.url)
    })
    const items = source[Symbol.asyncIterator]()
    const abortError = (): unknown =>
      signal?.reason ?? new DOMException('The answer was aborted', 'AbortError')
    let head: IteratorResult<SourceItem<Events>>
    try {
      head = await items.next()
    } catch (error) {
      source.close()
      throw signal?.aborted ? abortError() : error
    }
    if (signal?.aborted) throw abortError()
    if (head.done) return null
    let next: IteratorResult<SourceItem<Events>> | undefined = head
    return new ReadableStream<UIMessageChunk>({
      async pull(controller) {
        for (;;) {
          let item: IteratorResult<SourceItem<Events>>
          try {
            item = next ?? (await items.next())
          } catch (error) {
            controller.error(signal?.aborted ? abortError() : error)
            return
          }
          next = undefined
          // The source ended: after `[DONE]`, or a 204 to a client that has the end already.
          if (item.done) {
            if (signal?.aborted) controller.error(abortError())
            else controller.close()
            return
          }
          const value = item.value
          if (value.kind === 'gap') {
            controller.enqueue({ type: 'data-rewind-gap', transient: true, data: { reason: value.reason } })
            return
          }
          if (value.data === DONE) {
            source.close()
            controller.close()
            return
          }
          controller.enqueue(JSON.parse(value.data) as UIMessageChunk)
          return
        }
      },
      cancel() {
        source.close()
      },
    })
  }
}

function resolve(url: string, base: string): string {
  try {
    return new URL(url, base).href
  } catch {
    return url
  }
}

function emptyStream(): ReadableStream<UIMessageChunk> {
  return new ReadableStream({ start: (controller) => controller.close() })
}
