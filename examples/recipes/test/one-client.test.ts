import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import type { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createApp, sendTo } from '../one-client.js'
import { follow, listen, WAIT } from './follow.js'

describe('recipe: sending to one client', () => {
  const app = createApp()
  let server: Server
  let base: string
  const sources: EventSource[] = []

  beforeAll(async () => {
    ;({ server, base } = await listen(app))
  })
  afterAll(async () => {
    for (const source of sources) source.close()
    await app.locals.events.close({ server })
  })

  it('reaches the one page it is sent to, also after that page drops and comes back', async () => {
    const [one, other] = [randomUUID(), randomUUID()]
    const page = follow(`${base}/events?client=${one}`, { names: ['job'] })
    const elsewhere = follow(`${base}/events?client=${other}`, { names: ['job'] })
    sources.push(page.source, elsewhere.source)
    await Promise.all([page.opened, elsewhere.opened])

    const started = sendTo(app, one, { event: 'job', data: { job: 7, state: 'started' } })
    await vi.waitFor(() => expect(page.received).toHaveLength(1), WAIT)
    page.source.close()
    const done = sendTo(app, one, { event: 'job', data: { job: 7, state: 'done' } })

    // The same page reconnects (same URL), with the last id it had.
    const again = follow(`${base}/events?client=${one}`, {
      headers: { 'last-event-id': started },
      names: ['job'],
    })
    sources.push(again.source)
    await vi.waitFor(() => expect(again.received).toHaveLength(1), WAIT)
    expect(again.received[0]).toEqual({ event: 'job', id: done, data: '{"job":7,"state":"done"}' })
    expect(elsewhere.received).toEqual([])
  })

  it('refuses a missing or guessable client id', async () => {
    for (const query of ['', '?client=', '?client=1', '?client=admin']) {
      expect((await fetch(`${base}/events${query}`)).status).toBe(400)
    }
  })
})
