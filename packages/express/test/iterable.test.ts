/** An async iterable as the source of a stream: items go out as they come, and the producer is stopped. */

import type { StreamItem } from '@rewind/core'
import express from 'express'
import { afterEach, describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { openStream } from '../../../test/support/raw-client.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { connect } from './helpers/event-source.js'
import { recordUnhandled, useEvents, useEventsApp } from './helpers/events.js'

describe('async iterable source', () => {
  const unhandled = recordUnhandled()
  afterEach(() => {
    expect(unhandled).toEqual([])
  })

  it('sends items as they are produced and runs the generator’s finally when the client leaves', async () => {
    const events = useEvents()
    const app = express()
    let produced = 0
    let finished = false
    app.use(events)
    app.get('/ticks', (_req, res) => {
      res.sse(
        (async function* (): AsyncGenerator<StreamItem> {
          try {
            for (;;) {
              yield { event: 'tick', data: { n: produced++ } }
              await sleep(10)
            }
          } finally {
            finished = true
          }
        })(),
      )
    })
    const { url } = await listenForTest(app)
    const client = connect(`${url}/ticks`, { types: ['tick'] })
    expect((await client.take(3)).map((event) => JSON.parse(event.data))).toEqual([
      { n: 0 },
      { n: 1 },
      { n: 2 },
    ])
    expect(finished).toBe(false)

    client.close()
    await waitUntil(() => finished, 'the generator’s finally block to run')
    await waitUntil(() => events.hub.stats().connections === 0, 'the connection to be released')
    const stopped = produced
    await sleep(50)
    expect(produced).toBe(stopped)
  })

  it('ends the response when the iterable finishes, with ids and retry hints from its items', async () => {
    const disconnects: unknown[] = []
    const { events, app } = useEventsApp({ onDisconnect: (info) => disconnects.push(info) })
    // A resolver, so each request gets its own iterator (a generator object can be consumed once).
    app.get(
      '/report',
      events.handler(async function* () {
        yield 'start'
        yield { id: 'row-1', data: { row: 1 } }
        yield { event: 'done', data: 'bye', retry: 5000 }
      }),
    )
    const { url } = await listenForTest(app)
    const stream = await openStream(`${url}/report`)
    await stream.waitForEnd()
    expect(stream.events).toEqual([
      { id: undefined, event: undefined, data: 'start' },
      { id: 'row-1', event: undefined, data: '{"row":1}' },
      { id: undefined, event: 'done', data: 'bye' },
    ])
    expect(stream.retries.at(-1)).toBe(5000)
    expect(disconnects).toEqual([{ stream: undefined, reason: 'end' }])
  })

  it('an iterable that throws ends its stream and reaches onError once', async () => {
    const reported: unknown[] = []
    const { app } = useEventsApp({ onError: (error) => reported.push(error) })
    app.get('/fails', (_req, res) => {
      res.sse(
        (async function* () {
          yield 'before'
          throw new Error('producer failed')
        })(),
      )
    })
    const { url } = await listenForTest(app)
    const stream = await openStream(`${url}/fails`)
    await stream.waitForEnd()
    expect(stream.events.map((event) => event.data)).toEqual(['before'])
    expect(reported).toHaveLength(1)
    expect((reported[0] as Error).message).toBe('producer failed')
  })
})
