/**
 * The cluster example as a process (a primary and 2 workers on one port, history in a real Redis):
 * a publish through either worker reaches the clients of both, a client resumes on the other worker
 * with exactly what it missed, and SIGTERM to the primary stops everything with exit code 0.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { EventSource, type FetchLike } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { readEvents } from '../../../test/support/sse-clients.js'
import { publishData } from '../../shared/test/smoke.js'

const { REDIS_URL: redisUrl = 'redis://127.0.0.1:6379', CI } = process.env
const prefix = `rewind-cluster-test-${process.pid}-${Date.now().toString(36)}:`
const ENTRY = fileURLToPath(new URL('../index.js', import.meta.url))
/** Bound of every wait; generous because CI machines are small and shared. */
const WAIT = { timeout: 15_000, interval: 20 }
/** Bound of the loops that retry until the round-robin hands a connection to a given worker. */
const MAX_TRIES = 20

/** Sends one command over RESP and resolves with the first line of the reply (no client library). */
function redis(...args: string[]): Promise<string> {
  const { hostname, port } = new URL(redisUrl)
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port) || 6379 })
    const timer = setTimeout(() => socket.destroy(new Error('Redis did not answer in 2 s')), 2000)
    let reply = ''
    socket.setEncoding('utf8')
    socket.on('connect', () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`)
    })
    socket.on('data', (chunk: string) => {
      reply += chunk
      if (!reply.includes('\r\n')) return
      clearTimeout(timer)
      socket.end()
      resolve(reply.slice(0, reply.indexOf('\r\n')))
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

async function reachable(): Promise<boolean> {
  try {
    return (await redis('PING')) === '+PONG'
  } catch (error) {
    if (CI) throw new Error(`Redis is required in CI and is not reachable at ${redisUrl}`, { cause: error })
    console.warn(`\n*** SKIPPING the cluster example tests: no Redis at ${redisUrl} (set REDIS_URL) ***\n`)
    return false
  }
}

const available = await reachable()

interface Follower {
  source: EventSource
  /** The worker (`X-Worker`) of each connection, in order. */
  workers: string[]
  received: { id: string; data: string }[]
}

/** An `eventsource` client that records what it receives and which worker served it. */
function follow(url: string): Follower {
  const follower: Follower = { source: undefined as unknown as EventSource, workers: [], received: [] }
  const recordingFetch: FetchLike = async (input, init) => {
    const response = await fetch(input, init)
    follower.workers.push(response.headers.get('x-worker') ?? '?')
    return response
  }
  follower.source = new EventSource(url, { fetch: recordingFetch })
  follower.source.addEventListener('message', (event) => {
    follower.received.push({ id: event.lastEventId, data: event.data })
  })
  return follower
}

/**
 * Opens a stream with `Last-Event-ID` and reads it with eventsource-parser until `count` messages
 * have arrived. The first line of the result is the worker that served it.
 */
async function resume(base: string, lastEventId: string, count: number, avoid: string) {
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    const controller = new AbortController()
    const response = await fetch(`${base}/events`, {
      headers: { accept: 'text/event-stream', 'last-event-id': lastEventId },
      signal: controller.signal,
    })
    const worker = response.headers.get('x-worker') ?? '?'
    if (worker === avoid) {
      controller.abort()
      continue
    }
    const events = await readEvents(response, controller, count, WAIT.timeout, (event) => ({
      id: event.id ?? '',
      event: event.event ?? 'message',
      data: event.data,
    }))
    return { worker, events }
  }
  throw new Error(`no connection landed off worker ${avoid} in ${MAX_TRIES} attempts`)
}

/** Publishes `data` through `base`; the reply names the worker that took the POST. */
const publish = (base: string, data: string) => publishData<{ id: string; worker: string }>(base, data)

describe.skipIf(!available)('cluster example: 2 workers on one Redis history', () => {
  let child: ChildProcess
  let output = ''
  let base: string
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  const followers: Follower[] = []

  beforeAll(async () => {
    child = spawn(process.execPath, [ENTRY], {
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        WORKERS: '2',
        REDIS_URL: redisUrl,
        REDIS_PREFIX: prefix,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    base = await vi.waitFor(() => {
      if (child.exitCode !== null) throw new Error(`the example exited early:\n${output}`)
      const match = /2 workers at (http:\/\/127\.0\.0\.1:\d+)\//.exec(output)
      if (match === null) throw new Error(`the example printed no URL yet:\n${output}`)
      return match[1]!
    }, WAIT)
  })

  afterAll(async () => {
    for (const follower of followers) follower.source.close()
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    if (available) await redis('DEL', `${prefix}demo`)
  })

  it('delivers every event published through either worker to every client of both', async () => {
    // Round-robin hands connections to the workers in turn; open until both have clients.
    for (
      let i = 0;
      i < MAX_TRIES && (followers.length < 4 || new Set(followers.map((f) => f.workers[0])).size < 2);
      i++
    ) {
      const follower = follow(`${base}/events`)
      followers.push(follower)
      await vi.waitFor(() => expect(follower.workers).toHaveLength(1), WAIT)
    }
    expect(new Set(followers.map((f) => f.workers[0]))).toEqual(new Set(['1', '2']))
    // The stream is open once its headers are in; give the workers' tails their first read.
    await new Promise((resolve) => setTimeout(resolve, 200))

    const sent: { id: string; data: string }[] = []
    const publishers = new Map<string, number>()
    for (
      let i = 0;
      i < MAX_TRIES && ((publishers.get('1') ?? 0) < 2 || (publishers.get('2') ?? 0) < 2);
      i++
    ) {
      const data = `event ${i}`
      const { id, worker } = await publish(base, data)
      publishers.set(worker, (publishers.get(worker) ?? 0) + 1)
      sent.push({ id, data })
    }
    expect(publishers.get('1')).toBeGreaterThanOrEqual(2)
    expect(publishers.get('2')).toBeGreaterThanOrEqual(2)

    for (const follower of followers) {
      await vi.waitFor(() => expect(follower.received).toHaveLength(sent.length), WAIT)
      expect(follower.received).toEqual(sent)
    }
  })

  it('resumes a client on the other worker with exactly the events it missed', async () => {
    const follower = followers[0]!
    const worker = follower.workers[0]!
    const lastSeen = follower.received.at(-1)!.id
    follower.source.close()
    const missed = [
      await publish(base, 'missed 1'),
      await publish(base, 'missed 2'),
      await publish(base, 'missed 3'),
    ]

    const resumed = await resume(base, lastSeen, missed.length, worker)
    expect(resumed.worker).not.toBe(worker)
    expect(resumed.events).toEqual(
      missed.map(({ id }, i) => ({ id, event: 'message', data: `missed ${i + 1}` })),
    )
  })

  it('stops every worker on SIGTERM and exits with code 0', async () => {
    child.kill('SIGTERM')
    const { code, signal } = await exited
    expect({ code, signal }, output).toEqual({ code: 0, signal: null })
    // Each worker ended its streams on the way out.
    expect(output.match(/SIGTERM: ending the event streams/g)).toHaveLength(2)
    const open = followers.slice(1)
    await vi.waitFor(() => {
      for (const follower of open) expect(follower.source.readyState).not.toBe(EventSource.OPEN)
    }, WAIT)
  })
})
