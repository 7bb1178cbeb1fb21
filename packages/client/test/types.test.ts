/**
 * The public types where inference matters. These assertions are checked by `tsc` (the package's
 * typecheck includes the tests); at run time `expectTypeOf` does nothing, and the functions that
 * would open a source are never called.
 */
import { describe, expectTypeOf, it } from 'vitest'
import {
  createEventSource,
  type EndEvent,
  type GapEvent,
  type GapItem,
  type GapReason,
  type MessageItem,
  type OpenEvent,
  type RewindClientError,
  type RewindEventSource,
  type SourceErrorEvent,
  type SourceItem,
  type SourceMessageEvent,
} from '../src/index.js'

interface Order {
  id: number
  item: string
}
type Events = { message: string; order: Order }

describe('types', () => {
  it('types named listeners from the event map, and the source events by their classes', () => {
    const listen = (source: RewindEventSource<Events>) => {
      source.addEventListener('order', (event) => {
        expectTypeOf(event).toEqualTypeOf<SourceMessageEvent<Order>>()
        expectTypeOf(event.data).toEqualTypeOf<Order>()
      })
      source.addEventListener('gap', (event) => {
        expectTypeOf(event).toEqualTypeOf<GapEvent>()
        expectTypeOf(event.reason).toEqualTypeOf<GapReason>()
      })
      source.addEventListener('end', (event) => expectTypeOf(event).toEqualTypeOf<EndEvent>())
      source.addEventListener('open', (event) => expectTypeOf(event.headers).toEqualTypeOf<Headers>())
      source.addEventListener('error', (event) => {
        expectTypeOf(event).toEqualTypeOf<SourceErrorEvent>()
        expectTypeOf(event.error).toEqualTypeOf<RewindClientError>()
        expectTypeOf(event.reconnectDelay).toEqualTypeOf<number | undefined>()
      })
      source.onmessage = (event) => expectTypeOf(event.data).toEqualTypeOf<string>()
      source.onopen = (event) => expectTypeOf(event).toEqualTypeOf<OpenEvent>()
      // Any other name is still accepted, as by EventTarget.
      source.addEventListener('unlisted', (event: Event) => expectTypeOf(event).toEqualTypeOf<Event>())
    }
    expectTypeOf(listen).toBeFunction()
  })

  it('types the items of for await as a union narrowed by kind and type', () => {
    expectTypeOf<SourceItem<Events>>().toEqualTypeOf<
      MessageItem<'message', string> | MessageItem<'order', Order> | GapItem
    >()
    const loop = async (source: RewindEventSource<Events>) => {
      for await (const item of source) {
        if (item.kind === 'gap') expectTypeOf(item.reason).toEqualTypeOf<GapReason>()
        else if (item.type === 'order') expectTypeOf(item.data).toEqualTypeOf<Order>()
        else expectTypeOf(item.data).toEqualTypeOf<string>()
      }
    }
    expectTypeOf(loop).toBeFunction()
  })

  it('defaults to string data for every name', () => {
    const open = () => createEventSource('/events')
    expectTypeOf(open).returns.toEqualTypeOf<RewindEventSource<Record<string, string>>>()
    const listen = (source: RewindEventSource) =>
      source.addEventListener('anything', (event) => expectTypeOf(event.data).toEqualTypeOf<string>())
    expectTypeOf(listen).toBeFunction()
    expectTypeOf<RewindEventSource>().toExtend<EventTarget>()
  })
})
