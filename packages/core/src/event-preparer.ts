/**
 * Turning what the application publishes into an event: the event name checked, the data
 * serialized once with the hub's serializer and held to `maxEventBytes`.
 */
import { RewindError } from './errors.js'
import { assertFieldValue, type Serializer, serializeData } from './frame.js'
import type { NewEvent } from './store.js'
import type { PublishInput } from './types.js'
import { assertStreamName } from './validation.js'

export class EventPreparer {
  constructor(
    private readonly serializer: Serializer,
    private readonly maxEventBytes: number,
  ) {}

  /** Validates and serializes an event (responses use it while the hub closes, to append their end). */
  prepare(stream: string, input: PublishInput): NewEvent {
    assertStreamName(stream)
    if (input === null || typeof input !== 'object') {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        `publish takes an event object { data, event? }, got ${input === null ? 'null' : typeof input}; wrap the value: publish(stream, { data: value })`,
        { field: 'data' },
      )
    }
    // An empty name is no name: the event is a `message` event, stored without one.
    const event = input.event === '' ? undefined : input.event
    if (event !== undefined) assertFieldValue('event', event)
    return { event, data: this.serialize(input.data), value: input.data }
  }

  /** Serializes event data (`ERR_SERIALIZE` on failure) and holds it to `maxEventBytes`. */
  serialize(value: unknown): string {
    const data = serializeData(value, this.serializer)
    this.assertSize(data)
    return data
  }

  private assertSize(data: string): void {
    // Most payloads are far below the limit; only count bytes when characters alone cannot decide.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a UTF-16 unit is at most 3 UTF-8 bytes, so counting bytes anyway (or at the boundary) decides the same
    if (data.length * 3 <= this.maxEventBytes) return
    const bytes = Buffer.byteLength(data)
    if (bytes > this.maxEventBytes) {
      throw new RewindError(
        'ERR_EVENT_TOO_LARGE',
        `event data is ${bytes} bytes, more than maxEventBytes (${this.maxEventBytes}); send a reference to the data, or raise maxEventBytes (and maxQueueBytes)`,
        { field: 'data' },
      )
    }
  }
}
