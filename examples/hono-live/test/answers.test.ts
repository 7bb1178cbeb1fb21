import { answersTest } from '../../shared/test/answers.js'

answersTest('hono-live', new URL('../index.js', import.meta.url))
