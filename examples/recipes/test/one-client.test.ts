import { randomUUID } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'
import { createApp, sendTo } from '../one-client.js'
import { follow, serveRecipe, WAIT } from './follow.js'

describe('recipe: sending to one client', () => {
  const app = createApp()
  const served = serveRecipe(app, app.locals.events)

  it('reaches the one page it is sent to, also after that page drops and comes back', async () => {
    const [one, other] = [randomUUID(), randomUUID()]
    const page = follow(`${served.base}/events?client=${one}`, { names: ['job'] })
    const elsewhere = follow(`${served.base}/events?client=${other}`, { names: ['job'] })
    served.sources.push(page.source, elsewhere.source)
    await Promise.all([page.opened, elsewhere.opened])

    const started = sendTo(app, one, { event: 'job', data: { job: 7, state: 'started' } })
    await vi.waitFor(() => expect(page.received).toHaveLength(1), WAIT)
    page.source.close()
    const done = sendTo(app, one, { event: 'job', data: { job: 7, state: 'done' } })

    // The same page reconnects (same URL), with the last id it had.
    const again = follow(`${served.base}/events?client=${one}`, {
      headers: { 'last-event-id': started },
      names: ['job'],
    })
    served.sources.push(again.source)
    await vi.waitFor(() => expect(again.received).toHaveLength(1), WAIT)
    expect(again.received[0]).toEqual({ event: 'job', id: done, data: '{"job":7,"state":"done"}' })
    expect(elsewhere.received).toEqual([])
  })

  it('refuses a missing or guessable client id', async () => {
    for (const query of ['', '?client=', '?client=1', '?client=admin']) {
      expect((await fetch(`${served.base}/events${query}`)).status).toBe(400)
    }
  })
})
