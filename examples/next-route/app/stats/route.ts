import { events } from '../../lib/events'

/** `GET /stats`: the hub's counters and gauges, for metrics (and the tests). */
export function GET(): Response {
  return Response.json(events.hub.stats())
}
export const dynamic = 'force-dynamic'
