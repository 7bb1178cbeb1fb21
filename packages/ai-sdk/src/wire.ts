/**
 * The AI SDK's UI message stream on the wire: its headers, and the translation of a Rewind answer's
 * frames into what the SDK's parser reads. The parser (`parseJsonEventStream`) reads only `data`,
 * skips `[DONE]` and throws on anything that is not a chunk's JSON, so Rewind's own frames (the
 * terminal `rewind-end` event, the `rewind-gap` signal, the id-only frame that tells a fresh client
 * its position) become chunks or are left out; `id:` lines stay, so a client resumes exactly.
 * @see https://ai-sdk.dev/docs/ai-sdk-ui/stream-protocol
 */
import type { ServerResponse } from 'node:http'
import { HUB_DEFAULTS } from '@rewind/core'

/** The header by which the SDK's servers mark a UI message stream. */
export const UI_MESSAGE_STREAM_HEADER = 'x-vercel-ai-ui-message-stream'

/** The names of the hub's own events (its `gapEvent` and `endEvent` options). */
export interface FrameNames {
  /** The hub's `gapEvent`. @defaultValue `'rewind-gap'` (the core's `HUB_DEFAULTS.gapEvent`) */
  gapEvent?: string | undefined
  /** The hub's `endEvent`. @defaultValue `'rewind-end'` (the core's `HUB_DEFAULTS.endEvent`) */
  endEvent?: string | undefined
}

/** The data part a gap becomes: transient, so it reaches `onData` and never the message. */
export const GAP_PART = 'data-rewind-gap'

const DONE = '[DONE]'

/**
 * Rewrites the frames the hub writes for an answer into UI message stream frames, one call per
 * write. Frames arrive whole from the hub, but a frame split across writes is kept until its end.
 */
export class FrameTranslator {
  private pending = ''
  private readonly gapEvent: string
  private readonly endEvent: string

  constructor(names: FrameNames = {}) {
    this.gapEvent = names.gapEvent ?? HUB_DEFAULTS.gapEvent
    this.endEvent = names.endEvent ?? HUB_DEFAULTS.endEvent
  }

  /** Translates `text`; returns what goes to the client now (maybe nothing). */
  push(text: string): string {
    const all = this.pending + text
    const last = all.lastIndexOf('\n\n')
    if (last === -1) {
      this.pending = all
      return ''
    }
    this.pending = all.slice(last + 2)
    let out = ''
    // The hub writes LF line ends only, and JSON data never holds a raw line break.
    for (const frame of all.slice(0, last).split('\n\n')) out += this.frame(frame)
    return out
  }

  private frame(frame: string): string {
    let id: string | undefined
    let event: string | undefined
    let data: string | undefined
    let other = false
    for (const line of frame.split('\n')) {
      if (line.startsWith('id: ')) id = line.slice(4)
      else if (line.startsWith('event: ')) event = line.slice(7)
      else if (line.startsWith('data: '))
        data = data === undefined ? line.slice(6) : `${data}\n${line.slice(6)}`
      else if (line === 'data:') data = data === undefined ? '' : `${data}\n`
      else other = true
    }
    // Comments (heartbeats) and the `retry:` hint: the SDK's parser ignores them.
    if (other && id === undefined && data === undefined) return `${frame}\n\n`
    // The id-only frame of a fresh client: no event, and the client starts from the first chunk anyway.
    if (data === undefined) return ''
    const idLine = id === undefined ? '' : `id: ${id}\n`
    if (event === this.endEvent) return `${idLine}${terminal(data)}`
    if (event === this.gapEvent) {
      const part = { type: GAP_PART, transient: true, data: { reason: data } }
      return `${idLine}data: ${JSON.stringify(part)}\n\n`
    }
    if (data === '') return ''
    return `${idLine}data: ${data}\n\n`
  }
}

/**
 * The end of an answer as the SDK reads it: the terminal chunk (the producer's `finish` came
 * before a `done`), then `[DONE]`. The first frame carries the terminal event's id, so a client
 * that drops after it comes back with that id and gets 204, never the end twice.
 */
function terminal(reason: string): string {
  if (reason === 'done') return `data: ${DONE}\n\n`
  const chunk =
    reason === 'cancelled'
      ? { type: 'abort', reason: 'stopped' }
      : { type: 'error', errorText: 'the answer failed before it finished' }
  return `data: ${JSON.stringify(chunk)}\n\ndata: ${DONE}\n\n`
}

/**
 * A view of `res` for the hub to serve an answer through: the status line gets the SDK's headers,
 * and every write goes through a {@link FrameTranslator}. Everything else is `res` itself (a writer
 * that bypasses `res.write` for the socket checks `res.write`, finds it wrapped, and keeps out).
 */
export function uiMessageStreamView(res: ServerResponse, names: FrameNames = {}): ServerResponse {
  const translator = new FrameTranslator(names)
  const decoder = new TextDecoder()
  const write = (chunk: Uint8Array | string, ...rest: unknown[]): boolean => {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })
    const out = translator.push(text)
    const callback = rest.find((value) => typeof value === 'function') as (() => void) | undefined
    if (out === '') {
      callback?.()
      return res.writableLength < res.writableHighWaterMark
    }
    return callback === undefined ? res.write(out) : res.write(out, callback)
  }
  const writeHead = (status: number, ...rest: unknown[]): ServerResponse => {
    if (status !== 200) return (res.writeHead as (...args: unknown[]) => ServerResponse)(status, ...rest)
    const headers = (rest.find((value) => typeof value === 'object' && value !== null) ?? {}) as Record<
      string,
      string
    >
    return res.writeHead(200, { ...headers, [UI_MESSAGE_STREAM_HEADER]: 'v1' })
  }
  return new Proxy(res, {
    get(target, property) {
      if (property === 'write') return write
      if (property === 'writeHead') return writeHead
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
