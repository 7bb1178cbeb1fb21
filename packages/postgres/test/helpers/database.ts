/**
 * The Postgres the tests talk to: `DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/test. When
 * it is not reachable the tests are skipped with a loud notice, except under CI (`CI` set), where
 * they fail instead. Each test file works in schemas of its own, dropped at the end.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

const { CI, DATABASE_URL: GIVEN_URL } = process.env

export const DATABASE_URL = GIVEN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** The database URL for a test file, or `undefined` (after a loud notice) when there is none outside CI. */
export async function databaseForTests(suite: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.end()
    return DATABASE_URL
  } catch (error) {
    if (CI) {
      throw new Error(`Postgres is required in CI and is not reachable at ${DATABASE_URL}`, { cause: error })
    }
    console.warn(`\n*** SKIPPING the ${suite} tests: no Postgres at ${DATABASE_URL} (set DATABASE_URL) ***\n`)
    return undefined
  }
}

/** A schema name no other test (or test run) uses. */
export function uniqueSchema(name: string): string {
  return `t_${name}_${process.pid}_${randomBytes(4).toString('hex')}`
}

/** Drops the schemas (and everything in them). */
export async function dropSchemas(url: string, schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  } finally {
    await client.end()
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export async function waitUntil(check: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await delay(5)
  }
}
