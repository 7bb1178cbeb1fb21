/**
 * The route handlers built with `next build` and served by `next start`, as they run in production:
 * the feed resumes, events arrive one by one (Next's compression must not buffer them), answers end
 * with 204 after their end and 404 when unknown, a disconnect is cleaned up, and `maxDuration` ends
 * each stream so a real client resumes without a gap.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '../../../packages/express/test/helpers/event-source.js'
import { freePort } from '../../../test/support/ports.js'
import { openStream } from '../../../test/support/raw-client.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'

const APP = fileURLToPath(new URL('..', import.meta.url))
const NEXT = `${APP}node_modules/.bin/next`

interface Server {
  base: string
  child: ChildProcess
}

const servers: Server[] = []

async function start(env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort()
  const child = spawn(NEXT, ['start', '-H', '127.0.0.1', '-p', String(port)], {
    cwd: APP,
    env: { ...process.env, NODE_ENV: 'production', NEXT_TELEMETRY_DISABLED: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk))
  const server = { base: `http://127.0.0.1:${port}`, child }
  servers.push(server)
  await waitUntil(
    () => /Ready in|started server/i.test(output) || child.exitCode !== null,
    'next start',
    30_000,
  )
  if (child.exitCode !== null) throw new Error(`next start exited: ${output}`)
  return server
}

let server: Server
let buildSeconds = 0

beforeAll(async () => {
  const started = Date.now()
  // The build is CPU-heavy: niced, so it slows the other test files less.
  await promisify(execFile)('nice', ['-n', '10', NEXT, 'build'], {
    cwd: APP,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
  })
  buildSeconds = (Date.now() - started) / 1000
  server = await start()
}, 240_000)

afterAll(async () => {
  for (const { child } of servers) {
    if (child.exitCode !== null) continue
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
})

const post = async (base: string, path: string, body: unknown) => {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as { id?: string; error?: string } }
}

describe('a Next.js route handler under next start', () => {
  it('builds', () => {
    console.log(`next build: ${buildSeconds.toFixed(1)} s`)
    expect(buildSeconds).toBeGreaterThan(0)
  })

  it('streams each event as it is published, uncompressed, with the event-stream headers', async () => {
    const stream = await openStream(`${server.base}/events`, { 'accept-encoding': 'gzip, deflate, br' })
    expect(stream.status).toBe(200)
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(stream.headers['cache-control']).toContain('no-transform')
    expect(stream.headers['x-accel-buffering']).toBe('no')
    expect(stream.headers['content-encoding']).toBeUndefined()
    for (let i = 0; i < 3; i++) {
      const published = Date.now()
      const { status, body } = await post(server.base, '/news', { data: `n${i}` })
      expect(status).toBe(201)
      const [event] = (await stream.waitForEvents(i + 1)).slice(i)
      expect(event).toMatchObject({ id: body.id, data: `n${i}` })
      // Each event arrives on its own, not held back until later ones (or the end) fill a buffer.
      expect(Date.now() - published).toBeLessThan(1000)
      await sleep(100)
    }
  })

  it('answers bad input with 400 JSON', async () => {
    expect(await post(server.base, '/news', { nope: 1 })).toEqual({
      status: 400,
      body: { error: expect.any(String) },
    })
  })

  it('resumes after Last-Event-ID with exactly the missed events', async () => {
    const { body: first } = await post(server.base, '/news', { data: 'r0' })
    const missed = []
    for (const data of ['r1', 'r2']) missed.push((await post(server.base, '/news', { data })).body.id)
    const stream = await openStream(`${server.base}/events`, { 'last-event-id': String(first.id) })
    expect((await stream.waitForEvents(2)).map((event) => event.id)).toEqual(missed)
  })

  it('serves an answer to its end, then 204, and 404 for an unknown id', async () => {
    const { status, body } = await post(server.base, '/responses', { words: ['a', 'b', 'c'] })
    expect(status).toBe(201)
    const stream = await openStream(`${server.base}/responses/${body.id}`)
    await stream.waitForEnd()
    expect(stream.events.map((event) => event.data)).toEqual(['a', 'b', 'c', 'done'])
    const end = stream.events.at(-1)!
    const again = await fetch(`${server.base}/responses/${body.id}`, {
      headers: { 'last-event-id': end.id! },
    })
    expect(again.status).toBe(204)
    expect((await fetch(`${server.base}/responses/unknown`)).status).toBe(404)
  })

  it('cleans up a client that disconnects within a second', async () => {
    const stats = async () => (await (await fetch(`${server.base}/stats`)).json()) as { connections: number }
    const stream = await openStream(`${server.base}/events`)
    await waitUntil(() => stream.text.includes('id: '), 'the opening position')
    let connections = (await stats()).connections
    expect(connections).toBeGreaterThanOrEqual(1)
    const before = connections
    stream.close()
    const deadline = Date.now() + 1000
    while (connections >= before && Date.now() < deadline) {
      await sleep(20)
      connections = (await stats()).connections
    }
    expect(connections).toBe(before - 1)
  })

  it('ends streams before maxDuration, and a real client resumes without a gap', async () => {
    const limited = await start({ MAX_DURATION: '2600' })
    const client = connect(`${limited.base}/events`)
    await client.opened()
    const ids: string[] = []
    // 1.6 s of events over streams that end every 0.6 s.
    for (let i = 0; i < 8; i++) {
      ids.push(String((await post(limited.base, '/news', { data: String(i) })).body.id))
      await sleep(200)
    }
    const received = await client.take(8, 5000)
    expect(received.map((event) => event.lastEventId)).toEqual(ids)
    expect(client.opens).toBeGreaterThanOrEqual(2)
  })
})
