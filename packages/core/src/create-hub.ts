/**
 * Making hubs: `createHub` (the one constructor applications use) and `hubFromOptions` (for
 * adapters that take a hub or the options to build one), with the brand that tells a hub made by
 * another copy of `@rewind/core` apart from something that is not a hub at all.
 */
import { RewindError } from './errors.js'
import { Hub } from './hub.js'
import type { HubOptions } from './hub-options.js'
import type { AsyncHistoryStore, SyncHistoryStore } from './store.js'
import { CORE_VERSION } from './version.js'

/**
 * Every hub carries the version of the copy of `@rewind/core` that made it, under a key from the
 * global symbol registry that every copy sees. `instanceof Hub` only knows this copy's class, so
 * without the brand a hub from a second copy (two versions installed, or one loaded through both
 * `import` and `require`) could only be refused as "not a hub", which hides the cause.
 * Set on the prototype so the brand adds no member to the class's public type.
 */
const kHubVersion = Symbol.for('rewind.hub')
Object.defineProperty(Hub.prototype, kHubVersion, { value: CORE_VERSION })

/**
 * Creates a hub. Without a `store` it keeps history in memory and `publish` returns the id at once;
 * with an asynchronous store (such as `@rewind/redis`) `publish` returns a promise of the id.
 *
 * @example
 * ```ts
 * const hub = createHub({ history: { maxEvents: 500 } })
 * http.createServer((req, res) => hub.serve(req, res, 'news')).listen(3000)
 * hub.publish('news', { event: 'headline', data: { title: 'Hello' } })
 * ```
 */
export function createHub(options?: HubOptions & { store?: SyncHistoryStore | undefined }): Hub<string>
export function createHub(options: HubOptions & { store: AsyncHistoryStore }): Hub<Promise<string>>
export function createHub(options?: HubOptions): Hub<string> | Hub<Promise<string>>
export function createHub(options: HubOptions = {}): Hub<string> | Hub<Promise<string>> {
  return new Hub(options) as Hub<string>
}

/**
 * For adapters that take either an existing hub or the options to build one: returns `options.hub`
 * when given, else a new hub built from `options` (with `defaults` under them). Giving a hub and hub
 * options together is refused, since the options would be silently ignored.
 *
 * @example
 * ```ts
 * const hub = hubFromOptions({ hub: sharedHub }) // or hubFromOptions({ history: { maxEvents: 50 } })
 * ```
 */
export function hubFromOptions(
  options: HubOptions & { hub?: Hub<string> | Hub<Promise<string>> | undefined },
  defaults: HubOptions = {},
): Hub<string | Promise<string>> {
  const { hub, ...hubOptions } = options
  if (hub === undefined) return new Hub({ ...defaults, ...hubOptions }) as Hub<string | Promise<string>>
  if (!(hub instanceof Hub)) {
    const version = (hub as { [kHubVersion]?: unknown } | null)?.[kHubVersion]
    if (typeof version === 'string') {
      const sameVersion =
        version === CORE_VERSION
          ? `; if both are ${version}, one is loaded with import and one with require: use one`
          : ''
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        `hub was made by another copy of @rewind/core: two copies of @rewind/core are installed (${CORE_VERSION} and ${version}): dedupe them (npm dedupe / pnpm dedupe) so that the app and the adapters share one${sameVersion}`,
        { field: 'hub' },
      )
    }
    throw new RewindError('ERR_INVALID_ARGUMENT', 'hub must be a hub made by createHub()', { field: 'hub' })
  }
  const ignored = Object.keys(hubOptions).filter((key) => hubOptions[key as keyof HubOptions] !== undefined)
  if (ignored.length > 0) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `pass either a hub or hub options, not both: ${ignored.join(', ')} would be ignored; give them to createHub() instead`,
      { field: 'hub' },
    )
  }
  return hub as Hub<string | Promise<string>>
}
