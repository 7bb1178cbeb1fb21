/**
 * One run: an answer produced on one instance, four resuming readers connecting at seeded random
 * moments (two before the fault, one while it lasts, one after), the fault at a seeded moment, then
 * a fifth reader that replays the stored answer from its start once everything settled. Every
 * reader is held to the invariant (invariant.ts) and the answer's status to what they saw.
 */
import { performance } from 'node:perf_hooks'
import type { ResponseEnd, StartResponseOptions } from '@rewind/core'
import { type Instance, type ProducerPlan, producer, sleep } from './instances.js'
import {
  type Expectations,
  type ReaderSummary,
  statusViolations,
  summarize,
  violations,
} from './invariant.js'
import type { Random } from './random.js'
import { Reader } from './reader.js'

/** Slack on top of 1.5 × lease and the production left: a shared 2-core machine under load. */
export const SLACK = 3000

export interface RunOptions {
  readonly random: Random
  /** Where the producer runs. */
  readonly producing: Instance
  /** The instance of each of the four readers, in order (two before the fault, one during, one after). */
  readonly readersOn: readonly [Instance, Instance, Instance, Instance]
  /** Where the late reader replays the stored answer, and where the final status is asked. */
  readonly other: Instance
  readonly plan: ProducerPlan
  readonly start?: StartResponseOptions
  /** When the fault starts, in ms after the answer started. */
  readonly faultAt: number
  /** Injects the fault; resolves when it is over (the store answers again). */
  readonly fault: (id: string) => Promise<void>
  /** The lease of the hubs (shared stores), for the bound. */
  readonly lease: number
  /** Whether the fault may have lost the data: a 404 is then an end. Asked once the fault is over. */
  readonly dataMayBeLost: boolean | (() => boolean)
  readonly evictionAllowed?: boolean
  /** Extra options of each of the four readers. */
  readonly stallFor?: readonly (number | undefined)[]
  /** Whether readers cut their connection once at a random moment. @defaultValue true */
  readonly cuts?: boolean
}

export interface RunResult {
  readonly id: string
  readonly violations: string[]
  readonly readers: ReaderSummary[]
  /** From the fault's end to each reader's end (0 when it ended earlier), in ms: the four readers. */
  readonly afterFault: number[]
  readonly doneWith: ResponseEnd | undefined
  readonly status: string | undefined
  readonly bound: number
  readonly faultMs: number
}

export async function runAnswer(options: RunOptions): Promise<RunResult> {
  const { random, plan, lease } = options
  const readers: Reader[] = []
  const handle = await options.producing.responses.start(producer(plan), options.start)
  const started = performance.now()
  let doneWith: ResponseEnd | undefined
  void handle.done.then(
    (end) => {
      doneWith = end
    },
    () => {},
  )
  const open = (index: number, instance: Instance) => {
    const cutAt =
      options.cuts === false || !random.chance(0.5) ? undefined : performance.now() + random.int(50, 1500)
    readers.push(
      new Reader({
        name: `reader ${index} (${instance.adapter}${instance === options.producing ? ', producing' : ''})`,
        url: instance.url(handle.id),
        cutAt,
        stallFor: options.stallFor?.[index],
        random: () => random.next(),
      }),
    )
  }
  const at = (ms: number) => sleep(Math.max(0, started + ms - performance.now()))

  let expect: Expectations
  let faultStart: number
  let faultEnd: number
  try {
    // Two readers before the fault, at random moments, in time order.
    const before = [random.int(0, options.faultAt), random.int(0, options.faultAt)].sort((a, b) => a - b)
    const early = (async () => {
      for (const [i, ms] of before.entries()) {
        await at(ms)
        open(i, options.readersOn[i]!)
      }
    })()
    const during = options.faultAt + random.int(0, 300)
    await at(options.faultAt)
    const start = performance.now()
    const faulting = options.fault(handle.id)
    await at(during)
    open(2, options.readersOn[2])
    await faulting
    await early
    faultStart = start
    faultEnd = performance.now()
    await sleep(random.int(0, 400))
    open(3, options.readersOn[3])

    // The production left after the fault, at most: the producer may have been held up by it.
    const left = Math.max(0, plan.tokens * plan.interval - options.faultAt)
    const bound = 1.5 * lease + left + SLACK
    expect = {
      tokens: plan.throwAt ?? plan.tokens,
      faultEnd,
      bound,
      dataMayBeLost:
        typeof options.dataMayBeLost === 'function' ? options.dataMayBeLost() : options.dataMayBeLost,
      evictionAllowed: options.evictionAllowed === true,
    }
    await Promise.race([
      Promise.all(readers.map((r) => r.finished)),
      sleep(faultEnd + bound + 500 - performance.now()),
    ])
  } finally {
    // Also when the fault itself failed: no reader goes on reconnecting after its run.
    for (const reader of readers) reader.stop()
  }
  // The stored answer, replayed from its start once everything settled: no hole there either.
  const late = new Reader({
    name: `late reader (${options.other.adapter})`,
    url: options.other.url(handle.id),
    random: () => random.next(),
  })
  const lateStart = performance.now()
  await Promise.race([late.finished, sleep(1.5 * lease + SLACK)])
  late.stop()

  // The producer's own promise settles within the same bound (it may still be retrying its end
  // after its readers were told), and before the record is read, so both are compared when final.
  await Promise.race([handle.done.catch(() => {}), sleep(faultEnd + expect.bound - performance.now())])

  let status: string | undefined
  for (let tries = 0; ; tries++) {
    try {
      status = await options.other.responses.status(handle.id)
      break
    } catch (error) {
      status = `error ${(error as { code?: string }).code ?? (error as Error).message}`
      if (tries >= 10) break
      await sleep(100)
    }
  }

  const found = readers.flatMap((reader) => violations(reader, expect))
  found.push(...violations(late, { ...expect, faultEnd: lateStart, bound: 1.5 * lease + SLACK }))
  found.push(...statusViolations([...readers, late], status, expect))
  if (doneWith === undefined) found.push('the producer did not settle (handle.done) within the bound')
  else if (status !== undefined && !status.startsWith('error') && doneWith !== status) {
    found.push(`the producer settled ${doneWith}, the record says ${status}`)
  }
  return {
    id: handle.id,
    violations: found,
    readers: [...readers, late].map((reader) => summarize(reader, faultEnd)),
    afterFault: readers.map((reader) => Math.max(0, Math.round((reader.endedAt ?? Number.NaN) - faultEnd))),
    doneWith,
    status,
    bound: expect.bound,
    faultMs: Math.round(faultEnd - faultStart),
  }
}
