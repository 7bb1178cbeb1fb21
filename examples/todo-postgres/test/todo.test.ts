/** The TODO example against a real Postgres: trigger → pg_notify → LISTEN → publish → EventSource. */
import { spawn } from 'node:child_process'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { EventSource } from 'eventsource'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTodoApp } from '../index.js'

const { CI, DATABASE_URL } = process.env
const databaseUrl = DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    await client.end()
    return true
  } catch (error) {
    if (CI)
      throw new Error(`Postgres is required in CI and is not reachable at ${databaseUrl}`, { cause: error })
    console.warn(
      `\n*** SKIPPING the Postgres example tests: no Postgres at ${databaseUrl} (set DATABASE_URL) ***\n`,
    )
    return false
  }
}

const available = await reachable()
const schema = `todo_test_${process.pid}_${Date.now().toString(36)}`
const admin = new pg.Pool({ connectionString: databaseUrl, max: 2 })

interface Received {
  id: string
  event: string
  data: string
}

async function waitFor(predicate: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function start(history = 1000) {
  const todo = await createTodoApp({ databaseUrl, schema, history, log: () => {} })
  const server: Server = await new Promise((resolve) => {
    const s = todo.app.listen(0, '127.0.0.1', () => resolve(s))
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { ...todo, server, url, stop: () => todo.close(server) }
}

function follow(url: string) {
  const received: Received[] = []
  const source = new EventSource(url)
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

const post = (url: string, body: unknown) =>
  fetch(`${url}/todos`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

describe.skipIf(!available)('todo-postgres example', () => {
  beforeAll(async () => {
    await admin.query('SELECT 1')
  })
  afterAll(async () => {
    for (const name of [schema, `rewind_${schema}`]) {
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`)
    }
    await admin.end()
  })

  it('publishes rows inserted through the app and straight into the table', async () => {
    const app = await start()
    const client = follow(`${app.url}/events`)
    try {
      await client.opened
      const created = await post(app.url, { title: 'buy milk' })
      expect(created.status).toBe(201)
      await admin.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.todos (title) VALUES ('from psql')`)
      await waitFor(() => client.received.length === 2, 'two todo events')
      expect(client.received.map((r) => JSON.parse(r.data).title)).toEqual(['buy milk', 'from psql'])
      const list = (await (await fetch(`${app.url}/todos`)).json()) as { title: string }[]
      expect(list.map((t) => t.title)).toEqual(expect.arrayContaining(['buy milk', 'from psql']))
    } finally {
      client.source.close()
      await app.stop()
    }
  })

  it('gives a client that was offline exactly the todos it missed', async () => {
    const app = await start()
    const first = follow(`${app.url}/events`)
    try {
      await first.opened
      await post(app.url, { title: 'seen' })
      await waitFor(() => first.received.length === 1, 'the first todo')
      const lastId = first.received[0]!.id
      first.source.close()
      for (const title of ['missed 1', 'missed 2', 'missed 3']) await post(app.url, { title })
      // Notifications reach the app after the INSERT commits: wait until all were published.
      await waitFor(() => app.events.hub.stats().published === 4, 'the notifications')
      const again = follow(`${app.url}/events?lastEventId=${encodeURIComponent(lastId)}`)
      try {
        await waitFor(() => again.received.length === 3, 'three missed todos')
        expect(again.received.map((r) => [r.event, JSON.parse(r.data).title])).toEqual([
          ['todo', 'missed 1'],
          ['todo', 'missed 2'],
          ['todo', 'missed 3'],
        ])
      } finally {
        again.source.close()
      }
    } finally {
      await app.stop()
    }
  })

  it('keeps the history in Postgres: a client resumes exactly after the app restarts', async () => {
    const before = await start()
    const first = follow(`${before.url}/events`)
    let lastId: string
    try {
      await first.opened
      await post(before.url, { title: 'before the restart' })
      await waitFor(() => first.received.length === 1, 'the first todo')
      lastId = first.received[0]!.id
      first.source.close()
      await post(before.url, { title: 'missed while away' })
      await waitFor(() => before.events.hub.stats().published === 2, 'the notifications')
    } finally {
      await before.stop()
    }
    const after = await start()
    const again = follow(`${after.url}/events?lastEventId=${encodeURIComponent(lastId)}`)
    try {
      await waitFor(() => again.received.length === 1, 'the missed todo')
      expect(again.received.map((r) => [r.event, JSON.parse(r.data).title])).toEqual([
        ['todo', 'missed while away'],
      ])
    } finally {
      again.source.close()
      await after.stop()
    }
  })

  it('tells a client that missed more than history holds to refetch, without a partial replay', async () => {
    const app = await start(2)
    const first = follow(`${app.url}/events`)
    try {
      await first.opened
      await post(app.url, { title: 'before' })
      await waitFor(() => first.received.length === 1, 'the first todo')
      const lastId = first.received[0]!.id
      first.source.close()
      for (let i = 0; i < 5; i++) await post(app.url, { title: `offline ${i}` })
      await waitFor(() => app.events.hub.stats().published === 6, 'the notifications')
      const again = follow(`${app.url}/events?lastEventId=${encodeURIComponent(lastId)}`)
      try {
        await waitFor(() => again.received.length >= 1, 'the gap signal')
        await new Promise((resolve) => setTimeout(resolve, 100))
        expect(again.received).toEqual([{ id: expect.any(String), event: 'rewind-gap', data: 'evicted' }])
        const list = (await (await fetch(`${app.url}/todos`)).json()) as { title: string }[]
        expect(list.map((t) => t.title)).toEqual(expect.arrayContaining(['offline 0', 'offline 4']))
      } finally {
        again.source.close()
      }
    } finally {
      await app.stop()
    }
  })

  it('recovers its LISTEN connection and tells clients to resync', async () => {
    const app = await start()
    const client = follow(`${app.url}/events`)
    try {
      await client.opened
      const channel = `todos_${schema}`
      const { rows } = await admin.query(
        'SELECT pid FROM pg_stat_activity WHERE query = $1 AND pid <> pg_backend_pid()',
        [`LISTEN ${pg.escapeIdentifier(channel)}`],
      )
      expect(rows.length).toBe(1)
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid])
      await waitFor(() => client.received.some((r) => r.event === 'resync'), 'the resync event', 10_000)
      await post(app.url, { title: 'after the reconnect' })
      await waitFor(() => client.received.some((r) => r.event === 'todo'), 'a todo after the reconnect')
    } finally {
      client.source.close()
      await app.stop()
    }
  })

  it('answers bad input with 400 JSON and unknown routes with 404 JSON', async () => {
    const app = await start()
    try {
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
    } finally {
      await app.stop()
    }
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
