/**
 * Serves the conformance app in Bun or Deno on a free port of 127.0.0.1, with the hub options of the
 * `APP_OPTIONS` environment variable (JSON); prints `listening <port>` once it accepts connections.
 */
import { createFetchApp } from './fetch-app.ts'

declare const Bun: { serve(options: object): { port: number } } | undefined
declare const Deno:
  | {
      env: { get(name: string): string | undefined }
      serve(options: object, handler: (request: Request) => Response | Promise<Response>): unknown
    }
  | undefined

// Bun has Node's `process`; Deno asks for the permission to read this one variable.
const options = JSON.parse((typeof Deno !== 'undefined' ? Deno.env.get('APP_OPTIONS') : envOptions()) ?? '{}')

function envOptions(): string | undefined {
  const { APP_OPTIONS } = process.env
  return APP_OPTIONS
}
const { app } = createFetchApp(options)

if (typeof Bun !== 'undefined') {
  const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: app.fetch })
  console.log(`listening ${server.port}`)
} else if (typeof Deno !== 'undefined') {
  Deno.serve(
    {
      port: 0,
      hostname: '127.0.0.1',
      onListen: ({ port }: { port: number }) => console.log(`listening ${port}`),
    },
    app.fetch,
  )
} else {
  throw new Error('run this file with bun or deno')
}
