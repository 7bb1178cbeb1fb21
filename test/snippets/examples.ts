/**
 * What a TSDoc `@example` of packages/*\/src may use without declaring it, by package: the
 * package's own exports (an example shows its package, so it does not repeat the import) and the
 * names the surrounding TSDoc takes for granted (the hub, the app, the request).
 *
 * test/readme-snippets.test.ts puts the line of each name an example uses, and does not declare
 * itself, above the example, then type-checks it as a fragment (server code against
 * preamble.d.ts, or, for `@rewind/client` and `@rewind/ai-sdk/client`, as a browser block against
 * page.d.ts). An example that has `import` lines of its own is complete and gets nothing added.
 * A name an example needs and no entry gives fails the check ("Cannot find name"): add it here.
 */
export type ExampleContext = Readonly<Record<string, string>>

const node = {
  http: "import http from 'node:http'",
  req: "declare const req: import('node:http').IncomingMessage",
  res: "declare const res: import('node:http').ServerResponse",
  server: "declare const server: import('node:http').Server",
} as const

export const EXAMPLE_CONTEXT: Readonly<Record<string, ExampleContext>> = {
  core: {
    ...node,
    createHub: "import { createHub } from '@rewind/core'",
    RewindError: "import { RewindError } from '@rewind/core'",
    throttleErrors: "import { throttleErrors } from '@rewind/core'",
    hubFromOptions: "import { hubFromOptions } from '@rewind/core/adapter'",
    ServedStreams: "import { ServedStreams } from '@rewind/core/adapter'",
    encodeEvent: "import { encodeEvent } from '@rewind/core/frame'",
    hub: "declare const hub: import('@rewind/core').Hub<string>",
    sharedHub: "declare const sharedHub: import('@rewind/core').Hub<string>",
    options: "declare const options: { hub?: import('@rewind/core').Hub<string> }",
    name: 'declare const name: string',
    data: 'declare const data: unknown',
    model:
      'declare const model: { stream(prompt: string, options: { signal: AbortSignal }): AsyncIterable<string> }',
    prompt: 'declare const prompt: string',
    logger: 'declare const logger: { error(fields: object): void }',
  },
  express: {
    server: node.server,
    sse: "import { sse } from '@rewind/express'",
  },
  fastify: {},
  postgres: {},
  redis: {},
  fetch: {
    sse: "import { sse } from '@rewind/fetch'",
    app: "declare const app: import('hono').Hono",
    events: "declare const events: import('@rewind/fetch').FetchSse<string>",
  },
  'ai-sdk': {
    createChatStreams: "import { createChatStreams } from '@rewind/ai-sdk'",
    streamText: "import { streamText } from 'ai'",
    convertToModelMessages: "import { convertToModelMessages } from 'ai'",
  },
  'ai-sdk/client': {
    RewindChatTransport: "import { RewindChatTransport } from '@rewind/ai-sdk/client'",
    // @ai-sdk/react is the page's dependency, not the workspace root's: its hook, as far as it
    // concerns the transport.
    useChat:
      "declare function useChat(options: { transport: import('ai').ChatTransport<import('ai').UIMessage>; resume?: boolean }): { messages: import('ai').UIMessage[]; sendMessage(message: { text: string }): Promise<void> }",
  },
  client: {
    createEventSource: "import { createEventSource } from '@rewind/client'",
    PositionStore: "import type { PositionStore } from '@rewind/client'",
    source: "declare const source: import('@rewind/client').RewindEventSource",
    render: 'declare function render(data: string): void',
    signIn: 'declare function signIn(): void',
    Order: 'interface Order { id: string }',
  },
}

/** The context of an example in `packages/<dir>/src/<file>`: `ai-sdk/client` for that entry's module. */
export function contextKey(dir: string, file: string): string {
  return dir === 'ai-sdk' && file === 'client.ts' ? 'ai-sdk/client' : dir
}
