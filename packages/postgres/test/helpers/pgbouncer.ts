/**
 * A PgBouncer of the test's own, in transaction mode, on a free port, in front of the test database:
 * Debian's `pgbouncer` (installed by scripts/provision.sh). It refuses to run as root, so as root it
 * runs as the `postgres` user (`-u`). Without the binary the tests are skipped with a loud notice,
 * except under CI, where they fail.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { constants } from 'node:fs'
import { access, chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

export interface Bouncer {
  /** A URL of the test database through the bouncer. */
  readonly url: string
  close(): Promise<void>
}

const { CI, PATH } = process.env

async function findBinary(): Promise<string | undefined> {
  const dirs = [...(PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin'].filter(Boolean)
  for (const dir of dirs) {
    const candidate = join(dir, 'pgbouncer')
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
    socket.connect(port, '127.0.0.1')
  })
}

/** Starts a bouncer in front of `databaseUrl`, or returns `undefined` (outside CI) without the binary. */
export async function bouncerForTests(suite: string, databaseUrl: string): Promise<Bouncer | undefined> {
  const binary = await findBinary()
  if (binary === undefined) {
    const message = "no executable pgbouncer (install Debian's pgbouncer: bash scripts/provision.sh)"
    if (CI) throw new Error(`${suite}: ${message}`)
    console.warn(`\n*** SKIPPING the ${suite} tests: ${message} ***\n`)
    return undefined
  }
  const target = new URL(databaseUrl)
  const dir = await mkdtemp(join(tmpdir(), 'rewind-pgbouncer-'))
  await chmod(dir, 0o755)
  const port = await freePort()
  const database = target.pathname.slice(1) || 'postgres'
  const user = decodeURIComponent(target.username) || 'postgres'
  const config = join(dir, 'pgbouncer.ini')
  await writeFile(
    config,
    [
      '[databases]',
      `${database} = host=${target.hostname} port=${target.port || 5432} dbname=${database} user=${user}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir =`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      'default_pool_size = 4',
      'ignore_startup_parameters = extra_float_digits,options',
      '',
    ].join('\n'),
  )
  await writeFile(join(dir, 'users.txt'), `"${user}" ""\n`)
  await chmod(config, 0o644)
  await chmod(join(dir, 'users.txt'), 0o644)
  const root = process.getuid?.() === 0
  const child: ChildProcess = spawn(binary, root ? ['-u', 'postgres', config] : [config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const kill = () => child.kill('SIGKILL')
  process.once('exit', kill)
  const deadline = Date.now() + 5000
  while (!(await answers(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      kill()
      throw new Error(`pgbouncer did not start on port ${port}: ${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    url: `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`,
    async close() {
      process.removeListener('exit', kill)
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
