/**
 * The invariant every reader of an answer must keep, whatever the store went through: no silent
 * hole (token numbers consecutive, except a jump right after the gap signal), no duplicate, an end
 * (the terminal event, a 204, or a 404 once the data is gone) within a bound after the fault, and
 * `done` only with every token. And the answer's final status agrees with what the readers saw.
 */
import { END_EVENT, GAP_EVENT, type Reader } from './reader.js'

/** What the checks read of a reader (a plain record will do, to test the checks themselves). */
export type Seen = Pick<Reader, 'name' | 'events' | 'attempts' | 'end' | 'endedAt' | 'heartbeatsSinceEvent'>

/** What a run allows, and the bound it holds readers to. */
export interface Expectations {
  /** How many tokens the producer yields (t0..tN-1) when nothing fails. */
  readonly tokens: number
  /** `performance.now()` when the fault ended: the bound counts from here. */
  readonly faultEnd: number
  /** How long after the fault's end a reader may take to reach its end, in ms. */
  readonly bound: number
  /** The fault may lose the data (Redis restarted empty, an answer expired): a 404 is then an end. */
  readonly dataMayBeLost: boolean
  /**
   * The answer may drop its oldest tokens by its own bound (`maxEvents`, `maxBytes`): a reader told
   * `evicted` may then end `done` without them.
   */
  readonly evictionAllowed?: boolean
}

/** What the checks found about one reader, for the report. */
export interface ReaderSummary {
  readonly name: string
  readonly tokens: number
  readonly gaps: readonly string[]
  readonly end: string
  /** From the fault's end to the reader's end, in ms (negative: it ended before the fault ended). */
  readonly afterFault: number | undefined
  readonly attempts: string
}

/** The number of a token's data (`t12`, or `t12 <padding>`), or undefined for other data. */
export function tokenNumber(data: string): number | undefined {
  const match = /^t(\d+)(?: |$)/.exec(data)
  return match === null ? undefined : Number(match[1])
}

export function summarize(reader: Seen, faultEnd: number): ReaderSummary {
  const end =
    reader.end === undefined
      ? 'none'
      : reader.end.kind === 'terminal'
        ? `end:${reader.end.data}`
        : String(reader.end.kind)
  return {
    name: reader.name,
    tokens: reader.events.filter((e) => e.event === undefined || e.event === 'message').length,
    gaps: reader.events.filter((e) => e.event === GAP_EVENT).map((e) => e.data),
    end,
    afterFault: reader.endedAt === undefined ? undefined : Math.round(reader.endedAt - faultEnd),
    attempts: reader.attempts
      .map((a) => `${a.status}${a.outcome === undefined || a.outcome === 'final' ? '' : `/${a.outcome}`}`)
      .join(','),
  }
}

/** Every way `reader` broke the invariant; empty when it kept it. */
export function violations(reader: Seen, expect: Expectations): string[] {
  const found: string[] = []
  const say = (what: string) => found.push(`${reader.name}: ${what}`)
  const seen = new Set<number>()
  let next = 0
  let gapBefore = false
  let gapReasons: string[] = []
  const evictedJumps: [number, number][] = []
  for (const event of reader.events) {
    if (event.event === GAP_EVENT) {
      gapBefore = true
      gapReasons.push(event.data)
      continue
    }
    if (event.event === END_EVENT) continue
    const n = tokenNumber(event.data)
    if (n === undefined) {
      say(`unexpected event ${JSON.stringify(event)}`)
      continue
    }
    if (seen.has(n)) say(`duplicate t${n}`)
    else if (n !== next) {
      if (!gapBefore) say(`silent hole: t${next - 1} then t${n} without ${GAP_EVENT}`)
      else if (n < next) say(`went back from t${next - 1} to t${n} after ${GAP_EVENT}`)
      else if (gapReasons.includes('evicted')) evictedJumps.push([next, n])
    }
    seen.add(n)
    next = n + 1
    gapBefore = false
    gapReasons = []
  }

  const end = reader.end
  if (end === undefined) {
    say(
      `no end ${Math.round(expect.bound)} ms after the fault (${reader.heartbeatsSinceEvent} heartbeats since its ` +
        `last event; attempts ${summarize(reader, 0).attempts})`,
    )
  } else {
    const after = reader.endedAt! - expect.faultEnd
    if (after > expect.bound)
      say(`ended ${Math.round(after)} ms after the fault, past the ${expect.bound} ms bound`)
    if (end.kind === 404 && !expect.dataMayBeLost) say('404 although the data was kept')
    if (end.kind === 'terminal') {
      if (!['done', 'cancelled', 'failed'].includes(end.data)) say(`terminal event with data ${end.data}`)
      if (end.data === 'done' && seen.size < expect.tokens) {
        const missing = expect.tokens - seen.size
        const evicted = evictedJumps.reduce((sum, [from, to]) => sum + (to - from), 0)
        const allEvicted = expect.evictionAllowed === true && missing === evicted && next === expect.tokens
        if (!allEvicted) say(`done with ${seen.size} of ${expect.tokens} tokens`)
      }
    }
  }
  return found
}

/**
 * Checks the answer's final status (`hub.responses.status(id)` once every reader stopped) against
 * what the readers saw; `status` is `'error …'` when the store could not be asked.
 */
export function statusViolations(
  readers: readonly Seen[],
  status: string | undefined,
  expect: Pick<Expectations, 'dataMayBeLost' | 'tokens' | 'evictionAllowed'>,
): string[] {
  const found: string[] = []
  for (const reader of readers) {
    if (reader.end?.kind !== 204 || status !== 'done' || expect.evictionAllowed) continue
    const tokens = new Set(reader.events.map((e) => tokenNumber(e.data)).filter((n) => n !== undefined))
    if (tokens.size < expect.tokens) {
      found.push(
        `${reader.name}: 204 (you have it all) with ${tokens.size} of ${expect.tokens} tokens of a done answer`,
      )
    }
  }
  if (status === 'active') found.push('the answer is still active after every reader stopped')
  if (status === undefined && !expect.dataMayBeLost)
    found.push('the answer is gone although the data was kept')
  if (status?.startsWith('error')) found.push(`its status could not be read: ${status}`)
  const terminals = new Set(readers.flatMap((r) => (r.end?.kind === 'terminal' ? [r.end.data] : [])))
  if (terminals.size > 1) found.push(`readers saw different ends: ${[...terminals].join(', ')}`)
  for (const data of terminals) {
    if (status !== undefined && data !== status) found.push(`a reader saw ${data}, the record says ${status}`)
  }
  return found
}
