// Express 4 ships no types and `express4` is an alias of it; its API used here matches Express 5's.
declare module 'express4' {
  import type express from 'express'

  const express4: typeof express
  export default express4
}
