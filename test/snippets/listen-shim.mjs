/**
 * Loaded with `node --import` before a README program: the README's `listen(3000)` becomes a
 * listen on a free port of 127.0.0.1, so programs run side by side and never reach beyond this
 * machine, and the port is sent to the test over the IPC channel.
 */
import net from 'node:net'

const README_PORT = 3000
const listen = net.Server.prototype.listen

net.Server.prototype.listen = function (...args) {
  const [first] = args
  if (first === README_PORT) {
    // listen(3000[, host][, callback]): keep only the callback.
    const callback = args.find((arg) => typeof arg === 'function')
    args = [{ port: 0, host: '127.0.0.1' }, ...(callback ? [callback] : [])]
  } else if (typeof first === 'object' && first !== null && first.port === README_PORT) {
    // Fastify resolves `localhost` itself and passes the host: keep a loopback one.
    const host = first.host === '::1' ? '::1' : '127.0.0.1'
    args = [{ ...first, port: 0, host }, ...args.slice(1)]
  } else {
    return listen.apply(this, args)
  }
  this.once('listening', () => {
    const { address, port } = this.address()
    process.send?.({ address, port })
  })
  return listen.apply(this, args)
}
