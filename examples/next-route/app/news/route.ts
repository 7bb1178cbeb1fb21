import { events } from '../../lib/events'

/** `POST /news {"data": ...}` → 201 `{"id"}`. */
export async function POST(request: Request): Promise<Response> {
  const body = (await request.json().catch(() => undefined)) as { data?: unknown } | undefined
  if (body === undefined || body.data === undefined) {
    return Response.json({ error: 'send JSON with a data field' }, { status: 400 })
  }
  return Response.json({ id: events.publish('news', { data: body.data }) }, { status: 201 })
}
