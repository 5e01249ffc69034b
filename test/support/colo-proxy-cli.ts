/**
 * How tests and benches start the colo-proxy CLI from source: with the Node flags its executable's
 * shebang passes (proxy/cli/node-flags.ts), so that what they measure and check is the process
 * users run, and tsx loading the TypeScript.
 */

import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../proxy/cli/node-flags.js';

/** The CLI's entry point in the source tree. */
export const MAIN = fileURLToPath(new URL('../../proxy/cli/main.ts', import.meta.url));

/** The argv after `node` that runs `colo-proxy ...args` from source. */
export function coloProxyArgv(args: readonly string[]): string[] {
  return [...NODE_FLAGS, '--import', 'tsx', MAIN, ...args];
}

/** `node` running `colo-proxy ...args` from source as one shell command line, every word quoted. */
export function coloProxyCommandLine(args: readonly string[]): string {
  return [process.execPath, ...coloProxyArgv(args)].map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
}
