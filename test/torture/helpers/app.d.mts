import type { Server } from 'node:http'
import type { Hub, HubOptions, PublishInput } from '@rewind/core'

export type Adapter = 'express' | 'fastify'

export declare const ADAPTERS: readonly Adapter[]

export interface RunningApp {
  adapter: Adapter
  server: Server
  hub: Hub<string>
  port: number
  url(path?: string): string
  publish(stream: string, input: PublishInput): string
  close(): Promise<void>
  connections(): Promise<number>
}

export declare function startApp(
  adapter: Adapter,
  hubOptions?: HubOptions & { closeRetry?: number },
  fastifyOptions?: Record<string, unknown>,
  extras?: { wrapWrite?: boolean },
): Promise<RunningApp>
