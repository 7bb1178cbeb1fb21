/**
 * The example's model: the AI SDK's own test model (`ai/test`), which answers every prompt with the
 * words `w0 w1 … w{tokens-1}`, one word per text delta, one every `interval` milliseconds. No
 * network, and the same answer every time, so a run can be compared byte for byte.
 */
import { MockLanguageModelV3, simulateReadableStream } from 'ai/test'

/**
 * @param {number} tokens words in each answer
 * @param {number} interval milliseconds between two words
 */
export function wordModel(tokens, interval) {
  return new MockLanguageModelV3({
    doStream: async () => ({
      stream: simulateReadableStream({ chunks: wordParts(tokens), chunkDelayInMs: interval }),
    }),
  })
}

/**
 * The model's stream parts for one answer.
 * @param {number} tokens
 * @returns {any[]} the parts (`LanguageModelV3StreamPart`, a type of a package the example does not import)
 */
export function wordParts(tokens) {
  /** @type {any[]} */
  const parts = [
    { type: 'stream-start', warnings: [] },
    { type: 'text-start', id: 'text' },
  ]
  for (let i = 0; i < tokens; i++)
    parts.push({ type: 'text-delta', id: 'text', delta: i === 0 ? 'w0' : ` w${i}` })
  parts.push(
    { type: 'text-end', id: 'text' },
    {
      type: 'finish',
      finishReason: { unified: 'stop', raw: 'stop' },
      usage: {
        inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
        outputTokens: { total: tokens, text: tokens, reasoning: 0 },
      },
    },
  )
  return parts
}
