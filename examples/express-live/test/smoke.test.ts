import { smokeTest } from '../../shared/test/smoke.js'

smokeTest('express-live', new URL('../index.js', import.meta.url))
