/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The callbacks given to page.evaluate and $$eval run in the page, so they use the DOM's names.
/**
 * The live demos in a real browser: headless Chromium opens each demo page, the server cuts the
 * page's connection again and again while events keep being published, and the page must end up
 * showing every event exactly once and in order, resumed by the browser's own `EventSource` with
 * `Last-Event-ID`. Then the gap case: more events missed than the history keeps. Then the page as a
 * visitor finds it: the background ticker running from the start (and its pause switch), the
 * "force a gap" control, and the counters (received, resumed, gaps, lost: always 0).
 *
 * Needs Chromium at /usr/bin/chromium (scripts/provision.sh installs it). Without it the suite is
 * skipped with a warning, unless CI is set: then it fails.
 * `UPDATE_SCREENSHOT=1` also saves the Express page (ticks, a forced gap, a resumed answer) to docs/demo.png.
 */
import { existsSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createApp } from '../../examples/express-live/index.js'
import { buildApp } from '../../examples/fastify-live/index.js'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../scripts/chromium.js'
import { Gate } from '../support/gate.js'

const CHROMIUM = CHROMIUM_PATH
const SCREENSHOT = fileURLToPath(new URL('../../docs/demo.png', import.meta.url))
/** Bound of every wait; generous because CI machines are small and shared. */
const WAIT = { timeout: 20_000, interval: 50 }
/** The reconnection delay the demos send in these tests: short, so the drops do not take long. */
const RETRY = 300
const DROPS = 4

const { CI, UPDATE_SCREENSHOT } = process.env
const haveChromium = existsSync(CHROMIUM)
const runBrowser = haveChromium || Boolean(CI)
if (!runBrowser) {
  console.warn(
    `[e2e] browser tests skipped: no Chromium at ${CHROMIUM} (run scripts/provision.sh to install it)`,
  )
}

interface Shown {
  id: string
  event: string
  data: string
}

/** A GET /events request as the server received it, before the app saw it. */
interface Connect {
  client: string | null
  lastEventId: string | null
}

/**
 * A demo app listening on 127.0.0.1:0, with a watch in front of it that records every
 * GET /events request and can hold reconnections back while events are published.
 */
interface DemoServer {
  url: string
  connects: Connect[]
  hold(): void
  release(): void
  close(): Promise<void>
}

function createWatch() {
  const connects: Connect[] = []
  const gate = new Gate()
  return {
    connects,
    hold: gate.hold,
    release: gate.release,
    /** Records the request; resolves when the app may see it. */
    see(req: IncomingMessage): Promise<void> | undefined {
      const url = new URL(req.url ?? '/', 'http://localhost')
      if (req.method !== 'GET' || url.pathname !== '/events') return undefined
      const header = req.headers['last-event-id']
      connects.push({
        client: url.searchParams.get('client'),
        lastEventId: typeof header === 'string' ? header : null,
      })
      return gate.passage
    },
  }
}

type DemoOptions = { history?: number; retry: number; ticker: boolean }

const examples: { name: string; start(options: DemoOptions): Promise<DemoServer> }[] = [
  {
    name: 'express-live',
    async start(options) {
      const app = createApp(options)
      const watch = createWatch()
      const server = createServer((req, res) => {
        const gate = watch.see(req)
        if (gate === undefined) app(req, res)
        else void gate.then(() => app(req, res))
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        connects: watch.connects,
        hold: watch.hold,
        release: watch.release,
        close: () => {
          watch.release()
          const { events } = app.locals
          return events.close({ server })
        },
      }
    },
  },
  {
    name: 'fastify-live',
    async start(options) {
      const fastify = buildApp(options)
      const watch = createWatch()
      fastify.addHook('onRequest', async (request) => {
        await watch.see(request.raw)
      })
      await fastify.listen({ port: 0, host: '127.0.0.1' })
      return {
        url: `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`,
        connects: watch.connects,
        hold: watch.hold,
        release: watch.release,
        close: () => {
          watch.release()
          return fastify.close()
        },
      }
    },
  },
]

async function publish(url: string, input: { event?: string; data: unknown }): Promise<Shown> {
  const response = await fetch(`${url}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  })
  const text = await response.text()
  if (response.status !== 201) throw new Error(`publishing failed: ${response.status} ${text}`)
  const { id } = JSON.parse(text) as { id: string }
  const data = typeof input.data === 'string' ? input.data : JSON.stringify(input.data)
  return { id, event: input.event ?? 'message', data }
}

/** The n-th event of the mix the tests publish: strings, JSON, multi-line and named events. */
function mixed(n: number): { event?: string; data: unknown } {
  switch (n % 4) {
    case 0:
      return { data: `event ${n}` }
    case 1:
      return { event: 'note', data: { n, text: 'JSON, with ünïcödé ✓' } }
    case 2:
      return { data: `multi-line ${n}\nsecond line\n\nfourth line after an empty one` }
    default:
      return { event: 'order', data: [n, { sku: `A-${n}`, qty: n % 7 }] }
  }
}

/** Event rows of the page's list, in the order they are shown. */
function shownEvents(page: Page): Promise<Shown[]> {
  return page.$$eval('#log li.event', (rows) =>
    rows.map((row) => {
      const { id = '', event = '' } = (row as HTMLElement).dataset
      return { id, event, data: row.querySelector('.data')?.textContent ?? '' }
    }),
  )
}

/** Every row of the page's list: events by id, reconnection markers and gap notices by kind. */
function shownRows(page: Page): Promise<string[]> {
  return page.$$eval('#log li', (rows) =>
    rows.map((row) => {
      const { id, reason } = (row as HTMLElement).dataset
      if (row.classList.contains('event')) return `event ${id}`
      if (row.classList.contains('gap')) return `gap ${reason} ${id}`
      return row.className
    }),
  )
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? ''
}

/** The page's own counters, as a visitor reads them. */
async function counters(
  page: Page,
): Promise<{ received: number; resumed: number; gaps: number; lost: number }> {
  const [received, resumed, gaps, lost] = await Promise.all(
    ['#received', '#resumed', '#gaps', '#lost'].map(async (selector) => Number(await text(page, selector))),
  )
  return { received: received!, resumed: resumed!, gaps: gaps!, lost: lost! }
}

/** The sequence number of an in-memory history id (`<epoch>-<sequence>`). */
function sequence(id: string): number {
  return Number(id.slice(id.lastIndexOf('-') + 1))
}

describe.skipIf(!runBrowser)('live demos in Chromium', () => {
  let browser: Browser

  beforeAll(async () => {
    if (!haveChromium) {
      throw new Error(`CI is set but there is no Chromium at ${CHROMIUM}: run scripts/provision.sh first`)
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...CHROMIUM_ARGS],
      timeout: WAIT.timeout,
    })
  })

  afterAll(async () => {
    await browser?.close()
  })

  /** Runs a test against a fresh demo server and browser context, and closes both. */
  async function withDemo(
    example: (typeof examples)[number],
    options: { history?: number; ticker?: boolean },
    test: (demo: DemoServer, page: Page) => Promise<void>,
  ): Promise<void> {
    // The ticker is off unless a test asks for it: most tests count exactly the events they publish.
    const demo = await example.start({ ticker: false, ...options, retry: RETRY })
    let context: BrowserContext | undefined
    try {
      context = await browser.newContext({ viewport: { width: 1100, height: 800 } })
      context.setDefaultTimeout(WAIT.timeout)
      const page = await context.newPage()
      await test(demo, page)
    } finally {
      await context?.close()
      await demo.close()
    }
  }

  describe.each(examples)('$name', (example) => {
    it('shows every event exactly once and in order across server-side drops', async () => {
      await withDemo(example, {}, async (demo, page) => {
        await page.goto(`${demo.url}/?listen=note,order`)
        await page.waitForSelector('#state[data-state="open"]')
        const client = await page.getAttribute('body', 'data-client')
        expect(client).toMatch(/^[a-z0-9]+$/)

        const published: Shown[] = []
        let publishing = true
        const publisher = (async () => {
          for (let n = 0; publishing; n++) {
            published.push(await publish(demo.url, mixed(n)))
            await new Promise((resolve) => setTimeout(resolve, 10))
          }
        })()
        const publishedAtLeast = (count: number) =>
          vi.waitFor(() => expect(published.length).toBeGreaterThanOrEqual(count), WAIT)

        try {
          for (let drop = 1; drop <= DROPS; drop++) {
            // The page is live and has caught up to some point before each drop.
            await publishedAtLeast(published.length + 3)
            const caughtUp = published.length
            await vi.waitFor(
              async () => expect(Number(await text(page, '#received'))).toBeGreaterThanOrEqual(caughtUp),
              WAIT,
            )

            demo.hold()
            await page.click('#drop')
            await vi.waitFor(
              () => expect(demo.connects.filter((c) => c.client === client)).toHaveLength(drop + 1),
              WAIT,
            )
            await page.waitForSelector('#state[data-state="reconnecting"]')
            // Events published while the browser is away, and more while it catches up.
            await publishedAtLeast(published.length + 3)
            demo.release()
            await vi.waitFor(async () => expect(await text(page, '#resumed')).toBe(String(drop)), WAIT)
            await page.waitForSelector('#state[data-state="open"]')
          }
          await publishedAtLeast(published.length + 5)
        } finally {
          publishing = false
          demo.release()
          await publisher
        }

        // One more through the page's own form.
        await page.fill('#event-name', 'form')
        await page.fill('#event-data', 'sent from the page\nwith two lines')
        await page.click('#publish button[type="submit"]')
        await vi.waitFor(
          async () => expect(await text(page, '#publish-result')).toMatch(/^Published as \S+$/),
          WAIT,
        )
        const formId = (await text(page, '#publish-result')).replace('Published as ', '')
        published.push({ id: formId, event: 'form', data: 'sent from the page\nwith two lines' })

        await vi.waitFor(
          async () => expect((await shownEvents(page)).length).toBeGreaterThanOrEqual(published.length),
          WAIT,
        )
        expect(await shownEvents(page)).toEqual(published)
        expect(new Set(published.map((event) => event.id)).size).toBe(published.length)

        // The server saw the browser come back by itself DROPS times, each time with Last-Event-ID
        // set to the last event the page had shown, and the page then continued with the next one.
        const connects = demo.connects.filter((c) => c.client === client)
        expect(connects).toHaveLength(DROPS + 1)
        expect(connects[0]!.lastEventId).toBeNull()
        const rows = await shownRows(page)
        const ids = published.map((event) => event.id)
        for (let drop = 1; drop <= DROPS; drop++) {
          const resumedAfter = connects[drop]!.lastEventId
          expect(resumedAfter, `reconnect ${drop} carried no Last-Event-ID`).not.toBeNull()
          const marker = rows.indexOf('marker', rows.indexOf(`event ${resumedAfter}`))
          expect(rows[marker - 1], `reconnect ${drop}: the marker follows the event it resumed after`).toBe(
            `event ${resumedAfter}`,
          )
          const next = rows.slice(marker + 1).find((row) => row.startsWith('event '))
          expect(next).toBe(`event ${ids[ids.indexOf(resumedAfter!) + 1]}`)
        }
        expect(rows.filter((row) => row === 'marker')).toHaveLength(DROPS)
        expect(rows.some((row) => row.startsWith('gap'))).toBe(false)
        expect(await counters(page)).toEqual({
          received: published.length,
          resumed: DROPS,
          gaps: 0,
          lost: 0,
        })
        console.info(
          `[e2e] ${example.name}: ${published.length} events shown exactly once across ${DROPS} drops`,
        )
      })
    }, 90_000)

    it("resumes after the page's own 'drop + publish 3 while away' control", async () => {
      await withDemo(example, {}, async (demo, page) => {
        await page.goto(`${demo.url}/`)
        await page.waitForSelector('#state[data-state="open"]')
        const client = await page.getAttribute('body', 'data-client')
        const first = await publish(demo.url, { data: 'before the drop' })
        await vi.waitFor(async () => expect(await shownEvents(page)).toEqual([first]), WAIT)

        await page.click('#drop-publish')
        await vi.waitFor(
          async () => expect(await text(page, '#drop-result')).toContain('Three events were published'),
          WAIT,
        )
        const away = [1, 2, 3].map((n) => `published while you were away (${n}/3)`)
        await vi.waitFor(
          async () =>
            expect((await shownEvents(page)).map((event) => event.data)).toEqual([first.data, ...away]),
          WAIT,
        )
        expect(await text(page, '#resumed')).toBe('1')
        expect(demo.connects.filter((c) => c.client === client).map((c) => c.lastEventId)).toEqual([
          null,
          first.id,
        ])
      })
    }, 60_000)

    it('shows the gap notice, then the retained events, when more than HISTORY were missed', async () => {
      await withDemo(example, { history: 5 }, async (demo, page) => {
        await page.goto(`${demo.url}/?listen=order,deploy`)
        await page.waitForSelector('#state[data-state="open"]')
        const client = await page.getAttribute('body', 'data-client')

        const before = [
          await publish(demo.url, { event: 'order', data: { order: 1041, item: 'espresso beans', qty: 2 } }),
          await publish(demo.url, { data: 'Kitchen: oven preheated' }),
          await publish(demo.url, { event: 'deploy', data: 'v2.4.1 rolling out\n3 of 3 instances healthy' }),
        ]
        await vi.waitFor(async () => expect(await shownEvents(page)).toEqual(before), WAIT)

        demo.hold()
        await page.click('#drop')
        await vi.waitFor(() => expect(demo.connects.filter((c) => c.client === client)).toHaveLength(2), WAIT)
        const missed: Shown[] = []
        for (let n = 0; n < 8; n++) {
          missed.push(
            await publish(
              demo.url,
              n % 3 === 0
                ? {
                    event: 'order',
                    data: { order: 1042 + n, item: ['croissant', 'flat white', 'bagel'][n % 3], qty: 1 },
                  }
                : n % 3 === 1
                  ? { data: `Table ${n + 2} asked for the bill` }
                  : { event: 'deploy', data: `v2.4.${n} canary\nerror rate 0.0${n}%` },
            ),
          )
        }
        demo.release()

        await page.waitForSelector('#log li.gap')
        const retained = missed.slice(-5)
        await vi.waitFor(async () => expect(await shownEvents(page)).toHaveLength(before.length + 5), WAIT)
        expect(await shownEvents(page)).toEqual([...before, ...retained])
        const ids = missed.map((event) => event.id)
        // The gap signal comes first, with the id just before the oldest retained event: where a
        // client that drops right after it resumes.
        expect(await shownRows(page)).toEqual([
          ...before.map((event) => `event ${event.id}`),
          'marker',
          `gap evicted ${ids[ids.length - 6]}`,
          ...retained.map((event) => `event ${event.id}`),
        ])
        expect(demo.connects.filter((c) => c.client === client)[1]!.lastEventId).toBe(before[2]!.id)
        expect(await page.isVisible('#gap-banner')).toBe(true)
        expect(await text(page, '#gap-banner')).toContain('Gap (evicted)')
        expect(await counters(page)).toEqual({ received: before.length + 5, resumed: 1, gaps: 1, lost: 0 })

        const live = [
          await publish(demo.url, { event: 'order', data: { order: 1050, item: 'cortado', qty: 1 } }),
          await publish(demo.url, { data: 'Back to live events' }),
        ]
        await vi.waitFor(
          async () => expect(await shownEvents(page)).toEqual([...before, ...retained, ...live]),
          WAIT,
        )
      })
    }, 60_000)

    it('comes alive on open: the ticker runs with nothing published, and its switch pauses it', async () => {
      await withDemo(example, { ticker: true }, async (demo, page) => {
        await page.goto(`${demo.url}/`)
        await page.waitForSelector('#state[data-state="open"]')
        // Nobody publishes: the ticker's events arrive by themselves, a few a second.
        await vi.waitFor(async () => expect((await shownEvents(page)).length).toBeGreaterThanOrEqual(4), WAIT)
        const ticks = await shownEvents(page)
        for (const tick of ticks) {
          expect(tick.event).toBe('tick')
          expect(tick.data).toMatch(/^tick \d+ at \d\d:\d\d:\d\d UTC$/)
        }
        // Consecutive sequence numbers: the page saw every tick since it opened.
        const sequences = ticks.map((tick) => sequence(tick.id))
        expect(sequences).toEqual(sequences.map((_, n) => sequences[0]! + n))
        expect(await page.isChecked('#ticker')).toBe(true)
        expect(await text(page, '#ticker-label')).toBe('ticking')

        await page.click('#ticker')
        await vi.waitFor(async () => expect(await text(page, '#ticker-label')).toBe('paused'), WAIT)
        expect(await (await fetch(`${demo.url}/ticker`)).json()).toEqual({ running: false, perSecond: 3 })
        // At most the tick under way when the switch flipped arrives after it.
        const paused = (await shownEvents(page)).length
        await new Promise((resolve) => setTimeout(resolve, 1200))
        expect((await shownEvents(page)).length - paused).toBeLessThanOrEqual(1)

        await page.click('#ticker')
        await vi.waitFor(async () => expect(await text(page, '#ticker-label')).toBe('ticking'), WAIT)
        const resumedAt = (await shownEvents(page)).length
        await vi.waitFor(
          async () => expect((await shownEvents(page)).length).toBeGreaterThanOrEqual(resumedAt + 3),
          WAIT,
        )
        const { received, resumed, gaps, lost } = await counters(page)
        expect(received).toBe((await shownEvents(page)).length)
        expect({ resumed, gaps, lost }).toEqual({ resumed: 0, gaps: 0, lost: 0 })
      })
    }, 60_000)

    it("forces a gap with the page's own control, with the ticker running: gaps 1, lost 0", async () => {
      await withDemo(example, { ticker: true }, async (demo, page) => {
        await page.goto(`${demo.url}/`)
        await page.waitForSelector('#state[data-state="open"]')
        const client = await page.getAttribute('body', 'data-client')
        await vi.waitFor(async () => expect((await shownEvents(page)).length).toBeGreaterThanOrEqual(3), WAIT)

        await page.click('#gap')
        await vi.waitFor(
          async () => expect(await text(page, '#gap-result')).toContain('published 110 events'),
          WAIT,
        )
        await page.waitForSelector('#log li.gap')
        await vi.waitFor(async () => expect((await counters(page)).resumed).toBe(1), WAIT)
        // The history's 100 events arrive after the notice, then live ticks.
        await vi.waitFor(async () => {
          const rows = await shownRows(page)
          expect(rows.length - rows.findIndex((row) => row.startsWith('gap'))).toBeGreaterThan(103)
        }, WAIT)
        const rows = await shownRows(page)
        const gapAt = rows.findIndex((row) => row.startsWith('gap'))
        expect(rows[gapAt - 1]).toBe('marker')
        expect(rows[gapAt]).toMatch(/^gap evicted \S+$/)
        // From the notice on, every sequence number follows the one before: nothing missing.
        const after = [rows[gapAt]!.split(' ')[2]!, ...rows.slice(gapAt + 1).map((row) => row.split(' ')[1]!)]
        const sequences = after.map(sequence)
        expect(sequences).toEqual(sequences.map((_, n) => sequences[0]! + n))
        const events = await shownEvents(page)
        // The history keeps 100 events: the end of the burst, less any tick published after it
        // before the page came back.
        const burst = events.filter((event) => event.data.startsWith('burst ')).map((event) => event.data)
        expect(burst.length).toBeGreaterThan(90)
        expect(burst).toEqual(
          Array.from(
            { length: burst.length },
            (_, n) => `burst ${111 - burst.length + n}/110 while the page was away`,
          ),
        )
        expect(demo.connects.filter((c) => c.client === client)).toHaveLength(2)
        expect(await text(page, '#gap-banner')).toContain('Gap (evicted)')
        const { received, resumed, gaps, lost } = await counters(page)
        expect(received).toBe(events.length)
        expect({ resumed, gaps, lost }).toEqual({ resumed: 1, gaps: 1, lost: 0 })
      })
    }, 60_000)

    it('continues a streamed answer across a page reload, with no token lost or repeated, and stops at its end', async () => {
      await withDemo(example, { ticker: true }, async (demo, page) => {
        const answerRequests: string[] = []
        page.on('request', (request) => {
          if (request.url().includes('/responses'))
            answerRequests.push(`${request.method()} ${request.url()}`)
        })
        await page.goto(`${demo.url}/`)
        await page.waitForSelector('#state[data-state="open"]')
        await page.fill('#answer-tokens', '150')
        await page.fill('#answer-interval', '20')
        await page.click('#answer-start')
        await vi.waitFor(
          async () => expect(Number(await text(page, '#answer-count'))).toBeGreaterThan(30),
          WAIT,
        )
        // Mid-answer: the page goes away and comes back; the position was in sessionStorage.
        await page.reload()
        await page.waitForSelector('#answer-state[data-state="done"]', { timeout: WAIT.timeout })
        expect(Number(await text(page, '#answer-count'))).toBe(150)
        expect(await text(page, '#answer-order')).toBe('yes')
        expect(Number(await text(page, '#answer-resumed'))).toBeGreaterThanOrEqual(1)
        expect(await text(page, '#answer-text')).toBe(
          Array.from({ length: 150 }, (_, i) => `t${i}`).join(' '),
        )
        expect(await text(page, '#answer-end')).toBe('done')
        // One POST; after the end the client stops (at most the one reconnection that gets 204).
        expect(answerRequests.filter((request) => request.startsWith('POST'))).toHaveLength(1)
        const settled = answerRequests.length
        await new Promise((resolve) => setTimeout(resolve, 1000))
        expect(answerRequests.length).toBe(settled)

        if (example.name === 'express-live' && UPDATE_SCREENSHOT) {
          // The page as a visitor sees it a little after opening: ticks flowing, a forced gap, a
          // streamed answer resumed across a reload. No hovered button or highlight in the picture.
          await page.click('#gap')
          await page.waitForSelector('#log li.gap')
          await vi.waitFor(async () => expect((await counters(page)).resumed).toBeGreaterThanOrEqual(1), WAIT)
          await new Promise((resolve) => setTimeout(resolve, 1500))
          await page.evaluate(() => {
            for (const row of document.querySelectorAll('#log li.fresh')) row.classList.remove('fresh')
          })
          await page.mouse.move(0, 0)
          await page.evaluate(() => window.scrollTo(0, 0))
          await page.screenshot({ path: SCREENSHOT })
        }
      })
    }, 60_000)
  })
})
