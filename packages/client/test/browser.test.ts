/**
 * The client in headless Chromium, bundled with esbuild, against @rewind/express: a page reloaded
 * mid-stream (again and again, while events keep coming) resumes from the position it saved in
 * sessionStorage, with nothing lost or repeated; a POST answer survives a reload too, even one before
 * its first token, and an answer that expired while the tab was away is forgotten.
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
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { listenApp } from './support/server.js'

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
// Only an error that stops the source: a reconnection is not part of what the page saw.
source.addEventListener('error', (event) => {
  if (source.readyState === source.CLOSED) note('stopped ' + event.error.status)
})
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
  server.get('/events', events.handler('news'))
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

  /** A promise the test resolves; resolved anyway when the test ends, so no producer waits past it. */
  function gate(): { opened: Promise<void>; open: () => void } {
    let open!: () => void
    const opened = new Promise<void>((resolve) => (open = resolve))
    onTestFinished(() => open())
    return { opened, open }
  }

  /** POST /answers starts a Rewind answer and streams it with its Location; GET /answers/:id resumes it. */
  function answers(
    server: express.Express,
    events: SseMiddleware<string>,
    producer: (answer: number) => AsyncIterable<{ event: 'token'; data: string }>,
    ttl?: number,
  ): { ids: string[]; done: Promise<string>[] } {
    const ids: string[] = []
    const done: Promise<string>[] = []
    server.post('/answers', async (_req, res) => {
      const started = await events.responses.start(producer(ids.length), ttl === undefined ? {} : { ttl })
      ids.push(started.id)
      done.push(started.done)
      res.location(`/answers/${started.id}`)
      res.sse({ response: started.id })
    })
    server.get('/answers/:id', (req, res) => res.sse({ response: req.params.id }))
    return { ids, done }
  }

  it('resumes a POST answer reloaded before its first token by GET to the saved Location, posting once', async () => {
    const { app: server, events, connections } = app()
    const firstToken = gate()
    const { ids } = answers(server, events, async function* () {
      await firstToken.opened
      for (let i = 0; i < 5; i++) yield { event: 'token', data: `t${i}` }
    })
    const listening = await listenApp(server)
    const page = await open(listening.url('/?post=prompt'))
    await opened(page)
    expect(await savedOn(page, 'position:url')).toBe(listening.url(`/answers/${ids[0]}`))
    expect(await savedOn(page, 'position')).toBeNull()

    await page.reload()
    await opened(page)
    firstToken.open()
    await seenAtLeast(page, 6, 'every token and the end')
    expect(await seenOn(page)).toEqual(['t0', 't1', 't2', 't3', 't4', 'end done'])
    expect(ids).toHaveLength(1)
    expect(
      connections.map((connection) => [connection.method, connection.path, connection.lastEventId]),
    ).toEqual([
      ['POST', '/answers', undefined],
      ['GET', `/answers/${ids[0]}`, undefined],
    ])
    expect(await savedOn(page, 'position:url')).toBeNull()
  }, 60_000)

  it('forgets a saved answer that expired while the tab was away (404), so the next load posts afresh', async () => {
    const { app: server, events, connections } = app()
    const rest = gate()
    const { ids, done } = answers(
      server,
      events,
      async function* (answer) {
        yield { event: 'token', data: `a${answer} t0` }
        yield { event: 'token', data: `a${answer} t1` }
        if (answer === 0) await rest.opened
        yield { event: 'token', data: `a${answer} t2` }
      },
      20,
    )
    const listening = await listenApp(server)
    const page = await open(listening.url('/?post=prompt'))
    await seenAtLeast(page, 2, 'two tokens')
    // The page goes away mid-answer (closing the source stands for the tab: sessionStorage stays).
    await page.evaluate(() => (globalThis as unknown as { source: { close(): void } }).source.close())
    const position = await savedOn(page, 'position')
    expect(position).not.toBeNull()
    rest.open()
    expect(await done[0]).toBe('done')
    const deadline = Date.now() + WAIT_MS
    while ((await events.responses.status(ids[0]!)) !== undefined) {
      if (Date.now() > deadline) throw new Error('the answer did not expire')
      await sleep(10)
    }

    await page.reload()
    await seenAtLeast(page, 3, 'the stop')
    expect(await savedOn(page, 'position')).toBeNull()
    expect(await savedOn(page, 'position:url')).toBeNull()
    await page.reload()
    await seenAtLeast(page, 7, 'the new answer and its end')
    expect(await seenOn(page)).toEqual([
      'a0 t0',
      'a0 t1',
      'stopped 404',
      'a1 t0',
      'a1 t1',
      'a1 t2',
      'end done',
    ])
    expect(
      connections.map((connection) => [connection.method, connection.path, connection.lastEventId]),
    ).toEqual([
      ['POST', '/answers', undefined],
      ['GET', `/answers/${ids[0]}`, position],
      ['POST', '/answers', undefined],
    ])
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
