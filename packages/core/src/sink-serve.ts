/**
 * Serving an event stream on a sink that is not a `node:http` response: the body of a Fetch
 * `Response`, whose status and headers the adapter builds itself once it knows the answer. The same
 * sources, checks and outcomes as `Hub.serve` (a hub stream with replay, a response with its end, 204
 * and 404, an async iterable), told to the adapter instead of written to a response head.
 */
import { Connection } from './connection.js'
import { type Hub, serveHostOf } from './hub.js'
import type { ResumeId } from './last-event-id.js'
import {
  checkSource,
  isResponseSource,
  type ServeHost,
  type ServeOptions,
  type StreamSource,
  UNAVAILABLE_BODY,
  UNKNOWN_RESPONSE_BODY,
} from './serve.js'
import type { EventSink, Subscription } from './types.js'

/** Options of {@link serveSink}: the serve options, and the client's resume position. */
export interface SinkServeOptions extends ServeOptions {
  /** Where the client asks to resume from (see `readResumeId`). */
  lastEventId: ResumeId
}

/**
 * How a request is answered:
 * - `200`: an event stream, whose bytes go to the sink (the head is due: send the response now);
 * - `204`: the client has the response's end already (an EventSource then stops for good);
 * - `404`: an unknown or expired response id; `body` is the JSON to send;
 * - `503`: the store could not be read (reported through `onError`); `body` is the JSON to send.
 */
export type SinkAnswer =
  | {
      readonly status: 200
      /** The stream, for the application. */
      readonly subscription: Subscription
      /**
       * Ends the stream with a `retry:` hint of `retry` milliseconds, so the client comes back at
       * once from its position (a platform's duration limit nears). Nothing if it has ended.
       */
      finish(retry: number): void
    }
  | { readonly status: 204 }
  | { readonly status: 404 | 503; readonly body: string }

/**
 * Serves `source` on `sink`. Resolves once the answer is known: for an event stream, when its head
 * is due, which is at once, or with an asynchronous store once the client's position is fixed (so an
 * `open` on the client means subscribed, as with `Hub.serve`); nothing is written to the sink before.
 * Throws `ERR_INVALID_STREAM` or `ERR_INVALID_ARGUMENT` for a bad source before anything is written.
 */
export function serveSink(
  hub: Hub<string | Promise<string>>,
  sink: EventSink,
  source: StreamSource,
  options: SinkServeOptions,
): Promise<SinkAnswer> {
  const host = serveHostOf(hub)
  checkSource(source)
  if (isResponseSource(source)) return serveResponse(host, sink, source.response, options.lastEventId)
  return new Promise((resolve) => {
    const answer = streamAnswer(resolve)
    const subscription =
      typeof source === 'string'
        ? host.follow(
            source,
            sink,
            { lastEventId: options.lastEventId, filter: options.filter, gapPolicy: options.gapPolicy },
            answer.head,
          )
        : host.iterate(sink, source, answer.head)
    answer.settle(subscription)
  })
}

/** A response by id: 404, 204, or the stream from the client's position to its terminal event. */
async function serveResponse(
  host: ServeHost,
  sink: EventSink,
  id: string,
  resumeId: ResumeId,
): Promise<SinkAnswer> {
  let plan: Awaited<ReturnType<ServeHost['plan']>>
  try {
    plan = await host.plan(id, resumeId)
  } catch (error) {
    host.reportError(error, undefined)
    return { status: 503, body: UNAVAILABLE_BODY }
  }
  if (plan.kind === 'unknown') return { status: 404, body: UNKNOWN_RESPONSE_BODY }
  if (plan.kind === 'ended') return { status: 204 }
  return new Promise((resolve) => {
    const answer = streamAnswer(resolve)
    answer.settle(host.followResponse(id, plan.stream, sink, plan.after, answer.head))
  })
}

/**
 * The 200 answer of a stream, resolved when its head is due: the head callback runs before the first
 * byte reaches the sink. A subscription that ended without a head (the client left already) still
 * gets its answer, with a body that has ended.
 */
function streamAnswer(resolve: (answer: SinkAnswer) => void) {
  let subscription: Subscription | undefined
  const answer = (): SinkAnswer => ({
    status: 200,
    get subscription() {
      return subscription!
    },
    finish(retry: number) {
      if (subscription instanceof Connection) subscription.end('end', retry)
      else subscription!.close()
    },
  })
  return {
    head: (): undefined => {
      resolve(answer())
      return undefined
    },
    settle(settled: Subscription): void {
      subscription = settled
      // Closed without a head: answer now. After a head the promise is settled and this is a no-op.
      if (settled.closed) resolve(answer())
    },
  }
}
