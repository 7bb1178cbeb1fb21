import { answersTest } from '../../shared/test/answers.js'

answersTest('fastify-live', new URL('../index.js', import.meta.url))
