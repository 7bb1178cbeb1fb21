/**
 * One small app per adapter, served on 127.0.0.1 with an ephemeral port: `GET /events` follows the
 * hub stream named by `?stream=` (default `s`), everything else is the framework's 404.
 *
 * Plain ESM so that the child-process server (`server.mjs`, run by bare `node`) and the in-process
 * tests (run by vitest) use the very same code.
 *
 * Resolution: the adapters are imported from their BUILT files by relative path (plain `node` runs
 * this file in the child process, and that is what users get). Their own `@rewind/core` import
 * resolves, in the child, to `packages/core/dist` through the workspace link; in vitest, the
 * torture project's alias sends it (and the tests' own `@rewind/core` imports) to core's source, so
 * either way `RewindError` is one class for the test and the app.
 * The frameworks are resolved from the adapter packages, whose devDependencies pin the versions
 * the adapters are built and tested against.
 */
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { sse } from '../../../packages/express/dist/index.js'
import { ssePlugin } from '../../../packages/fastify/dist/index.js'

const fromExpress = createRequire(new URL('../../../packages/express/package.json', import.meta.url))
const express = fromExpress('express')
const compression = fromExpress('compression')
const Fastify = createRequire(new URL('../../../packages/fastify/package.json', import.meta.url))('fastify')

export const ADAPTERS = Object.freeze(['express', 'fastify'])

const DEFAULT_STREAM = 's'

/** The stream a request asks for: `?stream=<name>`, else the default. */
function streamOf(url) {
  const query = url.indexOf('?')
  if (query === -1) return DEFAULT_STREAM
  return new URLSearchParams(url.slice(query + 1)).get('stream') ?? DEFAULT_STREAM
}

/**
 * Starts an app for `adapter` with the given hub options.
 *
 * @param {'express' | 'fastify'} adapter
 * @param {object} [hubOptions] options of `sse()` / the Fastify plugin
 * @param {object} [fastifyOptions] options of `Fastify()` (ignored for Express)
 * @param {{ wrapWrite?: boolean }} [extras] `wrapWrite`: the app wraps `res.write`, as middleware
 *   often does: `compression()` on Express (which leaves event streams uncompressed, as they say
 *   `no-transform`, but wraps `res.write` all the same), an instrumentation hook on Fastify
 */
export async function startApp(adapter, hubOptions = {}, fastifyOptions = {}, extras = {}) {
  if (adapter === 'express') {
    const events = sse(hubOptions)
    const app = express()
    app.disable('x-powered-by')
    if (extras.wrapWrite) app.use(compression())
    app.use(events)
    app.get('/events', (req, res) => {
      res.sse(streamOf(req.url))
    })
    const server = createServer(app)
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', resolve)
    })
    return finish(adapter, server, events.hub, () => events.close({ server }))
  }
  if (adapter === 'fastify') {
    const fastify = Fastify({ logger: false, ...fastifyOptions })
    if (extras.wrapWrite) {
      fastify.addHook('onRequest', async (request, reply) => {
        const raw = reply.raw
        const write = raw.write
        raw.write = function wrappedWrite(...args) {
          return write.apply(this, args)
        }
      })
    }
    await fastify.register(ssePlugin, hubOptions)
    fastify.get('/events', (request, reply) => reply.sse(streamOf(request.url)))
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    return finish(adapter, fastify.server, fastify.sse, () => fastify.close())
  }
  throw new Error(`unknown adapter ${adapter}`)
}

function finish(adapter, server, hub, close) {
  const { port } = server.address()
  let closing
  return {
    adapter,
    server,
    hub,
    port,
    url: (path = '/events') => `http://127.0.0.1:${port}${path}`,
    /** Publishes through the adapter's hub (`events.publish` and `fastify.sse.publish` are this). */
    publish: (stream, input) => hub.publish(stream, input),
    /** Ends every stream and closes the server; resolves once both are done. Idempotent. */
    close() {
      closing ??= close()
      return closing
    },
    /** Open TCP connections of the server. */
    connections: () =>
      new Promise((resolve, reject) =>
        server.getConnections((error, n) => (error ? reject(error) : resolve(n))),
      ),
  }
}
