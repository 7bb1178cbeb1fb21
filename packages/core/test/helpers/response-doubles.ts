/**
 * `Responses` driven directly: records whose answers the test sets (counting and recording the
 * calls), a host that records what it fans out and reports, and followers that record how they were
 * ended. Each rule of the registry can then be seen alone, without a store or a socket.
 */
import type { ResponseHost } from '../../src/response-producer.js'
import { type ResponseFollower, Responses } from '../../src/responses.js'
import type {
  NewEvent,
  ResponseEnd,
  ResponseLimits,
  ResponseRecords,
  ResponseState,
  StoredEvent,
} from '../../src/store.js'

export const LEASE = 1000

/** A call that ends a response: `end`, or `endIfLapsed` (`onlyIfLapsed`), with what it was given. */
export interface EndCall {
  readonly id: string
  readonly onlyIfLapsed: boolean
  readonly stream?: string
  readonly event?: NewEvent
  readonly reason?: ResponseEnd
  readonly limits?: ResponseLimits
}

/**
 * Records (`shared`: with a lease, `renew` and `endIfLapsed`) whose `get` answers what the test
 * says, counting calls; `end` and `endIfLapsed` record their calls and answer `ended` (`failed`
 * unless set). `append` answers `undefined` (the response has ended) on a synchronous store (so a producer
 * there halts at its first item), and a new id on a shared one.
 */
export function recordsWith(shared: boolean) {
  const calls = { get: 0, end: [] as EndCall[], appends: 0 }
  let state: ResponseState | undefined = { status: 'active', origin: 'o', endId: undefined }
  let endAnswer: { state: ResponseState; event?: StoredEvent } | undefined = {
    state: { status: 'failed', origin: 'o', endId: 'e' },
  }
  let getError: Error | undefined
  let pendingGet: ((value: ResponseState | undefined) => void) | undefined
  let holdGets = false
  const record =
    (onlyIfLapsed: boolean) =>
    (id: string, stream: string, event: NewEvent, reason: ResponseEnd, limits: ResponseLimits) => {
      calls.end.push({ id, onlyIfLapsed, stream, event, reason, limits })
      return endAnswer
    }
  const end = record(false)
  const endIfLapsed = record(true)
  const records: ResponseRecords = {
    create: () => true,
    append: () => {
      calls.appends++
      return shared ? Promise.resolve(`${calls.appends}-0`) : undefined
    },
    get: () => {
      calls.get++
      if (getError !== undefined) return Promise.reject(getError)
      if (holdGets) return new Promise((resolve) => (pendingGet = resolve))
      return Promise.resolve(state)
    },
    end: shared ? (...args) => Promise.resolve(end(...args)) : end,
    ...(shared
      ? {
          renew: () => Promise.resolve(true),
          endIfLapsed: (...args: Parameters<typeof endIfLapsed>) => Promise.resolve(endIfLapsed(...args)),
        }
      : {}),
  }
  return {
    records,
    calls,
    set(next: ResponseState | undefined) {
      state = next
    },
    /** What `end` and `endIfLapsed` answer from now on. */
    answerEnd(next: { state: ResponseState; event?: StoredEvent } | undefined) {
      endAnswer = next
    },
    failGets(error: Error | undefined) {
      getError = error
    },
    hold(on: boolean) {
      holdGets = on
    },
    release() {
      pendingGet?.(state)
    },
  }
}

/** `Responses` over `records` (undefined: a store that keeps none), with what its host was asked to do. */
export function responsesOver(records: ResponseRecords | undefined, endEvent = 'rewind-end') {
  const reported: { error: unknown; stream: string }[] = []
  const fannedOut: { stream: string; event: StoredEvent }[] = []
  const host: ResponseHost = {
    store: { synchronous: false, responses: records } as unknown as ResponseHost['store'],
    endEvent,
    prepare: (_stream, input): NewEvent => ({
      event: input.event,
      data: String(input.data),
      value: input.data,
    }),
    fanOut: (stream, event) => fannedOut.push({ stream, event }),
    pin: () => undefined,
    unpin: () => {},
    reportError: (error, stream) => reported.push({ error, stream }),
  }
  return { responses: new Responses(host, { lease: LEASE }), reported, fannedOut }
}

/** A follower that records how it was ended; `waiting` as the test sets it. */
export function follower(waiting = false) {
  let resolveDone!: () => void
  const done = new Promise<void>((resolve) => (resolveDone = resolve))
  const seen = { ended: [] as string[], frames: [] as string[] }
  const f: ResponseFollower & { waiting: boolean; closed: boolean } = {
    closed: false,
    waiting,
    end(reason) {
      seen.ended.push(reason)
      f.closed = true
    },
    endWith(frame) {
      seen.frames.push(Buffer.from(frame).toString())
      f.closed = true
    },
  }
  return { f, seen, done, leave: () => resolveDone() }
}

/** Lets pending promise callbacks and an `setImmediate` turn run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve))

/** Checks response `r` at once and lets the check finish. */
export async function verifyNow(responses: Responses): Promise<void> {
  responses.verify('r')
  await settle()
}

export const ended = (status: ResponseEnd): ResponseState => ({ status, origin: 'o', endId: 'e' })

/** Records (`shared` or not) under `Responses`, with one client `a` of response `r` that waits live. */
export function oneWaitingClient(shared: boolean) {
  const store = recordsWith(shared)
  const { responses, reported, fannedOut } = responsesOver(store.records)
  const a = follower(true)
  responses.follow('r', a.f, a.done)
  return { store, responses, reported, fannedOut, a }
}
