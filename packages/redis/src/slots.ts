/**
 * Redis Cluster's key → slot function (CRC16-CCITT/XMODEM of the key's hash tag, modulo 16384), so
 * the live tail can tell which shard holds a stream without asking Redis. It must agree with
 * `CLUSTER KEYSLOT` byte for byte; a test checks it against a real cluster.
 * @see https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#key-distribution-model
 */

/** Number of hash slots of a Redis Cluster. */
export const SLOTS = 16384

const TABLE = new Uint16Array(256)
for (let byte = 0; byte < 256; byte++) {
  let crc = byte << 8
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  TABLE[byte] = crc
}

function crc16(bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!
  return crc
}

/**
 * The slot of `key` as Redis encodes it (UTF-8): only the part between the first `{` and the first
 * `}` after it is hashed, when that part is not empty; otherwise the whole key.
 */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8')
  const open = bytes.indexOf(0x7b)
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % SLOTS
  }
  return crc16(bytes) % SLOTS
}
