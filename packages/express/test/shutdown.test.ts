/** `events.close({ server })`: every stream ends, the server closes, and the promise resolves. */
import { Agent, get } from 'node:http'
import { createHub } from '@rewind/core'
import express from 'express'
import { describe, expect, it, onTestFinished } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { openStream } from '../../../test/support/raw-client.js'
import { waitUntil, within } from '../../../test/support/wait.js'
import { RewindError } from '../src/index.js'
import { connect } from './helpers/event-source.js'
import { mountStreams, useEventsApp } from './helpers/events.js'

/** A generous guard, not a speed claim: without the shutdown, keep-alive streams hold the server forever. */
const CLOSE_GUARD_MS = 2000

async function startApp() {
  const { events, app } = useEventsApp({ retry: 50 })
  app.get('/health', (_req, res) => {
    res.json({ ok: true })
  })
  mountStreams(app, events, 20)
  return { events, ...(await listenForTest(app)) }
}

describe('shutdown', () => {
  it('with open EventSource clients, close({ server }) resolves and the clients see their streams end', async () => {
    const { events, server, url } = await startApp()
    // An ordinary request leaves an idle keep-alive connection behind, which must not hold the server.
    const agent = new Agent({ keepAlive: true })
    onTestFinished(() => agent.destroy())
    await new Promise<void>((resolve, reject) => {
      get(`${url}/health`, { agent }, (res) => {
        res.resume()
        res.on('end', resolve)
      }).on('error', reject)
    })
    await waitUntil(() => Object.keys(agent.freeSockets).length === 1, 'the keep-alive socket to go idle')
    const clients = [
      connect(`${url}/news`),
      connect(`${url}/news`),
      connect(`${url}/rooms/a`),
      connect(`${url}/ticks`),
    ]
    for (const client of clients) await client.opened()
    const raw = await openStream(`${url}/news`)
    const id = events.publish('news', { data: 'last words' })

    await within(events.close({ server }), 'events.close({ server }) to resolve', CLOSE_GUARD_MS)
    expect(server.listening).toBe(false)
    // Events published before close() are sent first, then the body ends cleanly.
    await raw.waitForEnd()
    expect(raw.events).toEqual([{ id, event: undefined, data: 'last words' }])
    for (const client of clients) await client.waitForErrors(1)
    expect(events.hub.stats()).toMatchObject({ connections: 0, subscribers: 0, streams: 0 })
  })

  it('with retry, each client is told to come back after a jittered delay before its stream ends', async () => {
    const { events, server, url } = await startApp()
    const streams = [await openStream(`${url}/news`), await openStream(`${url}/ticks`)]
    await within(events.close({ server, retry: 1000 }), 'events.close({ server, retry })', CLOSE_GUARD_MS)
    for (const stream of streams) {
      await stream.waitForEnd()
      const hint = stream.retries.at(-1)
      expect(hint).toBeGreaterThanOrEqual(500)
      expect(hint).toBeLessThanOrEqual(1500)
    }
  })

  it('afterwards, publish throws ERR_CLOSED and close() can be called again', async () => {
    const { events, server } = await startApp()
    await events.close({ server })
    expect(() => events.publish('news', { data: 'late' })).toThrow(RewindError)
    try {
      events.publish('news', { data: 'late' })
    } catch (error) {
      expect((error as RewindError).code).toBe('ERR_CLOSED')
    }
    await within(events.close({ server }), 'a second close() to resolve', CLOSE_GUARD_MS)
  })

  it('a retry no timer can take rejects close() with ERR_INVALID_ARGUMENT before anything closes', async () => {
    const { events, server, url } = await startApp()
    const stream = await openStream(`${url}/news`)
    const error = await events.close({ server, retry: 2 ** 31 }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(RewindError)
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'retry' })
    expect((error as RewindError).message).toContain('retry must be at most 2147483647 ms (MAX_TIMER_DELAY')
    // Nothing was closed: the stream still gets events, and a valid close() still works.
    events.publish('news', { data: 'still open' })
    expect((await stream.waitForEvents(1)).map((event) => event.data)).toEqual(['still open'])
    await within(events.close({ server }), 'close() after the refused one', CLOSE_GUARD_MS)
    await stream.waitForEnd()
  })

  it('close() without a server ends the streams and leaves the server to the app', async () => {
    const { events, server, url } = await startApp()
    const stream = await openStream(`${url}/news`)
    await within(events.close(), 'events.close() to resolve', CLOSE_GUARD_MS)
    await stream.waitForEnd()
    expect(server.listening).toBe(true)
  })

  it("a given hub is the caller's: close() ends only this middleware's streams and leaves the hub open", async () => {
    const hub = createHub({ heartbeatInterval: 0 })
    onTestFinished(() => hub.close())
    const { events, app } = useEventsApp({ hub })
    app.get('/news', events.handler('news'))
    const other = express()
    other.get('/news', (req, res) => hub.serve(req, res, 'news'))
    const { server, url } = await listenForTest(app)
    const elsewhere = await listenForTest(other)
    const ours = await openStream(`${url}/news`)
    const theirs = await openStream(`${elsewhere.url}/news`)

    // The retry hint goes out when a hub closes: only the hub's owner can send it.
    await expect(events.close({ server, retry: 1000 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'retry',
    })
    await within(events.close({ server }), 'events.close({ server }) with a given hub', CLOSE_GUARD_MS)
    await ours.waitForEnd()
    expect(server.listening).toBe(false)
    // The other app's stream and the hub itself are untouched.
    expect(hub.closed).toBe(false)
    const id = hub.publish('news', { data: 'still serving' })
    expect(await theirs.waitForEvents(1)).toEqual([{ id, event: undefined, data: 'still serving' }])
  })

  it('a hub the middleware created is closed by close()', async () => {
    const { events, server } = await startApp()
    await within(events.close({ server }), 'events.close({ server })', CLOSE_GUARD_MS)
    expect(events.hub.closed).toBe(true)
  })
})
