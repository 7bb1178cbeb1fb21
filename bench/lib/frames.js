/**
 * How the load clients count events without parsing them: every data frame of the bench's servers
 * ends in `}\n\n` (its data is a JSON object), heartbeat comments end in `:\n\n` and are not counted.
 */
const FRAME_END = Buffer.from('}\n\n')
const CLOSE_BRACE = 0x7d
const LF = 0x0a

/**
 * Counts the `}\n\n` in buf[start, end), including one split across the previous read of the same
 * socket. `carry.tail` remembers how a read ended (1: on `}`, 2: on `}\n`, 0: otherwise).
 */
export function countFrames(carry, buf, start, end) {
  const len = end - start
  let n = 0
  const prev = carry.tail
  if (prev === 2 && buf[start] === LF) n++
  else if (prev === 1 && len >= 2 && buf[start] === LF && buf[start + 1] === LF) n++
  const view = buf.subarray(start, end)
  let i = view.indexOf(FRAME_END)
  while (i !== -1) {
    n++
    i = view.indexOf(FRAME_END, i + 3)
  }
  const last = buf[end - 1]
  if (last === CLOSE_BRACE) carry.tail = 1
  else if (last === LF && len >= 2 && buf[end - 2] === CLOSE_BRACE) carry.tail = 2
  else if (last === LF && len === 1 && prev === 1) carry.tail = 2
  else carry.tail = 0
  return n
}
