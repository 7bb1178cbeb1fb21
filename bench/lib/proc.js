/** Readings of a process from /proc (Linux): CPU ticks and resident memory. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** utime + stime of `pid`, in clock ticks (see {@link ticksPerSecond}). */
export function readCpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  // The command name (field 2) may contain spaces; the fields after it start with the state (field 3).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

/** VmRSS of `pid`, in KiB. */
export function readRssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1')
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (match === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(match[1])
}

/** Clock ticks per second of /proc/<pid>/stat (CLK_TCK), 100 unless getconf says otherwise. */
export function ticksPerSecond() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
}
