/**
 * The proxy recipe behind a real nginx, configured with nginx-sse.conf as shipped, except for its
 * ports and a read timeout of 2 s instead of 60 s (so that a quiet stream outlives it in a short
 * test). Needs nginx (scripts/provision.sh installs it); without it the tests are skipped with a
 * notice, unless CI is set: then they fail.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EventSource } from 'eventsource'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { freePort } from '../../../test/support/ports.js'
import { createApp, createProxiedServer } from '../behind-a-proxy.js'
import { follow, WAIT } from './follow.js'

const RECIPE = readFileSync(new URL('../nginx-sse.conf', import.meta.url), 'utf8')
const READ_TIMEOUT_SECONDS = 2

function findNginx(): string | undefined {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    if (existsSync(candidate)) return candidate
  }
  try {
    return execFileSync('bash', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

const NGINX = findNginx()
if (NGINX === undefined) {
  const { CI } = process.env
  if (CI) throw new Error('CI is set but there is no nginx: run scripts/provision.sh first')
  console.warn(
    '\n*** SKIPPING the reverse-proxy recipe tests: no nginx (scripts/provision.sh installs it) ***\n',
  )
}

const cleanups: (() => Promise<void> | void)[] = []
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

/** The recipe app (with `heartbeatInterval`) behind an nginx running `recipe`, edited as described above. */
async function start(heartbeatInterval: number, edit: (config: string) => string = (config) => config) {
  const app = createApp({ heartbeatInterval })
  const server: Server = createProxiedServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const appPort = (server.address() as { port: number }).port
  cleanups.push(() => app.locals.events.close({ server }))

  const dir = mkdtempSync(join(tmpdir(), 'rewind-nginx-'))
  const proxyPort = await freePort()
  const recipe = edit(RECIPE)
    .replace('server 127.0.0.1:3000;', `server 127.0.0.1:${appPort};`)
    .replace('listen 8080;', `listen 127.0.0.1:${proxyPort};`)
    .replace('proxy_read_timeout 60s;', `proxy_read_timeout ${READ_TIMEOUT_SECONDS}s;`)
  // The recipe goes in an `http` block; the rest keeps nginx in the foreground, in one process,
  // with every file in the temporary folder.
  for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, temp))
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;\nmaster_process off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\n` +
      'events { worker_connections 64; }\n' +
      `http {\n  access_log off;\n${['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
        .map((temp) => `  ${temp === 'body' ? 'client_body' : temp}_temp_path ${dir}/${temp};`)
        .join('\n')}\n${recipe}\n}\n`,
  )
  const nginx: ChildProcess = spawn(
    NGINX!,
    ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  let stderr = ''
  nginx.stderr!.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise<void>((resolve) => nginx.once('exit', () => resolve()))
  cleanups.push(async () => {
    nginx.kill('SIGTERM')
    await exited
    rmSync(dir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${proxyPort}`
  await vi.waitFor(async () => {
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${stderr}`)
    await fetch(`${base}/nothing-here`)
  }, WAIT)
  const sources: EventSource[] = []
  cleanups.push(() => {
    for (const source of sources) source.close()
  })
  return {
    base,
    follow(path: string) {
      const follower = follow(`${base}${path}`)
      sources.push(follower.source)
      return follower
    },
    async publish(data: string): Promise<string> {
      const response = await fetch(`${base}/news`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: data }),
      })
      expect(response.status).toBe(201)
      return ((await response.json()) as { id: string }).id
    },
  }
}

const quietLongerThanTheProxyAllows = () =>
  new Promise((resolve) => setTimeout(resolve, READ_TIMEOUT_SECONDS * 1000 + 1500))

describe.skipIf(NGINX === undefined)('recipe: behind nginx', () => {
  it('streams each event at once, and heartbeats keep a quiet stream open past proxy_read_timeout', async () => {
    const proxy = await start(500)
    const client = proxy.follow('/events')
    await client.opened
    const first = await proxy.publish('first')
    // Nothing else is published: the event must come through by itself, not pushed by a later one.
    await vi.waitFor(() => expect(client.received.map((event) => event.id)).toEqual([first]), WAIT)
    await quietLongerThanTheProxyAllows()
    const second = await proxy.publish('second')
    await vi.waitFor(() => expect(client.received).toHaveLength(2), WAIT)
    expect(client.received[1]!.id).toBe(second)
    // One connection all along: nginx never cut it.
    expect(client.attempts).toEqual([null])
  }, 30_000)

  it('without heartbeats nginx cuts the quiet stream, and the client resumes with nothing lost', async () => {
    const proxy = await start(0)
    const client = proxy.follow('/events')
    await client.opened
    const first = await proxy.publish('first')
    await vi.waitFor(() => expect(client.received).toHaveLength(1), WAIT)
    await quietLongerThanTheProxyAllows()
    // Cut by nginx after READ_TIMEOUT_SECONDS; the client came back with its Last-Event-ID.
    await vi.waitFor(() => expect(client.attempts.length).toBeGreaterThanOrEqual(2), WAIT)
    expect(client.attempts[1]).toBe(first)
    const second = await proxy.publish('second')
    await vi.waitFor(() => expect(client.received).toHaveLength(2), WAIT)
    expect(client.received.map((event) => event.id)).toEqual([first, second])
  }, 30_000)
})
