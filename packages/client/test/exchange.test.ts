/**
 * The decisions of the HTTP exchange, without fetch or a server: what a request carries, what an
 * answer means, where a stream is resumed and which request comes next. Properties where a rule
 * holds for every input, examples for the messages and the edges.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RewindClientError } from '../src/errors.js'
import {
  type AnswerHead,
  absolute,
  isEventStream,
  judgeAnswer,
  type NextRequest,
  nextRequest,
  originOf,
  type ResumeDecision,
  requestHeaders,
  requestInit,
  resumeDecision,
  resumeLocation,
  resumesOnStart,
} from '../src/exchange.js'
import type { ResumeRequest } from '../src/index.js'

/** Header names, the two the client owns among them. */
const headerName = fc.oneof(
  fc.constantFrom('accept', 'last-event-id', 'authorization', 'content-type'),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/),
)
/** Header values as Headers keeps them: visible ASCII at both ends. */
const headerValue = fc.stringMatching(/^[!-~]([ -~]{0,12}[!-~])?$/)
const headerRecord = fc.dictionary(headerName, headerValue, { maxKeys: 6 })
/** A position: `''` for none, else an id as a header can carry it. */
const position = fc.oneof(fc.constant(''), fc.stringMatching(/^[!-~]{1,16}$/))
const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE')
const status = fc.integer({ min: 200, max: 599 })
const contentType = fc.constantFrom(
  'text/event-stream',
  'text/event-stream; charset=utf-8',
  ' Text/Event-Stream ',
  'TEXT/EVENT-STREAM;charset=UTF-8',
  'text/event-streams',
  'text/plain',
  'application/json',
  '',
)
const head: fc.Arbitrary<AnswerHead> = fc.record({
  method,
  url: fc.constant('http://127.0.0.1:9/answers'),
  status,
  contentType,
  hasBody: fc.boolean(),
})
const url = fc.webUrl()
const request: fc.Arbitrary<NextRequest> = fc.record({
  url,
  method,
  body: fc.option(fc.string(), { nil: undefined }),
  headers: fc.option(headerRecord, { nil: undefined }),
})
const situation = { reason: 'the stream dropped', dropped: undefined }

/** What `new URL` makes of `url` against `base`, or `undefined` where it throws. */
function parsed(url: string, base: string): string | undefined {
  try {
    return new URL(url, base).href
  } catch {
    return undefined
  }
}

describe('requestHeaders', () => {
  it('asks for an event stream and sends the position, or none, whatever the other headers say', () => {
    fc.assert(
      fc.property(
        headerRecord,
        fc.option(headerRecord, { nil: undefined }),
        position,
        (base, resumed, id) => {
          const headers = requestHeaders(base, resumed, id)
          expect(headers.get('accept')).toBe('text/event-stream')
          expect(headers.get('last-event-id')).toBe(id === '' ? null : id)
        },
      ),
    )
  })

  it("keeps every other header of the headers option, the resume option's winning", () => {
    fc.assert(
      fc.property(headerRecord, headerRecord, position, (base, resumed, id) => {
        const headers = requestHeaders(base, resumed, id)
        for (const name of new Set([...Object.keys(base), ...Object.keys(resumed)])) {
          if (name === 'accept' || name === 'last-event-id') continue
          expect(headers.get(name)).toBe(resumed[name] ?? base[name])
        }
      }),
    )
  })

  it('takes headers in every form fetch takes them', () => {
    const headers = requestHeaders(new Headers({ a: '1' }), [['b', '2']], '')
    expect([...headers]).toEqual([
      ['a', '1'],
      ['accept', 'text/event-stream'],
      ['b', '2'],
    ])
  })
})

describe('absolute and originOf', () => {
  it('resolve a URL against a base, and give undefined or no origin for what is no URL', () => {
    expect(absolute('/a?b', 'http://127.0.0.1:9/x/y')).toBe('http://127.0.0.1:9/a?b')
    expect(absolute(new URL('http://h/z'), undefined)).toBe('http://h/z')
    expect(absolute('/a', undefined)).toBeUndefined()
    expect(originOf('http://127.0.0.1:9/answers/7?x')).toBe('http://127.0.0.1:9')
    expect(originOf('/answers/7')).toBe('')
  })
})

describe('requestInit', () => {
  it('never lets a browser answer from its cache, and sends credentials and a body only when there are', () => {
    const signal = new AbortController().signal
    const headers = new Headers()
    const get = { url: 'http://127.0.0.1:9/', method: 'GET', body: undefined, headers: undefined }
    // Strictly: a field set to `undefined` is not left out, and fetch would read it.
    expect(requestInit(get, headers, undefined, signal)).toStrictEqual({
      method: 'GET',
      headers,
      cache: 'no-store',
      signal,
    })
    expect(requestInit({ ...get, method: 'POST', body: 'prompt' }, headers, 'include', signal)).toStrictEqual(
      {
        method: 'POST',
        headers,
        cache: 'no-store',
        signal,
        credentials: 'include',
        body: 'prompt',
      },
    )
  })
})

describe('isEventStream', () => {
  it('reads the media type, whatever its case, spaces and parameters', () => {
    expect(
      ['text/event-stream', 'text/event-stream; charset=utf-8', ' Text/Event-Stream ; x=y'].map(
        isEventStream,
      ),
    ).toEqual([true, true, true])
    expect(['', 'text/plain', 'text/event-streams', 'text/event', 'event-stream'].map(isEventStream)).toEqual(
      [false, false, false, false, false],
    )
  })
})

describe('judgeAnswer', () => {
  const retries = fc.func(fc.boolean())

  it('opens only a 200 event stream with a body', () => {
    fc.assert(
      fc.property(head, retries, (answer, shouldRetry) => {
        const opens = answer.status === 200 && isEventStream(answer.contentType) && answer.hasBody
        expect(judgeAnswer(answer, shouldRetry).kind === 'open').toBe(opens)
      }),
    )
  })

  it('ends the stream on 204 and only then, whatever shouldRetry says', () => {
    fc.assert(
      fc.property(head, retries, (answer, shouldRetry) => {
        expect(judgeAnswer(answer, shouldRetry).kind === 'end').toBe(answer.status === 204)
      }),
    )
  })

  it('retries any other status when shouldRetry says so and stops otherwise, with the status in the error', () => {
    fc.assert(
      fc.property(
        head.filter((answer) => answer.status !== 200 && answer.status !== 204),
        retries,
        (answer, shouldRetry) => {
          const verdict = judgeAnswer(answer, shouldRetry)
          expect(verdict.kind).toBe(shouldRetry(answer.status) ? 'reconnect' : 'stop')
          if (verdict.kind !== 'reconnect' && verdict.kind !== 'stop') return
          expect(verdict.error).toBeInstanceOf(RewindClientError)
          expect(verdict.error.code).toBe('ERR_HTTP_STATUS')
          expect(verdict.error.status).toBe(answer.status)
        },
      ),
    )
  })

  it('forgets the saved position only when a 404 stops the source: the server no longer knows the stream', () => {
    fc.assert(
      fc.property(head, retries, (answer, shouldRetry) => {
        const verdict = judgeAnswer(answer, shouldRetry)
        const forgets = verdict.kind === 'stop' && verdict.forget
        expect(forgets).toBe(answer.status === 404 && !shouldRetry(404))
      }),
    )
  })

  it('stops on a 200 that is no event stream, and retries one without a body', () => {
    const answer = { method: 'GET', url: 'http://127.0.0.1:9/', status: 200, hasBody: true }
    const html = judgeAnswer({ ...answer, contentType: 'text/html' }, () => true)
    expect(html).toEqual({ kind: 'stop', error: expect.any(RewindClientError), forget: false })
    expect(html.kind === 'stop' && html.error.message).toMatch(/'text\/html', not text\/event-stream/)
    const empty = judgeAnswer({ ...answer, contentType: 'text/event-stream', hasBody: false }, () => false)
    expect(empty.kind === 'reconnect' && empty.error.code).toBe('ERR_NETWORK')
  })

  it('says what answered, and why it stops or is retried', () => {
    const answer = { method: 'GET', url: 'http://127.0.0.1:9/s', hasBody: true }
    const messages = [
      judgeAnswer({ ...answer, status: 503, contentType: '' }, () => true),
      judgeAnswer({ ...answer, status: 200, contentType: 'text/html' }, () => true),
      judgeAnswer({ ...answer, status: 200, contentType: 'text/event-stream', hasBody: false }, () => true),
    ].map(
      (verdict) =>
        verdict.kind !== 'open' && verdict.kind !== 'end' && [verdict.error.message, verdict.error.status],
    )
    expect(messages).toEqual([
      ['GET http://127.0.0.1:9/s answered 503', 503],
      [
        "http://127.0.0.1:9/s answered with Content-Type 'text/html', not text/event-stream: check that the URL serves an event stream",
        200,
      ],
      ['http://127.0.0.1:9/s answered without a body', 200],
    ])
  })

  it('says which option decides when a status is not retried', () => {
    const verdict = judgeAnswer(
      { method: 'POST', url: 'http://127.0.0.1:9/a', status: 401, contentType: '', hasBody: true },
      () => false,
    )
    expect(verdict.kind === 'stop' && verdict.error.message).toBe(
      'POST http://127.0.0.1:9/a answered 401: not retried (the shouldRetry option decides which statuses are)',
    )
  })
})

describe('resumeLocation', () => {
  it('is the Location, else the Content-Location, resolved against the URL that answered', () => {
    const answered = 'http://127.0.0.1:9/answers'
    expect(resumeLocation(new Headers({ location: '/answers/7' }), answered)).toBe(
      'http://127.0.0.1:9/answers/7',
    )
    expect(resumeLocation(new Headers({ location: 'a/1', 'content-location': '/b/2' }), 'http://h/x/y')).toBe(
      'http://h/x/a/1',
    )
    expect(resumeLocation(new Headers({ 'content-location': '/b/2' }), answered)).toBe(
      'http://127.0.0.1:9/b/2',
    )
    expect(resumeLocation(new Headers(), answered)).toBeUndefined()
    expect(resumeLocation(new Headers({ location: 'http://[' }), answered)).toBeUndefined()
  })

  it('is always an absolute URL, whatever the header holds', () => {
    fc.assert(
      fc.property(fc.oneof(fc.webPath(), fc.webUrl(), fc.string()), url, (location, answered) => {
        const resolved = resumeLocation(new Headers({ location: encodeURI(location) }), answered)
        if (resolved !== undefined) expect(new URL(resolved).href).toBe(resolved)
      }),
    )
  })
})

describe('resumesOnStart', () => {
  it('resumes a non-GET stream with a saved position or URL, never a GET stream', () => {
    fc.assert(
      fc.property(method, position, fc.oneof(fc.constant(''), url), (name, saved, location) => {
        expect(resumesOnStart(name, { position: saved, url: location })).toBe(
          name !== 'GET' && (saved !== '' || location !== ''),
        )
      }),
    )
  })
})

describe('nextRequest', () => {
  it('never sends a body twice: by default a non-GET stream is resumed by GET to its Location, or not at all', () => {
    fc.assert(
      fc.property(
        request.filter((current) => current.method !== 'GET'),
        fc.option(url, { nil: undefined }),
        (current, location) => {
          const next = nextRequest(current, location, { kind: 'default' }, situation)
          if (location === undefined) {
            expect(next).toBeInstanceOf(RewindClientError)
            expect((next as RewindClientError).code).toBe('ERR_NOT_RESUMABLE')
            expect((next as RewindClientError).message).toContain('the stream dropped')
          } else {
            expect(next).toEqual({ url: location, method: 'GET', body: undefined, headers: undefined })
          }
        },
      ),
    )
  })

  it('asks a GET stream again as it was, whatever Location was given', () => {
    fc.assert(
      fc.property(
        request.map((current) => ({ ...current, method: 'GET', body: undefined })),
        fc.option(url, { nil: undefined }),
        (current, location) => {
          expect(nextRequest(current, location, { kind: 'default' }, situation)).toBe(current)
        },
      ),
    )
  })

  it("makes the resume option's request: its URL resolved, its method upper-cased, GET when it names a URL", () => {
    fc.assert(
      fc.property(
        request,
        fc.record(
          {
            url: fc.oneof(fc.webPath(), url),
            method: fc.constantFrom('get', 'post', 'Put'),
            body: fc.string(),
            headers: headerRecord,
          },
          { requiredKeys: [] },
        ),
        (current, asked: ResumeRequest) => {
          const next = nextRequest(current, undefined, { kind: 'request', request: asked }, situation)
          const target = asked.url === undefined ? undefined : String(asked.url)
          const resolved = target === undefined ? current.url : parsed(target, current.url)
          if (resolved === undefined) {
            // A path such as '//' names no host: no request can be made of it.
            expect((next as RewindClientError).code).toBe('ERR_NOT_RESUMABLE')
            return
          }
          expect(next).toEqual({
            url: resolved,
            method: (asked.method ?? (target === undefined ? current.method : 'GET')).toUpperCase(),
            body: asked.body,
            headers: asked.headers,
          })
        },
      ),
    )
  })

  it('stops with ERR_NOT_RESUMABLE when the resume option says null, throws, or names no URL', () => {
    const current = { url: 'http://127.0.0.1:9/a', method: 'POST', body: undefined, headers: undefined }
    const dropped = new RewindClientError('ERR_NETWORK', 'dropped')
    const thrown = new Error('no token')
    const outcomes = (
      [
        { kind: 'stop' },
        { kind: 'threw', error: thrown },
        { kind: 'request', request: { url: 'http://[' } },
      ] satisfies ResumeDecision[]
    ).map((decision) => nextRequest(current, 'http://127.0.0.1:9/b', decision, { reason: 'x', dropped }))
    expect(outcomes.map((error) => (error as RewindClientError).code)).toEqual([
      'ERR_NOT_RESUMABLE',
      'ERR_NOT_RESUMABLE',
      'ERR_NOT_RESUMABLE',
    ])
    expect(outcomes.map((error) => (error as RewindClientError).field)).toEqual([
      'resume',
      'resume',
      'resume',
    ])
    expect(outcomes.map((error) => (error as RewindClientError).cause)).toEqual([dropped, thrown, dropped])
    expect(outcomes.map((error) => (error as RewindClientError).message)).toEqual([
      'the resume option returned null: not resuming',
      'the resume option threw: no token',
      'the resume option returned an invalid url: http://[',
    ])
  })

  it('says how to make a stream opened with another method resumable', () => {
    const current = { url: 'http://127.0.0.1:9/a', method: 'POST', body: 'prompt', headers: undefined }
    const dropped = new RewindClientError('ERR_NETWORK', 'dropped')
    const error = nextRequest(
      current,
      undefined,
      { kind: 'default' },
      { reason: 'the stream dropped', dropped },
    )
    expect(error).toBeInstanceOf(RewindClientError)
    expect((error as RewindClientError).message).toBe(
      'POST http://127.0.0.1:9/a: the stream dropped, and a body is never sent twice: have the server answer with a Location header naming a GET URL of the stream, or pass the resume option',
    )
    expect([(error as RewindClientError).field, (error as RewindClientError).cause]).toEqual([
      'resume',
      dropped,
    ])
  })

  it('sends no body when the resume option gives null for it', () => {
    const current = { url: 'http://127.0.0.1:9/a', method: 'POST', body: 'prompt', headers: undefined }
    const next = nextRequest(current, undefined, { kind: 'request', request: { body: null } }, situation)
    expect(next).toStrictEqual({ url: current.url, method: 'POST', body: undefined, headers: undefined })
  })
})

describe('resumeDecision', () => {
  it('reads null as stop, undefined as the default, anything else as the request', () => {
    expect(resumeDecision(null)).toEqual({ kind: 'stop' })
    expect(resumeDecision(undefined)).toEqual({ kind: 'default' })
    expect(resumeDecision({ url: '/b' })).toEqual({ kind: 'request', request: { url: '/b' } })
  })
})
