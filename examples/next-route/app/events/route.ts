import { events } from '../../lib/events'

/** `GET /events`: the `news` feed, replayed from the client's `Last-Event-ID`, then live. */
export const GET = events.handler('news')
// An event stream is never cached or prerendered.
export const dynamic = 'force-dynamic'
