import { smokeTest } from '../../shared/test/smoke.js'

smokeTest('fastify-live', new URL('../index.js', import.meta.url))
