/**
 * Errors the CLI reports to the user as one line and exit code 2: a bad command line
 * (`UsageError`) or bad input such as an unreadable or corrupt file (`InputError`). Anything
 * else reaching the top level is a bug in colo-proxy and is reported with its stack.
 */

export const EXIT_OK = 0;
/** The comparison found differences (used by commands that compare). */
export const EXIT_DIFFERENCES = 1;
export const EXIT_USAGE = 2;
/** An internal error: a bug in colo-proxy, reported with its stack trace. */
export const EXIT_INTERNAL = 70;

/** A command line that cannot be run: unknown flag, missing value, bad number, wrong arguments. */
export class UsageError extends Error {
  readonly code = 'usage';
  override name = 'UsageError';
}

/** The user stopped the command with a signal: one line, exit code 128 + the signal's number, as a shell reports it. */
export class Interrupted extends Error {
  override name = 'Interrupted';
  constructor(
    message: string,
    readonly signal: NodeJS.Signals,
  ) {
    super(message);
  }
}

/**
 * The reader of a pipe the command writes to went away (`--out /dev/stdout | head`): the command
 * ends quietly with the status a shell gives a program stopped by SIGPIPE (Node ignores the
 * signal, so the write fails with EPIPE instead).
 */
export class BrokenPipe extends Error {
  override name = 'BrokenPipe';
}

/** Input that cannot be used: a missing, unreadable or corrupt file. */
export class InputError extends Error {
  override name = 'InputError';
  constructor(
    message: string,
    /** Stable dotted code such as `capture.truncated` or `capture.io`. */
    readonly code: string,
  ) {
    super(message);
  }
}
