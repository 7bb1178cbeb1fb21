/**
 * The client in headless Chromium, bundled with esbuild, against @rewind/express: a page reloaded
 * mid-stream (again and again, while events keep coming) resumes from the position it saved in
 * sessionStorage, with nothing lost or repeated; a POST answer survives a reload too.
 *
 * Needs Chromium at /usr/bin/chromium (scripts/provision.sh installs it). Without it the suite is
 * skipped with a warning, unless CI is set: then it fails.
 */
import { existsSync } from 'node:fs'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { type SseMiddleware, sse } from '@rewind/express'
import { build } from 'esbuild'
import express from 'express'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../../scripts/chromium.js'
import { listenApp } from './support/server.js'
import { sleep, waitUntil } from './support/wait.js'

const CHROMIUM = CHROMIUM_PATH
const WAIT_MS = 20_000
const RELOADS = 3

const haveChromium = existsSync(CHROMIUM)
const { CI } = process.env
const runBrowser = haveChromium || Boolean(CI)
if (!runBrowser) {
  console.warn(
    `[client] browser tests skipped: no Chromium at ${CHROMIUM} (run scripts/provision.sh to install it)`,
  )
}

/**
 * The page's script: opens the stream given in the page's URL and appends each event it receives
 * to a list in sessionStorage, so the list outlives reloads and the test can read it.
 */
const PAGE_SCRIPT = `
import { createEventSource } from './src/index.ts'

const params = new URLSearchParams(location.search)
const post = params.get('post')
const seen = () => JSON.parse(sessionStorage.getItem('seen') ?? '[]')
const note = (entry) => sessionStorage.setItem('seen', JSON.stringify([...seen(), entry]))
const source = createEventSource(post ? '/answers' : '/events', {
  storageKey: 'position',
  headers: () => ({ 'x-page-load': String(performance.timeOrigin) }),
  // A reloaded page runs this again: the client then resumes the answer by GET instead of posting.
  ...(post ? { method: 'POST', body: post } : {}),
})
source.addEventListener('message', (event) => note(event.id))
source.addEventListener('token', (event) => note(event.data))
source.addEventListener('end', (event) => note('end ' + event.reason))
source.addEventListener('open', () => (document.body.dataset.state = 'open'))
window.source = source
`

let bundle = ''

interface Connection {
  method: string
  path: string
  lastEventId: string | undefined
  pageLoad: string | undefined
  socket: Socket
}

function app(): { app: express.Express; events: SseMiddleware<string>; connections: Connection[] } {
  const events = sse({ retry: 50 })
  onTestFinished(() => events.close())
  const connections: Connection[] = []
  const server = express()
  server.get('/', (_req, res) => {
    res
      .type('html')
      .send('<!doctype html><title>client</title><script type="module" src="/page.js"></script>')
  })
  server.get('/page.js', (_req, res) => res.type('js').send(bundle))
  server.get('/favicon.ico', (_req, res) => res.status(204).end())
  server.use((req, _res, next) => {
    if (req.path.startsWith('/events') || req.path.startsWith('/answers')) {
      connections.push({
        method: req.method,
        path: req.path,
        lastEventId: req.get('last-event-id'),
        pageLoad: req.get('x-page-load'),
        socket: req.socket,
      })
    }
    next()
  })
  server.use(events)
  server.get('/events', events.stream('news'))
  return { app: server, events, connections }
}

/** The page's sessionStorage, as the functions run in the page see it (this file has no DOM types). */
interface PageGlobals {
  sessionStorage: { getItem(key: string): string | null }
}

const seenOn = (page: Page): Promise<string[]> =>
  page.evaluate(() =>
    JSON.parse((globalThis as unknown as PageGlobals).sessionStorage.getItem('seen') ?? '[]'),
  )

const savedOn = (page: Page, key: string): Promise<string | null> =>
  page.evaluate((name) => (globalThis as unknown as PageGlobals).sessionStorage.getItem(name), key)

/** Resolves once the page's source has opened (the body is empty, so it is attached, not visible). */
async function opened(page: Page): Promise<void> {
  await page.waitForSelector('body[data-state="open"]', { state: 'attached' })
}

async function seenAtLeast(page: Page, count: number, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while ((await seenOn(page)).length < count) {
    if (Date.now() > deadline)
      throw new Error(`still waiting for ${what}; seen: ${JSON.stringify(await seenOn(page))}`)
    await sleep(20)
  }
}

describe.skipIf(!runBrowser)('in Chromium', () => {
  let browser: Browser

  beforeAll(async () => {
    if (!haveChromium) {
      throw new Error(`CI is set but there is no Chromium at ${CHROMIUM}: run scripts/provision.sh first`)
    }
    const result = await build({
      stdin: {
        contents: PAGE_SCRIPT,
        resolveDir: fileURLToPath(new URL('..', import.meta.url)),
        loader: 'ts',
      },
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
    })
    bundle = result.outputFiles[0]!.text
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], timeout: WAIT_MS })
  })

  afterAll(async () => {
    await browser?.close()
  })

  async function open(url: string): Promise<Page> {
    const context = await browser.newContext()
    onTestFinished(() => context.close())
    context.setDefaultTimeout(WAIT_MS)
    const page = await context.newPage()
    page.on('pageerror', (error) => console.error(`[client] page error: ${error.message}`))
    await page.goto(url)
    return page
  }

  it('resumes after each reload from the position in sessionStorage, with nothing lost or repeated', async () => {
    const { app: server, events, connections } = app()
    const listening = await listenApp(server)
    const page = await open(listening.url('/'))
    await opened(page)

    const published: string[] = []
    let publishing = true
    const publisher = (async () => {
      while (publishing) {
        published.push(events.publish('news', { data: `event ${published.length}` }))
        await sleep(5)
      }
    })()
    try {
      for (let reload = 0; reload < RELOADS; reload++) {
        const count = published.length + 10
        await waitUntil(() => published.length >= count, 'publishing', WAIT_MS)
        // Reload while events keep being published: the old page stops mid-stream.
        await page.reload()
        await opened(page)
      }
      await sleep(50)
    } finally {
      publishing = false
      await publisher
    }

    await seenAtLeast(page, published.length, 'every event')
    await sleep(50)
    expect(await seenOn(page)).toEqual(published)

    // One request per page load; each after a reload carried the position saved by the page before.
    const streams = connections.filter((connection) => connection.path === '/events')
    expect(streams).toHaveLength(RELOADS + 1)
    expect(new Set(streams.map((connection) => connection.pageLoad)).size).toBe(RELOADS + 1)
    for (const connection of streams.slice(1)) {
      expect(connection.lastEventId).toBeDefined()
      expect(published).toContain(connection.lastEventId)
    }
    console.info(`[client] Chromium: ${published.length} events across ${RELOADS} reloads, each once`)
  }, 60_000)

  it('continues a POST answer after a reload by GET to its Location, and forgets the position at its end', async () => {
    const { app: server, events, connections } = app()
    const tokens = Array.from({ length: 12 }, (_, n) => `t${n}`)
    let next = 0
    server.post('/answers', (_req, res) => {
      res.location('/answers/a1')
      res.sse('answer:a1')
    })
    server.get('/answers/:id', (req, res) => res.sse(`answer:${req.params.id}`))
    const listening = await listenApp(server)
    const page = await open(listening.url('/?post=a1'))
    await opened(page)

    const publishTokens = async (count: number) => {
      for (let n = 0; n < count; n++) {
        events.publish('answer:a1', { event: 'token', data: tokens[next++]! })
        await sleep(5)
      }
    }
    await publishTokens(5)
    await seenAtLeast(page, 5, 'five tokens')
    expect(await savedOn(page, 'position:url')).toBe(listening.url('/answers/a1'))
    await page.reload()
    await opened(page)
    await publishTokens(tokens.length - 5)
    events.publish('answer:a1', { event: 'rewind-end', data: 'done' })

    await seenAtLeast(page, tokens.length + 1, 'every token and the end')
    expect(await seenOn(page)).toEqual([...tokens, 'end done'])
    expect(await savedOn(page, 'position')).toBeNull()
    expect(await savedOn(page, 'position:url')).toBeNull()
    // The prompt was posted once; the reloaded page resumed by GET from the saved position.
    expect(connections.map((connection) => [connection.method, connection.path])).toEqual([
      ['POST', '/answers'],
      ['GET', '/answers/a1'],
    ])
    expect(connections[1]!.lastEventId).toBeDefined()
  }, 60_000)
})
