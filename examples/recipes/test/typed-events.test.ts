import { sse } from '@rewind/express'
import express from 'express'
import { describe, expect, expectTypeOf, it, vi } from 'vitest'
import { isShipped, type OrderEvents, on, typedPublisher } from '../typed-events.js'
import { follow, serveRecipe, WAIT } from './follow.js'

describe('recipe: typed payloads', () => {
  const events = sse()
  const app = express().use(events)
  app.get('/orders/events', (_req, res) => res.sse('orders'))
  const publish = typedPublisher<OrderEvents>(events, 'orders')
  const served = serveRecipe(app, events)

  it('types publish by event name', () => {
    expectTypeOf(publish).parameter(0).toEqualTypeOf<'order.created' | 'order.shipped'>()
    expectTypeOf(publish<'order.shipped'>)
      .parameter(1)
      .toEqualTypeOf<{ orderId: string; carrier: string }>()
    // Never called: the point is that it does not compile.
    const wrongPayload = () =>
      // @ts-expect-error: 'order.shipped' carries a carrier, not items
      publish('order.shipped', { orderId: 'A-1', items: [] })
    expectTypeOf(wrongPayload).toBeFunction()
  })

  it('hands the client parsed payloads that passed the check, and the rest to onInvalid', async () => {
    const client = follow(`${served.base}/orders/events`, { names: [] })
    served.sources.push(client.source)
    const shipped: { data: OrderEvents['order.shipped']; id: string }[] = []
    const invalid: string[] = []
    on<OrderEvents, 'order.shipped'>(
      client.source,
      'order.shipped',
      isShipped,
      (data, id) => shipped.push({ data, id }),
      (raw) => invalid.push(raw),
    )
    await client.opened

    publish('order.created', { orderId: 'A-1', items: [{ sku: 'beans', qty: 2 }] })
    const id = publish('order.shipped', { orderId: 'A-1', carrier: 'DHL' })
    // Something that bypassed the types (an older server, a hand-written publish).
    events.publish('orders', { event: 'order.shipped', data: { orderId: 42 } })
    events.publish('orders', { event: 'order.shipped', data: 'not JSON {' })
    await vi.waitFor(() => expect(shipped.length + invalid.length).toBe(3), WAIT)
    expect(shipped).toEqual([{ data: { orderId: 'A-1', carrier: 'DHL' }, id }])
    expect(invalid).toEqual(['{"orderId":42}', 'not JSON {'])
  })
})
