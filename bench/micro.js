/**
 * Micro-benchmarks of @rewind/core's hot paths with tinybench, so regressions show:
 * framing, history append, read-after-id, and one publish fanned out to in-process sinks.
 *
 *   node micro.js [--quick] [--json]
 */
import { createHub, createMemoryStore } from '@rewind/core'
import { encodeEvent } from '@rewind/core/frame'
import { Bench } from 'tinybench'

const quick = process.argv.includes('--quick')
const json = process.argv.includes('--json')

const data128 = JSON.stringify({ t: 1_700_000_000_000_000, p: 'x'.repeat(99) })
const multiLine = 'first line\nsecond line\r\nthird line'

/**
 * One stream's history in a memory store, with `count` events of 128 B (the default bound is 1000):
 * the path the hub takes, through the store's public methods.
 */
function filledHistory(count) {
  const store = createMemoryStore()
  const history = {
    append: (event) => store.append('s', event),
    read: (after, limit) => store.read('s', after, limit),
  }
  const ids = []
  for (let i = 0; i < count; i++)
    ids.push(history.append({ event: undefined, data: data128, value: data128 }).id)
  return { history, ids }
}

/** A sink that accepts everything and goes nowhere: only the core's own cost is measured. */
function nullSink() {
  return {
    writableLength: 0,
    write: () => true,
    end: () => {},
    destroy: () => {},
    on: () => {},
    removeListener: () => {},
  }
}

const bench = new Bench({
  time: quick ? 150 : 1000,
  warmupTime: quick ? 50 : 200,
  iterations: 64,
})

bench.add('framing: encodeEvent (id + 128 B JSON)', () => {
  encodeEvent({ id: 'k2j4h5g6-123456', data: data128 })
})
bench.add('framing: encodeEvent (event + 3-line data)', () => {
  encodeEvent({ id: 'k2j4h5g6-123456', event: 'update', data: multiLine })
})

const appending = filledHistory(1000).history
bench.add('history: append to a full history (1000, evicting)', () => {
  appending.append({ event: undefined, data: data128, value: data128 })
})

const { history, ids } = filledHistory(1000)
bench.add('history: read 256 after an id 500 back', () => {
  history.read(ids[499], 256)
})
bench.add('history: read after the newest id (nothing new)', () => {
  history.read(ids[999], 256)
})
bench.add('history: read after an unknown id (gap)', () => {
  history.read('zzzzzzzz-1', 256)
})

const hub = createHub({ heartbeatInterval: 0 })
for (let i = 0; i < 1000; i++) hub.subscribe('s', nullSink())
bench.add('hub: publish 1 event + flush to 1000 in-process subscribers', async () => {
  hub.publish('s', { data: data128 })
  await new Promise(setImmediate)
})

await bench.run()
await hub.close()

const rows = bench.tasks.map((task) => {
  const result = task.result
  const ok = result.state === 'completed'
  return {
    name: task.name,
    opsPerSecond: ok ? result.throughput.mean : null,
    meanNs: ok ? result.latency.mean * 1e6 : null,
    p99Ns: ok ? result.latency.p99 * 1e6 : null,
    rme: ok ? result.latency.rme : null,
    samples: ok ? result.latency.samplesCount : 0,
    error: ok ? undefined : String(result.error ?? result.state),
  }
})

if (json) process.stdout.write(`${JSON.stringify({ node: process.version, rows })}\n`)
else {
  console.table(
    rows.map((row) => ({
      task: row.name,
      'ops/s': row.opsPerSecond === null ? row.error : Math.round(row.opsPerSecond).toLocaleString('en-US'),
      'mean (ns)': row.meanNs === null ? '-' : Math.round(row.meanNs).toLocaleString('en-US'),
      'p99 (ns)': row.p99Ns === null ? '-' : Math.round(row.p99Ns).toLocaleString('en-US'),
      '±%': row.rme === null ? '-' : row.rme.toFixed(2),
    })),
  )
}
