#!/usr/bin/env -S node --single-threaded-gc
/**
 * The `colo-proxy` executable: global flags (`--help`, `--version`), subcommand dispatch and the
 * one place where errors become exit codes. A `UsageError` or `InputError` prints one line,
 * `colo-proxy: COMMAND: message`, and exits 2; `Interrupted` (SIGINT, SIGTERM) one line and 128 +
 * the signal's number; any other error is a bug and prints its stack (exit 70). Output to a
 * closed pipe ends the command quietly with 141, as SIGPIPE would.
 * Only commands that work are registered here.
 */

import { constants } from 'node:os';
import type { Command } from './command.js';
import { formatFlagHelp } from './flags.js';
import { BrokenPipe, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, InputError, Interrupted, UsageError } from './errors.js';
import { packageVersion } from './version.js';
import { inspectCommand } from './inspect.js';
import { compareCommand } from './compare.js';
import { replayCommand } from './replay.js';
import { runCommand } from './run.js';
import { bridgeCommand } from './bridge.js';

const commands: readonly Command[] = [compareCommand, replayCommand, runCommand, bridgeCommand, inspectCommand];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'colo-proxy: a userspace COLO proxy. It compares the output of a primary and a secondary VM',
    'by TCP sequence range and releases what matches or asks for a checkpoint.',
    '',
    'Usage: colo-proxy COMMAND [flags] [args]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Flags:',
    '  --help, -h     show this help, or a command\'s help with COMMAND --help',
    '  --version, -V  print the version',
    '',
  ].join('\n');
}

function commandHelp(c: Command): string {
  const table = { ...c.flags, help: { type: 'boolean', help: 'show this help' } } as const;
  return [`Usage: colo-proxy ${c.name} ${c.synopsis}`, '', c.description, '', 'Flags:', formatFlagHelp(table), ''].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    if (first === undefined) {
      process.stderr.write(mainHelp());
      return EXIT_USAGE;
    }
    process.stdout.write(topic ? commandHelp(topic) : mainHelp());
    return EXIT_OK;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`colo-proxy ${packageVersion()}\n`);
    return EXIT_OK;
  }
  const command = commands.find((c) => c.name === first);
  if (!command) {
    const what = first.startsWith('-') ? `unknown flag ${first}` : `unknown command "${first}"`;
    throw new UsageError(`${what} (commands: ${commands.map((c) => c.name).join(', ')}; see colo-proxy --help)`);
  }
  const end = rest.indexOf('--');
  const flagPart = end === -1 ? rest : rest.slice(0, end);
  if (flagPart.includes('--help') || flagPart.includes('-h')) {
    process.stdout.write(commandHelp(command));
    return EXIT_OK;
  }
  return command.run(rest).catch((err: unknown) => {
    throw namedFor(command, err);
  });
}

/**
 * A one-line error from a command names the command, whichever module raised it: an endpoint or a
 * capture file is checked by code shared by several commands, which cannot know which one ran.
 */
function namedFor(command: Command, err: unknown): unknown {
  const prefix = `${command.name}: `;
  if ((err instanceof UsageError || err instanceof InputError || err instanceof Interrupted) && !err.message.startsWith(prefix)) {
    err.message = prefix + err.message;
  }
  return err;
}

// A reader of the output that went away (`colo-proxy replay ... | head -1`) ends the command
// quietly, with the status a shell gives a program stopped by SIGPIPE (which Node ignores, so
// writes fail with EPIPE). A reader of the log that went away (a `logger` or `tee` restarted)
// only ends the log: a comparator must not die, its held frames unreleased, for want of one.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(128 + constants.signals.SIGPIPE);
  // Anything else (a full disk under `> report.json`) is the output's fault: one line, exit 2.
  process.stderr.write(`colo-proxy: cannot write to standard output: ${err.code ?? err.message}\n`);
  process.exit(EXIT_USAGE);
});
process.stderr.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof BrokenPipe) {
      process.exitCode = 128 + constants.signals.SIGPIPE;
    } else if (err instanceof Interrupted) {
      process.stderr.write(`colo-proxy: ${err.message}\n`);
      process.exitCode = 128 + (constants.signals[err.signal] ?? 0);
    } else if (err instanceof UsageError || err instanceof InputError) {
      process.stderr.write(`colo-proxy: ${err.message}\n`);
      process.exitCode = EXIT_USAGE;
    } else {
      process.stderr.write(`colo-proxy: internal error (please report): ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = EXIT_INTERNAL;
    }
  },
);
