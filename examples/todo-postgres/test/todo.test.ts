/** The TODO example against a real Postgres: trigger → pg_notify → LISTEN → publish → EventSource. */
import { spawn } from 'node:child_process'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { EventSource } from 'eventsource'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DATABASE_URL, databaseForTests } from '../../../packages/postgres/test/helpers/database.js'
import { waitUntil } from '../../../test/support/wait.js'
import { createTodoApp } from '../index.js'

const available = (await databaseForTests('Postgres example')) !== undefined
const databaseUrl = DATABASE_URL
const schema = `todo_test_${process.pid}_${Date.now().toString(36)}`
const admin = new pg.Pool({ connectionString: databaseUrl, max: 2 })

interface Received {
  id: string
  event: string
  data: string
}

async function start(history = 1000) {
  const todo = await createTodoApp({ databaseUrl, schema, history, log: () => {} })
  const server: Server = await new Promise((resolve) => {
    const s = todo.app.listen(0, '127.0.0.1', () => resolve(s))
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { ...todo, server, url, stop: () => todo.close(server) }
}

/** Every EventSource of a test, closed after it. */
const sources: EventSource[] = []

/** A started app for `run`, stopped after it whatever the outcome, once its clients are closed. */
async function withApp(run: (app: Awaited<ReturnType<typeof start>>) => Promise<void>, history?: number) {
  const app = await start(history)
  try {
    await run(app)
  } finally {
    for (const source of sources.splice(0)) source.close()
    await app.stop()
  }
}

function follow(url: string) {
  const received: Received[] = []
  const source = new EventSource(url)
  sources.push(source)
  for (const name of ['todo', 'rewind-gap', 'resync']) {
    source.addEventListener(name, (event) =>
      received.push({ id: event.lastEventId, event: name, data: event.data }),
    )
  }
  const opened = new Promise<void>((resolve) => {
    source.onopen = () => resolve()
  })
  return { source, received, opened }
}

/**
 * Follows the app's events from `lastId` on, as a client coming back does, until `count` have come
 * (`what`) and then `quietMs` more have passed; returns what came, with the client closed.
 */
async function resumedFrom(url: string, lastId: string, count: number, what: string, quietMs = 0) {
  const again = follow(`${url}/events?lastEventId=${encodeURIComponent(lastId)}`)
  try {
    await waitUntil(() => again.received.length >= count, what)
    if (quietMs > 0) await new Promise((resolve) => setTimeout(resolve, quietMs))
    return again.received
  } finally {
    again.source.close()
  }
}

/** The event name and todo title of each event. */
const titled = (received: Received[]) => received.map((r) => [r.event, JSON.parse(r.data).title])

const post = (url: string, body: unknown) =>
  fetch(`${url}/todos`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

/** Follows the app's events while a todo titled `title` is posted, leaves, and returns its event's id. */
async function idOfPosted(url: string, title: string): Promise<string> {
  const first = follow(`${url}/events`)
  try {
    await first.opened
    await post(url, { title })
    await waitUntil(() => first.received.length === 1, 'the first todo')
    return first.received[0]!.id
  } finally {
    first.source.close()
  }
}

describe.skipIf(!available)('todo-postgres example', () => {
  beforeAll(async () => {
    await admin.query('SELECT 1')
  })
  afterEach(() => {
    for (const source of sources.splice(0)) source.close()
  })
  afterAll(async () => {
    for (const name of [schema, `rewind_${schema}`]) {
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`)
    }
    await admin.end()
  })

  it('publishes rows inserted through the app and straight into the table', async () => {
    await withApp(async (app) => {
      const client = follow(`${app.url}/events`)
      await client.opened
      const created = await post(app.url, { title: 'buy milk' })
      expect(created.status).toBe(201)
      await admin.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.todos (title) VALUES ('from psql')`)
      await waitUntil(() => client.received.length === 2, 'two todo events')
      expect(client.received.map((r) => JSON.parse(r.data).title)).toEqual(['buy milk', 'from psql'])
      const list = (await (await fetch(`${app.url}/todos`)).json()) as { title: string }[]
      expect(list.map((t) => t.title)).toEqual(expect.arrayContaining(['buy milk', 'from psql']))
    })
  })

  it('gives a client that was offline exactly the todos it missed', async () => {
    await withApp(async (app) => {
      const lastId = await idOfPosted(app.url, 'seen')
      for (const title of ['missed 1', 'missed 2', 'missed 3']) await post(app.url, { title })
      // Notifications reach the app after the INSERT commits: wait until all were published.
      await waitUntil(() => app.events.hub.stats().published === 4, 'the notifications')
      expect(titled(await resumedFrom(app.url, lastId, 3, 'three missed todos'))).toEqual([
        ['todo', 'missed 1'],
        ['todo', 'missed 2'],
        ['todo', 'missed 3'],
      ])
    })
  })

  it('keeps the history in Postgres: a client resumes exactly after the app restarts', async () => {
    const before = await start()
    let lastId: string
    try {
      lastId = await idOfPosted(before.url, 'before the restart')
      await post(before.url, { title: 'missed while away' })
      await waitUntil(() => before.events.hub.stats().published === 2, 'the notifications')
    } finally {
      await before.stop()
    }
    await withApp(async (after) => {
      expect(titled(await resumedFrom(after.url, lastId, 1, 'the missed todo'))).toEqual([
        ['todo', 'missed while away'],
      ])
    })
  })

  it('tells a client that missed more than history holds to refetch, without a partial replay', async () => {
    await withApp(async (app) => {
      const lastId = await idOfPosted(app.url, 'before')
      for (let i = 0; i < 5; i++) await post(app.url, { title: `offline ${i}` })
      await waitUntil(() => app.events.hub.stats().published === 6, 'the notifications')
      // Nothing may follow the gap signal: no partial replay.
      expect(await resumedFrom(app.url, lastId, 1, 'the gap signal', 100)).toEqual([
        { id: expect.any(String), event: 'rewind-gap', data: 'evicted' },
      ])
      const list = (await (await fetch(`${app.url}/todos`)).json()) as { title: string }[]
      expect(list.map((t) => t.title)).toEqual(expect.arrayContaining(['offline 0', 'offline 4']))
    }, 2)
  })

  it('recovers its LISTEN connection and tells clients to resync', async () => {
    await withApp(async (app) => {
      const client = follow(`${app.url}/events`)
      await client.opened
      const channel = `todos_${schema}`
      const { rows } = await admin.query(
        'SELECT pid FROM pg_stat_activity WHERE query = $1 AND pid <> pg_backend_pid()',
        [`LISTEN ${pg.escapeIdentifier(channel)}`],
      )
      expect(rows.length).toBe(1)
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid])
      await waitUntil(() => client.received.some((r) => r.event === 'resync'), 'the resync event', 10_000)
      await post(app.url, { title: 'after the reconnect' })
      await waitUntil(() => client.received.some((r) => r.event === 'todo'), 'a todo after the reconnect')
    })
  })

  it('answers bad input with 400 JSON and unknown routes with 404 JSON', async () => {
    await withApp(async (app) => {
      for (const body of [{}, { title: '' }, { title: 42 }, { title: 'x'.repeat(501) }]) {
        const res = await post(app.url, body)
        expect(res.status).toBe(400)
        expect(await res.json()).toEqual({ error: expect.any(String) })
      }
      const notJson = await fetch(`${app.url}/todos`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{nope',
      })
      expect(notJson.status).toBe(400)
      expect(notJson.headers.get('content-type')).toMatch(/json/)
      const missing = await fetch(`${app.url}/nowhere`)
      expect(missing.status).toBe(404)
      expect(await missing.json()).toEqual({ error: 'not found' })
    })
  })

  it('runs as a process and exits promptly on SIGTERM', async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('../index.js', import.meta.url))], {
      env: { ...process.env, PORT: '0', TODO_SCHEMA: schema, DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk
          const match = /http:\/\/[\d.]+:\d+/.exec(out)
          if (match) resolve(match[0])
        })
        child.once('exit', (code) => reject(new Error(`exited early with ${code}`)))
      })
      const client = follow(`${url}/events`)
      await client.opened
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const code = await Promise.race([
        exited,
        new Promise((resolve) => setTimeout(() => resolve('timeout'), 5000)),
      ])
      client.source.close()
      expect(code).toBe(0)
    } finally {
      child.kill('SIGKILL')
    }
  })
})
