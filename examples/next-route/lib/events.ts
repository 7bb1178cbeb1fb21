/** The one hub of the app: every route of this server process imports it. */
import { sse } from '@rewind/fetch'

const { MAX_DURATION = '300000' } = process.env

export const events = sse({
  // Ends each stream before Vercel's 300 s limit; the client comes back at once from its position.
  maxDuration: Number(MAX_DURATION),
})
