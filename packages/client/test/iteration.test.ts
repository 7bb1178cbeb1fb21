/**
 * One `for await` channel, without a source: when it tells the source to go on, what it yields,
 * and how it ends (normally, with an error thrown once, or when the loop stops early).
 */
import { describe, expect, it } from 'vitest'
import { ItemChannel } from '../src/iteration.js'

/** A channel that counts the calls it makes to the source. */
function channel() {
  const calls = { ready: 0, returned: [] as ItemChannel<string>[] }
  const items = new ItemChannel<string>(
    () => calls.ready++,
    (returned) => calls.returned.push(returned),
  )
  return { items, calls }
}

describe('ItemChannel', () => {
  it('is busy until the loop asks for an item, and tells the source to go on only then', async () => {
    const { items, calls } = channel()
    expect(items.busy).toBe(true)
    items.push('a')
    expect(await items.next()).toEqual({ value: 'a', done: false })
    // A queued item is taken without asking the source for more.
    expect([calls.ready, items.busy]).toEqual([0, true])
    const next = items.next()
    expect([calls.ready, items.busy]).toEqual([1, false])
    items.push('b')
    expect(await next).toEqual({ value: 'b', done: false })
    expect(items.busy).toBe(true)
  })

  it('yields what was queued before it finished, then ends, and takes nothing more', async () => {
    const { items } = channel()
    items.push('a')
    items.push('b')
    items.finish()
    items.push('c')
    expect(items.busy).toBe(false)
    expect(await items.next()).toEqual({ value: 'a', done: false })
    expect(await items.next()).toEqual({ value: 'b', done: false })
    expect(await items.next()).toEqual({ value: undefined, done: true })
    expect(await items.next()).toEqual({ value: undefined, done: true })
  })

  it('ends a waiting loop when it finishes', async () => {
    const { items } = channel()
    const next = items.next()
    items.finish()
    expect(await next).toEqual({ value: undefined, done: true })
  })

  it('throws the error it finished with once, to a waiting loop or the next one, then just ends', async () => {
    const { items } = channel()
    const waiting = items.next()
    const error = new Error('stopped')
    items.finish(error)
    // A second finish changes nothing: the first error stands.
    items.finish(new Error('later'))
    await expect(waiting).rejects.toBe(error)
    expect(await items.next()).toEqual({ value: undefined, done: true })

    const later = channel().items
    later.push('a')
    later.finish(error)
    expect(await later.next()).toEqual({ value: 'a', done: false })
    await expect(later.next()).rejects.toBe(error)
    expect(await later.next()).toEqual({ value: undefined, done: true })
  })

  it('drops what is queued and tells the source once when the loop stops early', async () => {
    const { items, calls } = channel()
    items.push('a')
    expect(await items.return()).toEqual({ value: undefined, done: true })
    expect(await items.return()).toEqual({ value: undefined, done: true })
    expect(calls.returned).toEqual([items])
    expect(items.busy).toBe(false)
    expect(await items.next()).toEqual({ value: undefined, done: true })
    // Once finished by the source, stopping the loop has nothing to tell it.
    const finished = channel()
    finished.items.finish()
    await finished.items.return()
    expect(finished.calls.returned).toEqual([])
  })

  it('is its own iterator, for `for await`', async () => {
    const { items } = channel()
    expect(items[Symbol.asyncIterator]()).toBe(items)
    items.push('a')
    items.finish()
    const seen: string[] = []
    for await (const item of items) seen.push(item)
    expect(seen).toEqual(['a'])
  })
})
