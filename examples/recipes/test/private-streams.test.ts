import { describe, expect, it, vi } from 'vitest'
import { createApp, notify } from '../private-streams.js'
import { follow, serveRecipe, WAIT } from './follow.js'

const TOKENS: Record<string, string> = { 'alice-token': 'alice', 'bob-token': 'bob' }

describe('recipe: per-user private streams with auth', () => {
  const app = createApp({ authenticate: (token) => TOKENS[token] })
  const served = serveRecipe(app, app.locals.events)

  it('refuses a stream without valid credentials, with 401', async () => {
    for (const headers of [
      {},
      { authorization: 'Bearer nope' },
      { cookie: 'sid=nope' },
      { authorization: 'alice-token' },
    ]) {
      const response = await fetch(`${served.base}/me/events`, { headers })
      expect(response.status, JSON.stringify(headers)).toBe(401)
      expect(await response.json()).toEqual({ error: 'sign in first' })
    }
  })

  it('gives each user their own events: by bearer token (a fetch-based client) or by cookie', async () => {
    const alice = follow(`${served.base}/me/events`, {
      headers: { authorization: 'Bearer alice-token' },
      names: ['notice'],
    })
    // Asking for someone else's stream in the URL changes nothing: the stream comes from the cookie.
    const bob = follow(`${served.base}/me/events?user=alice`, {
      headers: { cookie: 'theme=dark; sid=bob-token' },
      names: ['notice'],
    })
    served.sources.push(alice.source, bob.source)
    await Promise.all([alice.opened, bob.opened])

    const forAlice = [notify(app, 'alice', { event: 'notice', data: 'invoice paid' })]
    const forBob = [notify(app, 'bob', { event: 'notice', data: 'new follower' })]
    forAlice.push(notify(app, 'alice', { event: 'notice', data: { unread: 3 } }))

    await vi.waitFor(() => expect([alice.received.length, bob.received.length]).toEqual([2, 1]), WAIT)
    expect(alice.received).toEqual([
      { event: 'notice', id: forAlice[0], data: 'invoice paid' },
      { event: 'notice', id: forAlice[1], data: '{"unread":3}' },
    ])
    expect(bob.received).toEqual([{ event: 'notice', id: forBob[0], data: 'new follower' }])
    alice.source.close()

    // Alice's phone was away: it resumes her stream from the last id it had, and gets what followed.
    const missed = notify(app, 'alice', { event: 'notice', data: 'while you were away' })
    const phone = follow(`${served.base}/me/events`, {
      headers: { authorization: 'Bearer alice-token', 'last-event-id': forAlice[0]! },
      names: ['notice'],
    })
    served.sources.push(phone.source)
    await vi.waitFor(() => expect(phone.received).toHaveLength(2), WAIT)
    expect(phone.received.map((event) => event.id)).toEqual([forAlice[1], missed])
    expect(bob.received).toHaveLength(1)
  })
})
