import { events } from '../../../lib/events'

/** `GET /responses/:id`: the answer from the client's position to its end; 204 after it, 404 unknown. */
export async function GET(request: Request, context: { params: Promise<{ id: string }> }): Promise<Response> {
  return events.serve(request, { response: (await context.params).id })
}
export const dynamic = 'force-dynamic'
