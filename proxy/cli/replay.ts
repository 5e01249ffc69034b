/**
 * `colo-proxy replay`: what would the comparator have done with this traffic? Replays a
 * primary and a secondary capture (and optionally the client's) through the comparator core on
 * a virtual clock with a simulated checkpoint controller, and reports every release, hold and
 * checkpoint and why. Exit code 0 when the outputs never diverged, 1 when a checkpoint was
 * needed, 2 for a usage or input error.
 */

import { fstatSync, statSync, type Stats } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { SingleBar } from 'cli-progress';
import { HEADER_FIELDS, type HeaderField, type SequenceMode } from '../../compare/index.js';
import { CaptureFormatError } from '../framing/capture.js';
import { CaptureFileError } from '../ports/capture-file.js';
import { systemReason } from '../ports/system-reason.js';
import { parseMac } from '../replay/guest.js';
import { isEpisodeFile, outTarget } from '../replay/captures-out.js';
import { formatReport, replayExitCode } from '../replay/report.js';
import { runReplay, type ReplayOptions, type ReplayResult } from '../replay/run-replay.js';
import { ReplayInputError } from '../replay/route.js';
import { againstExitCode, formatAgainst, parseAgainst, runAgainst, type AgainstReport, type ComparatorEndpoints } from '../replay/against.js';
import { startQemuColoCompare, type QemuProcess } from '../replay/qemu-colo-compare.js';
import { parseEndpoint } from '../ports/endpoint.js';
import type { Command } from './command.js';
import { BrokenPipe, InputError, Interrupted, UsageError } from './errors.js';
import { parseFlags } from './flags.js';

const flags = {
  primary: { type: 'string', help: 'the PVM\'s output: a pcap or pcapng capture', metavar: 'FILE' },
  secondary: { type: 'string', help: 'the SVM\'s output: a pcap or pcapng capture', metavar: 'FILE' },
  client: { type: 'string', help: 'traffic towards the guests, when captured apart from theirs', metavar: 'FILE' },
  mode: {
    type: 'string', metavar: 'MODE', choices: ['pre-translated', 'translate'], default: 'pre-translated',
    help: 'pre-translated: SVM output captured after QEMU\'s filter-rewriter (in the PVM\'s sequence space); translate: raw SVM output with its own sequence numbers',
  },
  'guest-mac': { type: 'string', help: 'the guests\' MAC, to tell their output from client traffic in the same capture (found when not given)', metavar: 'MAC' },
  json: { type: 'boolean', help: 'print the report as one JSON object' },
  out: { type: 'string', help: 'write the released frames to FILE (pcapng)', metavar: 'FILE' },
  'mismatch-dir': { type: 'string', help: 'write one pcapng per checkpoint with both sides\' frames around it', metavar: 'DIR' },
  'checkpoint-ms': { type: 'integer', help: 'virtual ms from a checkpoint request to "checkpoint done"', metavar: 'MS', min: 0, max: 3_600_000, default: 30 },
  'compare-timeout': { type: 'integer', help: 'ms a frame may be held before a checkpoint', metavar: 'MS', min: 1, max: 3_600_000, default: 3000 },
  'expired-scan-cycle': { type: 'integer', help: 'ms between checks for held frames past the timeout', metavar: 'MS', min: 1, max: 3_600_000, default: 1000 },
  'max-queue-size': { type: 'integer', help: 'frames one side of one connection may hold before a checkpoint', metavar: 'N', min: 1, max: 1_000_000, default: 1024 },
  'compare-headers': { type: 'string', help: `header fields to compare besides payloads, comma-separated (${HEADER_FIELDS.join(', ')})`, metavar: 'LIST' },
  against: { type: 'string', help: 'also replay into another comparator\'s sockets: primary_in,secondary_in,outdev,notify_dev (tcp:HOST:PORT or unix:PATH each)', metavar: 'EP4' },
  'against-qemu': { type: 'boolean', help: 'also replay into QEMU\'s colo-compare, started here (needs qemu-system-x86_64)' },
  quiet: { type: 'boolean', help: 'no progress bar and no warnings on stderr' },
} as const;

function headerList(text: string | undefined): HeaderField[] {
  if (text === undefined || text === '') return [];
  return text.split(',').map((field) => {
    const name = field.trim();
    if (!(HEADER_FIELDS as readonly string[]).includes(name)) throw new UsageError(`replay: --compare-headers: unknown field "${name}" (known: ${HEADER_FIELDS.join(', ')})`);
    return name as HeaderField;
  });
}

/** True when the two paths name one file: the same inode when both exist, else the same absolute path. */
function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return resolve(a) === resolve(b);
  }
}

/** True when writing to `path` writes where this process's standard output goes (`--out /dev/stdout`, or the file stdout is redirected to). */
function isStdout(path: string): boolean {
  try {
    const x = statSync(path);
    const y = fstatSync(1);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** What is at `path` (undefined: nothing), or a usage error naming `flag` when it cannot be looked at (ENOTDIR, ELOOP, ...). */
function statOf(flag: string, path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (e) {
    throw new UsageError(`replay: ${flag} ${path}: ${systemReason(e)}`);
  }
}

/** Flags naming a file or directory: an empty value names nothing. */
const PATH_FLAGS = ['primary', 'secondary', 'client', 'out', 'mismatch-dir'] as const;

/** The replay a command line asks for (flags checked; nothing written yet). */
export async function parseReplayArgs(argv: readonly string[]): Promise<{
  options: ReplayOptions; json: boolean; quiet: boolean; against: ComparatorEndpoints | 'qemu' | undefined;
  /** --out is a FIFO or device, written directly rather than replaced. */
  outDirect: boolean;
  /** --out is where standard output goes: the report is printed on standard error instead. */
  outIsStdout: boolean;
}> {
  const { flags: f, positionals } = parseFlags('replay', flags, argv);
  if (positionals.length > 0) throw new UsageError(`replay: unexpected argument "${positionals[0]}" (captures are given with --primary and --secondary)`);
  for (const name of PATH_FLAGS) {
    if (f[name] === '') throw new UsageError(`replay: --${name} needs ${flags[name].metavar}, not an empty value`);
  }
  if (f.primary === undefined) throw new UsageError('replay: --primary FILE is required');
  if (f.secondary === undefined) throw new UsageError('replay: --secondary FILE is required');
  const guestMac = f['guest-mac'] === undefined ? undefined : parseMac(f['guest-mac']);
  if (f['guest-mac'] !== undefined && guestMac === undefined) throw new UsageError(`replay: --guest-mac must be a MAC address like 52:54:00:12:34:56 (got "${f['guest-mac']}")`);
  const compareHeaders = headerList(f['compare-headers']);
  const inputs: [string, string | undefined][] = [['--primary', f.primary], ['--secondary', f.secondary], ['--client', f.client]];
  // A pipe or FIFO can be read once: given twice, the readers would race for its bytes.
  for (let i = 0; i < inputs.length; i++) {
    for (let j = i + 1; j < inputs.length; j++) {
      const [a, pa] = inputs[i]!;
      const [b, pb] = inputs[j]!;
      if (pa === undefined || pb === undefined || !sameFile(pa, pb) || statOf(a, pa)?.isFile() !== false) continue;
      throw new UsageError(`replay: ${a} and ${b} are the same pipe (${pa}), which can be read only once: give each capture its own file`);
    }
  }
  let outDirect = false;
  if (f.out !== undefined) {
    try {
      outDirect = outTarget(f.out).how === 'direct';
    } catch (e) {
      throw new UsageError(`replay: --out ${f.out}: ${e instanceof Error ? e.message : String(e)}`);
    }
    for (const [flag, input] of inputs) {
      if (input !== undefined && sameFile(f.out, input)) throw new UsageError(`replay: --out ${f.out} is the ${flag} capture; write the released frames elsewhere`);
    }
  }
  const dir = f['mismatch-dir'];
  if (dir !== undefined) {
    if (statOf('--mismatch-dir', dir)?.isDirectory() === false) throw new UsageError(`replay: --mismatch-dir ${dir} is not a directory`);
    if (f.out !== undefined && sameFile(f.out, dir)) throw new UsageError(`replay: --out ${f.out} and --mismatch-dir ${dir} are the same path; each needs its own`);
    // The replay starts by removing the episode files of an earlier one from the directory.
    for (const [flag, path] of [...inputs, ['--out', f.out]] as const) {
      if (path !== undefined && isEpisodeFile(dir, path)) {
        throw new UsageError(`replay: ${flag} ${path} is in --mismatch-dir ${dir} under the name of an episode file, which the replay removes or overwrites: move it, or use another directory`);
      }
    }
  }
  const options: ReplayOptions = {
    primary: f.primary, secondary: f.secondary, client: f.client, mode: f.mode as SequenceMode,
    checkpointMs: f['checkpoint-ms'], compareTimeoutMs: f['compare-timeout'], scanIntervalMs: f['expired-scan-cycle'],
    maxQueueFrames: f['max-queue-size'], compareHeaders, guestMac, out: f.out, mismatchDir: f['mismatch-dir'],
  };
  if (f.against !== undefined && f['against-qemu']) throw new UsageError('replay: --against and --against-qemu exclude each other');
  let against: ComparatorEndpoints | 'qemu' | undefined = f['against-qemu'] ? 'qemu' : undefined;
  if (f.against !== undefined) {
    try {
      against = parseAgainst(f.against, parseEndpoint);
    } catch (e) {
      throw new UsageError(`replay: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (against !== undefined) {
    // Our own replay reads the inputs first; the other comparator's needs them again.
    for (const [flag, input] of [['--primary', f.primary], ['--secondary', f.secondary], ['--client', f.client]] as const) {
      if (input !== undefined && statOf(flag, input)?.isFile() === false) {
        throw new UsageError(`replay: ${flag} ${input} is not a regular file, and --against${f['against-qemu'] ? '-qemu' : ''} reads the captures a second time: save it to a file first`);
      }
    }
  }
  return { options, json: f.json, quiet: f.quiet, against, outDirect, outIsStdout: f.out !== undefined && isStdout(f.out) };
}

/**
 * Runs the replay into the other comparator (starting QEMU's for 'qemu'), with our own replay,
 * `ours`, run once that comparator is connected and ready (see `runAgainst`); our replay's errors
 * pass through as they are.
 */
async function replayAgainst(options: ReplayOptions, target: ComparatorEndpoints | 'qemu', ours: () => Promise<ReplayResult>): Promise<{ against: AgainstReport; ours: ReplayResult }> {
  let oursFailed: unknown;
  let oursDone = false;
  const first = async (): Promise<ReplayResult> => {
    try {
      const result = await ours();
      oursDone = true;
      return result;
    } catch (e) {
      oursFailed = e;
      throw e;
    }
  };
  /** The other comparator's failure, saying what our replay, when it had finished, left behind. */
  const failed = (flag: string, e: unknown): InputError => {
    const left = oursDone ? oursWrote(options) : '';
    return new InputError(`replay: ${flag}: ${e instanceof Error ? e.message : String(e)}${left !== '' ? `; ${left}` : ''}`, 'replay.against');
  };
  if (target !== 'qemu') {
    try {
      return await runAgainst(options, target, `comparator at ${Object.values(target).map((e) => e.text).join(',')}`, first);
    } catch (e) {
      if (e === oursFailed || e instanceof ReplayInputError) throw e;
      throw failed('--against', e);
    }
  }
  let qemu: QemuProcess;
  try {
    qemu = startQemuColoCompare({ compareTimeoutMs: options.compareTimeoutMs, scanIntervalMs: options.scanIntervalMs, maxQueueSize: options.maxQueueFrames });
  } catch (e) {
    throw new InputError(`replay: --against-qemu: ${e instanceof Error ? e.message : String(e)}`, 'replay.against');
  }
  try {
    return await runAgainst(options, qemu.endpoints, qemu.label, first, () => qemu.alive());
  } catch (e) {
    if (e === oursFailed || e instanceof ReplayInputError) throw e;
    // A socket QEMU closed as it died: its own reason says more (an assertion, a signal).
    const died = options.signal?.aborted === true ? undefined : await qemu.exitedWithin(1000);
    throw failed('--against-qemu', died !== undefined ? new Error(died) : e);
  } finally {
    await qemu.close();
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** What our own finished replay left in --out and --mismatch-dir, for a message about a later failure; '' when neither was asked for. */
function oursWrote(o: ReplayOptions): string {
  return [o.out !== undefined ? `${o.out} holds our replay's released frames` : '', o.mismatchDir !== undefined ? `${o.mismatchDir} its episode captures` : '']
    .filter((t) => t !== '').join(', ');
}

/**
 * The error of a replay stopped by `signal`, saying what became of --out and --mismatch-dir:
 * `oursDone`, our own replay had finished (the stop came during --against's run).
 */
function interrupted(signal: NodeJS.Signals, o: ReplayOptions, outDirect: boolean, oursDone: boolean): Interrupted {
  const written = oursWrote(o);
  const what = oursDone
    ? written !== '' ? `; ${written} (the --against run did not finish)` : ''
    : [
      o.out === undefined ? '' : outDirect ? `${o.out} got the frames released until then` : `${o.out} left as it was`,
      o.mismatchDir === undefined ? '' : `${o.mismatchDir} left as it was`,
    ].filter((t) => t !== '').map((t) => `; ${t}`).join('');
  return new Interrupted(`replay: stopped by ${signal} before the end${what}`, signal);
}

export const replayCommand: Command = {
  name: 'replay',
  summary: 'replay PVM and SVM captures through the comparator and report what it would have done',
  synopsis: '--primary FILE --secondary FILE [--client FILE] [--json] [--out FILE] [--mismatch-dir DIR] [--against EP4 | --against-qemu] [flags]',
  description:
    'Merges the captures by timestamp into one virtual clock and feeds them to the comparator with\n' +
    'a simulated checkpoint controller (a checkpoint takes --checkpoint-ms). At the end, virtual\n' +
    'time runs on until nothing is held. Reports frames, releases, checkpoints by reason, every\n' +
    'mismatch with its flow, sequence number and hex windows, and release delays.\n' +
    'With --against or --against-qemu the same captures also go, in capture order, into another\n' +
    'comparator over colo-compare\'s sockets, with this process as its controller, and both\n' +
    'verdicts are shown side by side; the exit code is then the other comparator\'s. It is\n' +
    'connected to, and must release a first frame, before our own replay runs.\n' +
    'Exit code: 0 when the outputs never diverged, 1 when a checkpoint was needed, 2 on an error,\n' +
    '130 or 143 when stopped by SIGINT or SIGTERM (a second one stops at once).',
  flags,
  async run(argv) {
    const parsed = await parseReplayArgs(argv);
    const { json, quiet, against, outDirect, outIsStdout } = parsed;
    // With --out on standard output, the report goes to standard error, clear of the capture's bytes.
    const reportTo = outIsStdout ? process.stderr : process.stdout;
    // SIGINT or SIGTERM stops the replay at its next batch (the abort's reason is the signal); a
    // second one stops at once: the process's exit handlers run (QEMU is stopped, a partial --out
    // removed), then it dies of the signal itself, as a shell expects of a program it stopped
    // (its status is 128 + the signal's number there too). Not process.exit: it waits for
    // libuv's threads, and one blocked in a FIFO's open() or read() may never return. One
    // listener throughout: swapping listeners closed the signal's libuv handle, and a second
    // signal that came in between was lost (the replay then waited on a FIFO for good).
    const stopping = new AbortController();
    const options: ReplayOptions = { ...parsed.options, signal: stopping.signal };
    const stop = (signal: NodeJS.Signals): void => {
      if (!stopping.signal.aborted) {
        process.stderr.write(`colo-proxy: replay: ${signal}: stopping (again to stop at once)\n`);
        stopping.abort(signal);
        return;
      }
      process.stderr.write(`colo-proxy: replay: ${signal} again: stopped\n`);
      const code = 128 + (constants.signals[signal] ?? 0);
      for (const s of SIGNALS) process.off(s, stop);
      process.emit('exit', code);
      process.kill(process.pid, signal);
      process.exit(code); // only if the signal was ignored after all
    };
    for (const s of SIGNALS) process.on(s, stop);
    /** Whether our own replay finished (--out and --mismatch-dir in place). */
    let oursDone = false;
    const bar = !quiet && process.stderr.isTTY
      ? new SingleBar({ format: 'replay [{bar}] {percentage}% {value}/{total} MB | {eta_formatted} left', stream: process.stderr, clearOnComplete: true, hideCursor: true })
      : undefined;
    const mb = (bytes: number): number => Math.round(bytes / 1e5) / 10;
    let barStarted = false;
    try {
      const replayOurs = async (): Promise<ReplayResult> => {
        const result = await runReplay({
          ...options,
          progress: bar && ((done, total) => {
            if (!barStarted) bar.start(mb(total), 0);
            barStarted = true;
            bar.update(mb(done));
          }),
          warn: quiet ? undefined : (line) => {
            bar?.stop();
            process.stderr.write(`colo-proxy: replay: warning: ${line}\n`);
          },
        });
        // Finished: a stop that came after the replay's last check leaves its report to be printed.
        oursDone = true;
        bar?.stop();
        return result;
      };
      if (against === undefined) {
        const { report } = await replayOurs();
        reportTo.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
        return replayExitCode(report);
      }
      if (options.mode === 'translate' && !quiet) {
        process.stderr.write('colo-proxy: replay: warning: with --mode translate the SVM\'s frames are sent as captured, in its own sequence space; ' +
          'a colo-compare expects them after filter-rewriter, so it will see its TCP bytes at other sequence numbers\n');
      }
      // The other comparator is connected to first: one that cannot be reached fails at once.
      const { against: external, ours: { report } } = await replayAgainst(options, against, replayOurs);
      stopping.signal.throwIfAborted();
      const ours = { checkpoints: report.checkpointCount, byReason: report.checkpointsByReason, released: report.released };
      reportTo.write(json ? `${JSON.stringify({ against: external, coloProxy: report }, null, 2)}\n` : `${formatReport(report)}\n${formatAgainst(external, ours)}`);
      return againstExitCode(external);
    } catch (e) {
      bar?.stop();
      if (stopping.signal.aborted) throw interrupted(stopping.signal.reason as NodeJS.Signals, options, outDirect, oursDone);
      if (e instanceof CaptureFileError && e.operation !== 'open' && e.operation !== 'read' && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'EPIPE') throw new BrokenPipe();
      if (e instanceof CaptureFormatError || e instanceof CaptureFileError) throw new InputError(e.message, e.code);
      if (e instanceof ReplayInputError) throw new InputError(e.message, 'replay.input');
      throw e;
    } finally {
      // Once stopping, the listener stays until the process exits: a second signal while the
      // stop is reported (or the exit handlers run) is still answered and still stops at once.
      if (!stopping.signal.aborted) for (const s of SIGNALS) process.off(s, stop);
    }
  },
};
