/**
 * scripts/provision.sh, which `pnpm test` runs first. On this machine everything is there, so the
 * real run must change nothing. The bare-machine cases cannot uninstall anything: they run the
 * script with a PATH of stand-ins instead (an `apt-get` that records what it is asked and "installs"
 * stand-ins, an `id` that says "not root"), on ports where nothing listens.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const SCRIPT = fileURLToPath(new URL('../scripts/provision.sh', import.meta.url))
const BASH = execFileSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim()
/** What the script itself calls besides the tools it provisions. */
const BASE_TOOLS = ['seq', 'sleep', 'grep', 'cat', 'ls', 'sort', 'tail', 'awk', 'rm', 'touch', 'chmod']

const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

function script(path: string, body: string): void {
  writeFileSync(path, `#!${BASH}\n${body}\n`)
  chmodSync(path, 0o755)
}

/** A folder to use as the whole PATH: the base tools, plus stand-ins. */
function bareMachine(options: { root: boolean }) {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-provision-'))
  dirs.push(dir)
  const bin = join(dir, 'bin')
  execFileSync('mkdir', [bin])
  for (const tool of BASE_TOOLS) {
    symlinkSync(
      execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(),
      join(bin, tool),
    )
  }
  const log = join(dir, 'calls.log')
  writeFileSync(log, '')
  script(join(bin, 'id'), `echo ${options.root ? 0 : 1000}`)
  const chromium = join(dir, 'chromium')
  // Installs what it can stand in for: Chromium, and a redis-server that records its arguments but
  // serves nothing. PostgreSQL fails to install, as it would without Debian's archive.
  script(
    join(bin, 'apt-get'),
    [
      `echo "apt-get $*" >> ${log}`,
      'case "$*" in',
      `  *install*chromium*) touch ${chromium}; chmod +x ${chromium} ;;`,
      `  *install*nginx*) touch ${bin}/nginx; chmod +x ${bin}/nginx ;;`,
      `  *install*pgbouncer*) touch ${bin}/pgbouncer; chmod +x ${bin}/pgbouncer ;;`,
      `  *install*redis-server*) printf '#!${BASH}\\necho "redis-server $*" >> ${log}\\n' > ${bin}/redis-server; chmod +x ${bin}/redis-server ;;`,
      '  *install*postgresql*) exit 100 ;;',
      'esac',
    ].join('\n'),
  )
  return { bin, log, chromium, calls: () => readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) }
}

async function provision(env: Record<string, string>) {
  const result = spawnSync(BASH, [SCRIPT], { env: { ...env }, encoding: 'utf8', timeout: 20_000 })
  return { status: result.status, lines: result.stdout.trim().split('\n'), stderr: result.stderr }
}

/** Whether this machine has everything; outside CI the idempotence case needs it, or is skipped. */
const complete = !spawnSync(BASH, [SCRIPT], { encoding: 'utf8' }).stdout.includes('provision: MISSING ')
const { CI } = process.env
if (!complete && !CI) console.warn('[provision] skipping the idempotence case: this machine lacks a service')

describe('scripts/provision.sh', () => {
  it.skipIf(!complete && !CI)('changes nothing on a machine that has everything (this one)', async () => {
    const { PATH } = process.env
    // An apt-get first on PATH that records any call: there must be none.
    const dir = mkdtempSync(join(tmpdir(), 'rewind-provision-'))
    dirs.push(dir)
    const log = join(dir, 'calls.log')
    writeFileSync(log, '')
    script(join(dir, 'apt-get'), `echo "apt-get $*" >> ${log}; exit 1`)
    const hba = '/etc/postgresql'
    const before = existsSync(hba) ? execFileSync('bash', ['-c', `cat ${hba}/*/*/pg_hba.conf`]) : ''
    const { status, lines, stderr } = await provision({
      ...process.env,
      PATH: `${dir}:${PATH}`,
      CI: 'true',
    } as Record<string, string>)
    expect(status, `${lines.join('\n')}\n${stderr}`).toBe(0)
    expect(
      lines.every((line) => line.startsWith('provision: ok ')),
      lines.join('\n'),
    ).toBe(true)
    expect(lines).toHaveLength(6)
    expect(readFileSync(log, 'utf8')).toBe('')
    const after = existsSync(hba) ? execFileSync('bash', ['-c', `cat ${hba}/*/*/pg_hba.conf`]) : ''
    expect(after.toString()).toBe(before.toString())
  })

  it('says what it could not provision and what is skipped, and fails only under CI, without root', async () => {
    const machine = bareMachine({ root: false })
    const env = {
      PATH: machine.bin,
      PROVISION_CHROMIUM: machine.chromium,
      PROVISION_REDIS_PORT: String(await closedPort()),
      PROVISION_PG_PORT: String(await closedPort()),
      PROVISION_WAIT: '1',
    }
    const local = await provision(env)
    expect(local.status, local.stderr).toBe(0)
    const missing = local.lines.filter((line) => line.startsWith('provision: MISSING '))
    expect(missing, local.lines.join('\n')).toHaveLength(6)
    expect(missing[0]).toContain('Chromium')
    expect(missing[0]).toContain('needs root and apt-get')
    expect(missing[0]).toContain('test/e2e/browser.test.ts')
    expect(missing[1]).toContain('nginx')
    expect(missing[1]).toContain('examples/recipes/test/behind-a-proxy.test.ts')
    expect(missing[2]).toContain('redis-server')
    expect(missing[2]).toContain('packages/redis/test')
    expect(missing[3]).toContain(`Redis on 127.0.0.1:${env.PROVISION_REDIS_PORT}`)
    expect(missing[4]).toContain(`PostgreSQL on 127.0.0.1:${env.PROVISION_PG_PORT}`)
    expect(missing[4]).toContain('examples/todo-postgres/test')
    expect(missing[5]).toContain('pgbouncer')
    expect(missing[5]).toContain('packages/postgres/test/pgbouncer.test.ts')
    expect(machine.calls()).toEqual([])

    const ci = await provision({ ...env, CI: 'true' })
    expect(ci.status).toBe(1)
    expect(ci.lines.at(-1)).toMatch(/CI is set and 6 thing\(s\) could not be provisioned/)
  })

  it('installs only what is missing as root, with one apt-get update, and starts Redis on its port', async () => {
    const machine = bareMachine({ root: true })
    const redisPort = String(await closedPort())
    const env = {
      PATH: machine.bin,
      PROVISION_CHROMIUM: machine.chromium,
      PROVISION_REDIS_PORT: redisPort,
      PROVISION_PG_PORT: String(await closedPort()),
      PROVISION_WAIT: '1',
    }
    const { status, lines } = await provision(env)
    expect(status).toBe(0)
    const calls = machine.calls()
    expect(calls.filter((call) => call.startsWith('apt-get update'))).toHaveLength(1)
    expect(calls.filter((call) => call.includes(' install '))).toEqual([
      'apt-get install -y -qq --no-install-recommends chromium',
      'apt-get install -y -qq --no-install-recommends nginx',
      'apt-get install -y -qq --no-install-recommends redis-server',
      'apt-get install -y -qq --no-install-recommends postgresql postgresql-client',
      'apt-get install -y -qq --no-install-recommends pgbouncer',
    ])
    // The stand-in redis-server was started on the port asked for, loopback only, without persistence.
    const started = calls.find((call) => call.startsWith('redis-server '))
    expect(started).toBe(
      `redis-server --daemonize yes --bind 127.0.0.1 --port ${redisPort} --save  --appendonly no`,
    )
    expect(lines).toContain(`provision: ok    Chromium at ${machine.chromium}`)
    expect(lines).toContain(`provision: ok    nginx at ${machine.bin}/nginx`)
    expect(lines).toContain(`provision: ok    redis-server at ${machine.bin}/redis-server`)
    expect(lines).toContain(`provision: ok    pgbouncer at ${machine.bin}/pgbouncer`)
    // It serves nothing, and PostgreSQL failed to install: both are reported, with the reason.
    expect(lines.filter((line) => line.startsWith('provision: MISSING '))).toEqual([
      expect.stringContaining(`a Redis on 127.0.0.1:${redisPort}`),
      expect.stringContaining('apt-get install postgresql postgresql-client failed'),
    ])

    // A second run finds Chromium, nginx, redis-server and pgbouncer in place: only the still missing PostgreSQL is retried.
    writeFileSync(machine.log, '')
    await provision(env)
    expect(machine.calls().filter((call) => call.includes(' install '))).toEqual([
      'apt-get install -y -qq --no-install-recommends postgresql postgresql-client',
    ])
  })
})
