/**
 * The shape every subcommand has, so `main.ts` can list, document and dispatch them uniformly.
 * A command parses its own flags (with `parseFlags` over its `flags` table), does its work and
 * resolves to an exit code; it throws `UsageError`/`InputError` for problems the user can fix.
 */

import type { FlagTable } from './flags.js';

export interface Command {
  name: string;
  /** One line for the command list in `colo-proxy --help`. */
  summary: string;
  /** Usage line after `colo-proxy NAME`, e.g. `[flags] FILE`. */
  synopsis: string;
  /** A paragraph or two shown by `colo-proxy NAME --help`. */
  description: string;
  flags: FlagTable;
  /** Runs with the arguments after the command name; resolves to the process exit code. */
  run(argv: readonly string[]): Promise<number>;
}
