/// <reference lib="dom" />
// The callbacks given to page.evaluate and $$eval run in the page, so they use the DOM's names.
/**
 * The ai-chat example as a user meets it, in real Chromium: the page (useChat, bundled) sends a
 * prompt, is reloaded mid-answer, and converges on the whole answer in the same message, with no
 * second POST; the same with the SDK's unmodified DefaultChatTransport (`useChat({ resume: true })`);
 * on Express and on Fastify. Then the process contract: SIGTERM ends the streams with an `error`
 * chunk and `[DONE]` and exits; with REDIS_URL, an instance killed mid-answer is told to readers on
 * another instance within the lease bound.
 *
 * Needs Chromium at /usr/bin/chromium (scripts/provision.sh installs it) and, for the last case,
 * Redis at REDIS_URL (default redis://127.0.0.1:6379). Without them those cases are skipped with a
 * warning, unless CI is set: then they fail.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cuttingProxy } from '../../../packages/ai-sdk/test/helpers/chat-app.js'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../../scripts/chromium.js'
import { seededRandom } from '../../../test/support/random.js'
import { redisAnswers, unavailable } from '../../../test/support/services.js'
import { createExpressApp, createFastifyApp } from '../app.js'
import { buildPage, PAGE_SCRIPT_AI7 } from '../build.js'

const env = process.env as { CI?: string; REDIS_URL?: string; AI_CHAT_SDK?: string; AI_CHAT_SEED?: string }
/** `ai7`: the page bundles `ai` 7 and `@ai-sdk/react` 4, and the app runs on `ai` 7 (ai7.test.ts). */
const SDK = env.AI_CHAT_SDK === 'ai7' ? 'ai7' : 'ai'
const PAGE = SDK === 'ai7' ? { pageScript: PAGE_SCRIPT_AI7 } : {}
const REDIS_URL = env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const INDEX = fileURLToPath(new URL('../index.js', import.meta.url))
const TOKENS = 60
const INTERVAL = 25
const WORDS = Array.from({ length: TOKENS }, (_, i) => `w${i}`).join(' ')
const WAIT = { timeout: 20_000 }

const haveChromium =
  existsSync(CHROMIUM_PATH) || unavailable(`ai-chat example: no Chromium at ${CHROMIUM_PATH}`)

interface Running {
  url: string
  close(): Promise<void>
}

async function express(settings: Parameters<typeof createExpressApp>[0]): Promise<Running> {
  const app = createExpressApp(settings)
  const server: Server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => (app.locals as { close: (server: Server) => Promise<void> }).close(server),
  }
}

async function fastify(settings: Parameters<typeof createFastifyApp>[0]): Promise<Running> {
  const app = await createFastifyApp(settings)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url, close: () => app.close() }
}

/** The messages the page shows: role, id and text of each. */
function shown(page: Page) {
  return page.$$eval('#messages li', (items) =>
    items.map((item) => ({
      role: item.getAttribute('data-role'),
      id: item.getAttribute('data-id'),
      text: item.textContent,
    })),
  )
}

/** A POST body as DefaultChatTransport sends it. */
function chatBody(chatId: string): string {
  return JSON.stringify({
    id: chatId,
    messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'hi' }] }],
  })
}

/** The `data:` values of an event-stream body, in order. */
function datas(body: string): string[] {
  return body
    .split('\n\n')
    .filter((frame) => frame.includes('data: '))
    .map((frame) => frame.slice(frame.indexOf('data: ') + 6))
}

/** Spawns the example's process; resolves with its URL once it listens. */
async function spawnExample(extra: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [INDEX], {
    env: { ...process.env, PORT: '0', MOCK_TOKENS: '400', MOCK_INTERVAL: '20', ...extra },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (data: Buffer) => {
      out += data.toString()
      const match = /listening on (http:\/\/\S+)/.exec(out)
      if (match) resolve(match[1]!)
    })
    child.once('exit', (code) => reject(new Error(`the example exited with ${code}: ${out}`)))
  })
  return { child, url }
}

describe.runIf(haveChromium)(`the page in Chromium: reload mid-answer (${SDK})`, () => {
  let browser: Browser

  beforeAll(async () => {
    await buildPage({ sdk: SDK })
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] })
  })
  afterAll(async () => {
    await browser?.close()
  })

  const cases = [
    { framework: 'Express', start: express, transport: 'rewind' },
    { framework: 'Fastify', start: fastify, transport: 'rewind' },
    { framework: 'Express', start: express, transport: 'default' },
  ] as const

  for (const { framework, start, transport } of cases) {
    it(`converges on the whole answer in the same message, no second POST (${framework}, ${transport} transport)`, async () => {
      const server = await start({ tokens: TOKENS, interval: INTERVAL, ...PAGE })
      const context = await browser.newContext()
      try {
        const page = await context.newPage()
        const requests: string[] = []
        page.on('request', (request) => {
          if (request.url().includes('/api/chat'))
            requests.push(`${request.method()} ${new URL(request.url()).pathname}`)
        })
        await page.goto(`${server.url}/${transport === 'default' ? '?transport=default' : ''}`)
        await page.waitForFunction(
          () => document.querySelector('#status')?.textContent === 'ready',
          null,
          WAIT,
        )
        await page.fill('#prompt', 'hello')
        await page.click('button[type=submit]')
        // Mid-answer: some words shown, most still to come.
        await page.waitForFunction(
          () =>
            (document.querySelector('#messages li[data-role=assistant]')?.textContent ?? '').split(' ')
              .length >= 8,
          null,
          WAIT,
        )
        const before = await shown(page)
        expect(before.at(-1)!.text!.split(' ').length).toBeLessThan(TOKENS)
        await page.reload()
        await page.waitForFunction(
          (words) => document.querySelector('#messages li[data-role=assistant]')?.textContent === words,
          WORDS,
          WAIT,
        )
        await page.waitForFunction(
          () => document.querySelector('#status')?.textContent === 'ready',
          null,
          WAIT,
        )
        const after = await shown(page)
        expect(after.map((message) => message.role)).toEqual(['user', 'assistant'])
        expect(after[1]).toEqual({ role: 'assistant', id: before.at(-1)!.id, text: WORDS })
        expect(await page.$('#error')).toBeNull()
        expect(requests.filter((request) => request.startsWith('POST'))).toEqual(['POST /api/chat'])
        // One resume per page load (the first finds nothing to resume: 204).
        expect(requests.filter((request) => request.startsWith('GET'))).toHaveLength(2)
        // Ended: a resume finds nothing, and a new reload adds nothing.
        const chatId = await page.textContent('#chat')
        expect((await fetch(`${server.url}/api/chat/${chatId}/stream`)).status).toBe(204)
        await page.reload()
        await page.waitForFunction(
          () => document.querySelector('#status')?.textContent === 'ready',
          null,
          WAIT,
        )
        expect(await shown(page)).toEqual(after)
      } finally {
        await context.close()
        await server.close()
      }
    })
  }
})

describe(`the SDK the app runs on (${SDK})`, () => {
  it('is the major this run is for', async () => {
    // `StreamProviderError` is new in ai 7.
    expect('StreamProviderError' in (await import('ai'))).toBe(SDK === 'ai7')
  })
})

describe.runIf(haveChromium)(`the page in Chromium: drops mid-answer (${SDK})`, () => {
  // One retry: this failed once in a full CI run (the answer never shown whole within 20 s) and not
  // in 80 runs since, loaded or not. A failure prints its seed and the page's log (below), so the
  // first attempt's failure stays in the output even when the retry passes.
  it('converges on the whole answer though every event stream is cut within 1,500 bytes, one POST', {
    retry: 1,
  }, async () => {
    await buildPage({ sdk: SDK })
    // Seeded, so a failure names the cuts it met (the seed is in the message; AI_CHAT_SEED replays it).
    const seed = Number(env.AI_CHAT_SEED ?? Math.floor(Math.random() * 2 ** 31))
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] })
    // A short reconnection delay, so the drops do not take long.
    const server = await express({ tokens: TOKENS, interval: INTERVAL, retry: 50, ...PAGE })
    const proxy = await cuttingProxy(server.url, 1500, seededRandom(seed), Number.POSITIVE_INFINITY, true)
    // What the page did, for the message of a failure: requests with their outcome, and its console.
    const log: string[] = []
    const started = Date.now()
    const note = (line: string) => log.push(`${String(Date.now() - started).padStart(6)} ms ${line}`)
    try {
      const page = await browser.newPage()
      const posts: string[] = []
      page.on('request', (request) => {
        const path = new URL(request.url()).pathname
        if (request.method() === 'POST') posts.push(path)
        note(`${request.method()} ${path} last-event-id=${request.headers()['last-event-id'] ?? '-'}`)
      })
      page.on('response', (response) => note(`  ${response.status()} ${new URL(response.url()).pathname}`))
      page.on('requestfailed', (request) =>
        note(`  failed ${new URL(request.url()).pathname}: ${request.failure()?.errorText}`),
      )
      page.on('console', (message) => note(`console.${message.type()}: ${message.text()}`))
      page.on('pageerror', (error) => note(`pageerror: ${error.message}`))
      const until = async (what: string, check: () => Promise<unknown>) => {
        try {
          await check()
        } catch (error) {
          const state = await shown(page).catch(() => [])
          const status = await page.textContent('#status').catch(() => null)
          const shownError = await page.textContent('#error').catch(() => null)
          const report = [
            `${what}: ${(error as Error).message.split('\n')[0]}`,
            `seed ${seed} (AI_CHAT_SEED=${seed} replays the cuts), ${proxy.cuts} cuts, status ${status}, error ${shownError}`,
            `shown: ${JSON.stringify(state)}`,
            ...log,
          ].join('\n')
          console.warn(`ai-chat drops (${SDK}) failed:\n${report}`)
          throw new Error(report)
        }
      }
      await page.goto(`${proxy.url}/`)
      await until('the page got ready', () =>
        page.waitForFunction(() => document.querySelector('#status')?.textContent === 'ready', null, WAIT),
      )
      await page.fill('#prompt', 'hello')
      await page.click('button[type=submit]')
      await until('the whole answer shown', () =>
        page.waitForFunction(
          (words) => document.querySelector('#messages li[data-role=assistant]')?.textContent === words,
          WORDS,
          WAIT,
        ),
      )
      await until('ready after the answer', () =>
        page.waitForFunction(() => document.querySelector('#status')?.textContent === 'ready', null, WAIT),
      )
      expect((await shown(page)).map((message) => message.role)).toEqual(['user', 'assistant'])
      expect(await page.$('#error')).toBeNull()
      expect(posts).toEqual(['/api/chat'])
      expect(proxy.cuts).toBeGreaterThanOrEqual(2)
    } finally {
      await browser.close()
      await proxy.close()
      await server.close()
    }
  })
})

// The process contract does not depend on the SDK's major: checked once, on ai 6.
describe.runIf(SDK === 'ai')('the process', () => {
  it('ends its streams on SIGTERM with an error chunk and [DONE], then exits with 0', async () => {
    await buildPage()
    const { child, url } = await spawnExample({})
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    try {
      const response = await fetch(`${url}/api/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chatBody('sigterm'),
      })
      const reader = response.body!.getReader()
      let body = new TextDecoder().decode((await reader.read()).value)
      child.kill('SIGTERM')
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        body += new TextDecoder().decode(value)
      }
      expect(datas(body).slice(-2)).toEqual([
        JSON.stringify({ type: 'error', errorText: 'the answer failed before it finished' }),
        '[DONE]',
      ])
      expect(await exited).toBe(0)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('tells readers on another instance that the producing one died, within the lease bound', async () => {
    if (!(await redisAnswers(REDIS_URL, 'ai-chat example'))) return
    await buildPage()
    const prefix = `test:ai-chat:${process.pid}:${Date.now()}:`
    const lease = 1000
    const { child, url } = await spawnExample({
      REDIS_URL,
      REDIS_PREFIX: prefix,
      RESPONSE_LEASE: String(lease),
    })
    const b = await fastify({ tokens: TOKENS, interval: INTERVAL, redis: { url: REDIS_URL, prefix }, lease })
    try {
      const response = await fetch(`${url}/api/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chatBody('killed'),
      })
      await response.body!.getReader().read()
      const onB = await fetch(`${b.url}/api/chat/killed/stream`)
      expect(onB.status).toBe(200)
      const killed = Date.now()
      child.kill('SIGKILL')
      const body = await onB.text()
      const told = Date.now() - killed
      console.log(`ai-chat: readers on B told of A's death after ${told} ms (lease ${lease} ms)`)
      expect(datas(body).slice(-2)).toEqual([
        JSON.stringify({ type: 'error', errorText: 'the answer failed before it finished' }),
        '[DONE]',
      ])
      expect(datas(body)[0]).toContain('"type":"start"')
      // The lease lapses within `lease`; B checks every lease / 2.
      expect(told).toBeLessThan(lease * 1.5 + 1000)
    } finally {
      child.kill('SIGKILL')
      await b.close()
      const redis = new Redis(REDIS_URL)
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    }
  })
})
