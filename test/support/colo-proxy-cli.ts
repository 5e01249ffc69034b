/**
 * How tests and benches start the colo-proxy CLI: with the Node flags its executable's shebang
 * passes (proxy/cli/node-flags.ts), so that what they measure and check is the process users run.
 * Tests run it from source, tsx loading the TypeScript; under bench/shipped-code.mjs, which
 * resolves the sources to their build in dist/, the entry point resolves there too, and the child
 * runs the shipped dist/proxy/cli/main.js exactly as the executable does.
 */

import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../proxy/cli/node-flags.js';

/** The CLI's entry point, as this process resolves it: the source, or its build (see the header). */
export const MAIN = fileURLToPath(import.meta.resolve('../../proxy/cli/main.js'));

/** The argv after `node` that runs `colo-proxy ...args`. */
export function coloProxyArgv(args: readonly string[]): string[] {
  return MAIN.endsWith('.ts') ? [...NODE_FLAGS, '--import', 'tsx', MAIN, ...args] : [...NODE_FLAGS, MAIN, ...args];
}

/** `node` running `colo-proxy ...args` as one shell command line, every word quoted. */
export function coloProxyCommandLine(args: readonly string[]): string {
  return [process.execPath, ...coloProxyArgv(args)].map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
}
