import { describe, expect, it, vi } from 'vitest'
import { createApp } from '../rooms.js'
import { follow, serveRecipe, WAIT } from './follow.js'

describe('recipe: rooms', () => {
  const app = createApp()
  const served = serveRecipe(app, app.locals.events)

  async function say(room: string, from: string, text: string) {
    const response = await fetch(`${served.base}/rooms/${room}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from, text }),
    })
    return { status: response.status, body: (await response.json()) as { id?: string; error?: string } }
  }

  it('delivers each room its own messages, and replays a room to a member who comes back', async () => {
    const lobby = follow(`${served.base}/rooms/lobby/events`)
    const ops = follow(`${served.base}/rooms/ops/events`)
    served.sources.push(lobby.source, ops.source)
    await Promise.all([lobby.opened, ops.opened])

    const first = await say('lobby', 'ada', 'hello')
    await say('ops', 'grace', 'deploying')
    const second = await say('lobby', 'linus', 'hi ada')
    await vi.waitFor(() => expect([lobby.received.length, ops.received.length]).toEqual([2, 1]), WAIT)
    expect(lobby.received.map((event) => JSON.parse(event.data))).toEqual([
      { from: 'ada', text: 'hello' },
      { from: 'linus', text: 'hi ada' },
    ])
    expect(ops.received.map((event) => JSON.parse(event.data))).toEqual([
      { from: 'grace', text: 'deploying' },
    ])

    const back = follow(`${served.base}/rooms/lobby/events`, { headers: { 'last-event-id': first.body.id! } })
    served.sources.push(back.source)
    await vi.waitFor(() => expect(back.received).toHaveLength(1), WAIT)
    expect(back.received[0]!.id).toBe(second.body.id)
  })

  it('refuses room names outside the pattern, and malformed messages', async () => {
    expect((await fetch(`${served.base}/rooms/Not%20A%20Room/events`)).status).toBe(404)
    expect((await fetch(`${served.base}/rooms/${'x'.repeat(33)}/events`)).status).toBe(404)
    expect((await say('lobby', 'ada', 5 as unknown as string)).status).toBe(400)
  })
})
