/** The bench's own line to Redis: one command at a time over RESP, no client library needed. */
import net from 'node:net'

/** Sends one command to Redis over RESP (no client library needed); resolves with the raw reply. */
export function redisCommand(url, ...args) {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port) || 6379 })
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('redis: no reply in 2 s'))
    }, 2000)
    socket.setEncoding('utf8')
    socket.on('connect', () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`)
    })
    socket.on('data', (chunk) => {
      reply += chunk
      if (complete(reply)) {
        clearTimeout(timer)
        socket.end()
        resolve(reply)
      }
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/** Whether `reply` is whole: a bulk string (`$<length>`, e.g. INFO) may arrive in several chunks. */
function complete(reply) {
  if (!reply.endsWith('\r\n')) return false
  if (!reply.startsWith('$')) return true
  const head = reply.indexOf('\r\n')
  const length = Number(reply.slice(1, head))
  return length < 0 || Buffer.byteLength(reply) >= head + 2 + length + 2
}

/**
 * Deletes every key that starts with `prefix` (a bench's own, which holds no glob characters), in
 * one script on the server: a store may keep more than one key per stream. Resolves with how many.
 */
export async function deletePrefixed(url, prefix) {
  const script =
    "local n = 0 for _, key in ipairs(redis.call('KEYS', ARGV[1])) do n = n + redis.call('DEL', key) end return n"
  const reply = await redisCommand(url, 'EVAL', script, '0', `${prefix}*`)
  if (!reply.startsWith(':')) throw new Error(`redis: ${reply.trim()}`)
  return Number(reply.slice(1))
}
