import { answersTest } from '../../shared/test/answers.js'

answersTest('express-live', new URL('../index.js', import.meta.url))
