/**
 * The command line of the standalone bench scripts (`--events=5000 --stores=redis`): each `--key=value`
 * as `key: 'value'`, a bare `--flag` as `flag: 'true'`. The scripts read their own keys and defaults.
 *
 * @param {readonly string[]} [argv] the arguments after the script's path
 * @returns {Record<string, string>}
 */
export function readArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(
    argv.map((arg) => {
      const [key, value] = arg.replace(/^--/, '').split('=')
      return [key, value ?? 'true']
    }),
  )
}
