import { events } from '../../lib/events'

/** `POST /responses {"words": [...]}` → 201 `{"id"}`: an answer that streams its words, then ends. */
export async function POST(request: Request): Promise<Response> {
  const { words } = (await request.json()) as { words: string[] }
  const { id } = await events.responses.start(async function* () {
    for (const word of words) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      yield word
    }
  })
  return Response.json({ id }, { status: 201 })
}
