/**
 * A TODO list kept live by Postgres and Rewind. An INSERT fires a trigger, the trigger calls
 * pg_notify, the app hears it on LISTEN and publishes an event. The events' history is kept in the
 * same database (@rewind/postgres), so it survives a restart of the app. A browser that was offline
 * gets the TODOs it missed on reconnect (replay) or, past history, a gap signal on which it
 * refetches the list.
 *
 * Try it:
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter todo-postgres start
 *   curl -N http://127.0.0.1:3002/events
 *   curl -X POST -H 'content-type: application/json' -d '{"title":"buy milk"}' http://127.0.0.1:3002/todos
 *   curl http://127.0.0.1:3002/todos
 *
 * Environment: DATABASE_URL, PORT (3002), HOST (127.0.0.1), HISTORY (events kept, default 1000),
 * TODO_SCHEMA (Postgres schema holding the table, default "public"; the events' history is kept in the
 * schema "rewind_" + TODO_SCHEMA).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { sse } from '@rewind/express'
import { createPostgresStore } from '@rewind/postgres'
import express from 'express'
import pg from 'pg'

const PAGE = readFileSync(new URL('./page.html', import.meta.url), 'utf8')
const MAX_TITLE = 500
const STREAM = 'todos'

const ident = pg.escapeIdentifier

/**
 * Creates the table, the notify function and the trigger if they are missing. The payload carries
 * the row, so the app publishes without a second query (titles are short: far below pg_notify's 8000 bytes).
 *
 * @param {import('pg').Pool} pool
 * @param {string} schema the Postgres schema that holds the table
 * @returns {Promise<string>} the channel the trigger notifies on
 */
export async function migrate(pool, schema) {
  const s = ident(schema)
  const channel = `todos_${schema}`
  // One migration at a time when several instances start together.
  await pool.query(`
    BEGIN;
    SELECT pg_advisory_xact_lock(hashtext('rewind-todo-migration'));
    CREATE SCHEMA IF NOT EXISTS ${s};
    CREATE TABLE IF NOT EXISTS ${s}.todos (
      id bigserial PRIMARY KEY,
      title text NOT NULL CHECK (length(title) BETWEEN 1 AND ${MAX_TITLE}),
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE OR REPLACE FUNCTION ${s}.todos_notify() RETURNS trigger AS $$
    BEGIN
      PERFORM pg_notify(${pg.escapeLiteral(channel)}, row_to_json(NEW)::text);
      RETURN NEW;
    END $$ LANGUAGE plpgsql;
    DROP TRIGGER IF EXISTS todos_notify ON ${s}.todos;
    CREATE TRIGGER todos_notify AFTER INSERT ON ${s}.todos FOR EACH ROW EXECUTE FUNCTION ${s}.todos_notify();
    COMMIT;
  `)
  return channel
}

/**
 * Listens on `channel` with a dedicated client and publishes every notification. Notifications
 * sent while the connection is down are lost, so after reconnecting it publishes a `resync` event
 * and clients refetch the list.
 *
 * @param {{ databaseUrl: string, channel: string, events: import('@rewind/express').SseMiddleware<Promise<string>>, log: (line: string) => void }} options
 */
function listen({ databaseUrl, channel, events, log }) {
  /** @type {import('pg').Client | undefined} */
  let client
  let stopped = false
  /** @type {NodeJS.Timeout | undefined} */
  let retryTimer
  let delay = 100
  /** @param {boolean} reconnected */
  const connect = async (reconnected) => {
    client = new pg.Client({ connectionString: databaseUrl })
    client.on('error', (error) => log(`listen connection failed: ${error.message}`))
    client.on('end', () => {
      if (stopped) return
      retryTimer = setTimeout(() => connect(true).catch(() => {}), delay)
      delay = Math.min(delay * 2, 5000)
    })
    client.on('notification', (message) => {
      if (message.channel !== channel || message.payload === undefined) return
      // The history is in Postgres: an append that fails is reported (a page that missed it refetches
      // on the next resync or gap).
      events
        .publish(STREAM, { event: 'todo', data: JSON.parse(message.payload) })
        .catch((error) => log(`publish failed: ${error instanceof Error ? error.message : String(error)}`))
    })
    try {
      await client.connect()
      await client.query(`LISTEN ${ident(channel)}`)
      delay = 100
      if (reconnected) {
        events
          .publish(STREAM, { event: 'resync', data: '' })
          .catch((error) => log(`publish failed: ${error instanceof Error ? error.message : String(error)}`))
      }
    } catch (error) {
      log(`cannot listen: ${error instanceof Error ? error.message : String(error)}`)
      await client.end().catch(() => {})
      if (!reconnected) throw error
    }
  }
  return {
    ready: connect(false),
    async stop() {
      stopped = true
      clearTimeout(retryTimer)
      await client?.end().catch(() => {})
    },
  }
}

/**
 * Builds the app. `close()` ends the event streams, the server (if given), the listener, the history
 * store and the pool.
 *
 * @param {{ databaseUrl?: string, schema?: string, history?: number, log?: (line: string) => void }} [options]
 *   the database (DATABASE_URL, else a local Postgres), the schema of the table (TODO_SCHEMA, else
 *   `public`), events kept for resuming clients (HISTORY, else 1000), and where errors are written (stderr)
 */
export async function createTodoApp({
  databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  schema = process.env.TODO_SCHEMA ?? 'public',
  history = Number(process.env.HISTORY ?? 1000),
  log = (line) => console.error(line),
} = {}) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 5 })
  pool.on('error', (error) => log(`database pool: ${error.message}`))
  const channel = await migrate(pool, schema)
  const table = `${ident(schema)}.todos`
  // The history lives in Postgres beside the table: a client resumes across restarts of the app.
  const store = createPostgresStore({
    connectionString: databaseUrl,
    schema: `rewind_${schema}`,
    maxLen: history,
  })
  // Offline clients within history get the TODOs they missed; past it, the reset policy tells
  // them to refetch the list instead of replaying a partial one.
  const events = sse({ store, gapPolicy: 'reset' })
  const listener = listen({ databaseUrl, channel, events, log })
  await listener.ready

  const app = express()
  app.use(events)
  app.get('/', (req, res) => res.type('html').send(PAGE))
  app.get('/events', (req, res) => res.sse(STREAM))
  app.get('/todos', async (req, res) => {
    const { rows } = await pool.query(`SELECT id, title, created_at FROM ${table} ORDER BY id`)
    res.json(rows)
  })
  app.post('/todos', express.json({ limit: '16kb' }), async (req, res) => {
    const title = req.body?.title
    if (typeof title !== 'string' || title.trim() === '' || title.length > MAX_TITLE) {
      res.status(400).json({ error: `title must be a non-empty string of at most ${MAX_TITLE} characters` })
      return
    }
    const { rows } = await pool.query(
      `INSERT INTO ${table} (title) VALUES ($1) RETURNING id, title, created_at`,
      [title.trim()],
    )
    res.status(201).json(rows[0])
  })
  app.use((req, res) => res.status(404).json({ error: 'not found' }))
  /**
   * Express hands errors to a handler of four parameters; a 4xx status is set on errors the request caused.
   *
   * @param {Error & { status?: number, statusCode?: number }} error
   * @param {import('express').Request} req
   * @param {import('express').Response} res
   * @param {import('express').NextFunction} _next
   */
  const answerError = (error, req, res, _next) => {
    const status = error.status ?? error.statusCode ?? 500
    if (status >= 500) log(error.stack ?? String(error))
    res.status(status).json({ error: status >= 500 ? 'internal error' : error.message })
  }
  app.use(answerError)

  return {
    app,
    events,
    pool,
    /** @param {import('node:http').Server} [server] also closed, once its streams have ended */
    async close(server) {
      await events.close(server === undefined ? {} : { server })
      await listener.stop()
      await store.close()
      await pool.end()
    },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 3002)
  const host = process.env.HOST ?? '127.0.0.1'
  const todo = await createTodoApp()
  const server = todo.app.listen(port, host, () => {
    // Listening on a host and port (not a pipe), so the address is an AddressInfo.
    const { port: actual } = /** @type {import('node:net').AddressInfo} */ (server.address())
    console.log(`TODO list on http://${host}:${actual}`)
  })
  const stop = () => todo.close(server).then(() => process.exit(0))
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
