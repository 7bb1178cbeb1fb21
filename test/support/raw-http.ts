/**
 * The HTTP/1.1 response reader of the raw-socket client (`raw-client.ts`): it sends bytes no HTTP
 * client library would, then reads the answer itself.
 */

/**
 * An HTTP/1.1 response read off a socket as its bytes arrive: the head (status, headers with their
 * names lowercased), then the body, its chunked transfer coding removed, handed to `onBody` piece by
 * piece (a piece may end inside a UTF-8 sequence: decode it with a streaming decoder).
 */
export class Http1Response {
  /** The status code, once the head has arrived. */
  status: number | undefined
  /** The response headers, names lowercased. */
  readonly headers: Record<string, string> = {}
  /** The chunked body ended (`0\r\n\r\n`): a clean end of the stream. */
  ended = false
  private head: Buffer = Buffer.alloc(0)
  private inBody = false
  private chunked = false
  /** Bytes of the current chunk still to read; -1 while reading a chunk-size line. */
  private chunkLeft = -1
  private pending: Buffer = Buffer.alloc(0)

  constructor(private readonly onBody: (data: Buffer) => void) {}

  /** Reads the next bytes of the socket. */
  feed(data: Buffer): void {
    if (!this.inBody) {
      this.head = Buffer.concat([this.head, data])
      const end = this.head.indexOf('\r\n\r\n')
      if (end === -1) return
      const lines = this.head.subarray(0, end).toString('latin1').split('\r\n')
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':')
        this.headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      this.chunked = this.headers['transfer-encoding'] === 'chunked'
      this.inBody = true
      const rest = this.head.subarray(end + 4)
      this.head = Buffer.alloc(0)
      // The status last: a caller that waits for it finds the headers set.
      this.status = Number(lines[0]!.split(' ')[1])
      if (rest.length > 0) this.feed(rest)
      return
    }
    if (!this.chunked) {
      this.onBody(data)
      return
    }
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data])
    while (this.pending.length > 0 && !this.ended) {
      if (this.chunkLeft === -1) {
        const eol = this.pending.indexOf('\r\n')
        if (eol === -1) return
        const size = Number.parseInt(this.pending.subarray(0, eol).toString('latin1'), 16)
        if (size === 0) {
          this.ended = true
          return
        }
        this.chunkLeft = size
        this.pending = this.pending.subarray(eol + 2)
        continue
      }
      if (this.chunkLeft > 0) {
        const take = Math.min(this.chunkLeft, this.pending.length)
        this.onBody(this.pending.subarray(0, take))
        this.chunkLeft -= take
        this.pending = this.pending.subarray(take)
        continue
      }
      // The CRLF after a chunk's data.
      if (this.pending.length < 2) return
      this.pending = this.pending.subarray(2)
      this.chunkLeft = -1
    }
  }
}
