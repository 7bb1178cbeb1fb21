import { smokeTest } from '../../shared/test/smoke.js'

smokeTest('hono-live', new URL('../index.js', import.meta.url))
