/**
 * `colo-proxy inspect FILE`: prints a capture's frames one per line (number, time, interface when
 * there are several, the frame as `describeFrame` shows it, and the pcapng comment), then a
 * one-line summary on stderr with the count of frames that did not decode, by code.
 * Streaming: memory does not grow with the file. Output stops quietly when stdout closes early
 * (`| head`). A corrupt or truncated file ends with a one-line error naming the byte offset
 * (exit 2) after the frames before it have been printed.
 */

import { once } from 'node:events';
import { WireError, decodeFrame, linkTypeName } from '../../compare/index.js';
import type { CapturedFrame } from '../framing/capture.js';
import { CaptureFormatError } from '../framing/capture.js';
import { CaptureFileError, readCaptureBatches } from '../ports/capture-file.js';
import type { Command } from './command.js';
import { EXIT_OK, InputError, UsageError } from './errors.js';
import { describeFrame } from './describe-frame.js';
import { parseFlags } from './flags.js';

const flags = {
  limit: { type: 'integer', help: 'stop after N frames', metavar: 'N', min: 1, max: Number.MAX_SAFE_INTEGER },
  time: {
    type: 'string',
    help: 'time column: seconds since the first frame, UTC date and time, or seconds since 1970',
    metavar: 'FORMAT',
    choices: ['relative', 'absolute', 'epoch'],
    default: 'relative',
  },
} as const;

const NS_PER_S = 1_000_000_000n;

function formatSeconds(ns: bigint, digits: number): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  const frac = (abs % NS_PER_S).toString().padStart(9, '0').slice(0, digits);
  return `${sign}${abs / NS_PER_S}.${frac}`;
}

/**
 * A frame's time column: `-` for a frame without a capture time (a Simple Packet Block before any
 * timed one), else relative to `firstNs`, the first timed frame's, or as --time asks. An absolute
 * time a Date cannot hold (beyond 275,760 years either side of 1970) is shown as epoch seconds.
 */
function formatTime(frame: CapturedFrame, firstNs: bigint, mode: string): string {
  if (frame.untimed) return '-';
  if (mode === 'relative') return formatSeconds(frame.timeNs - firstNs, 6);
  const date = new Date(frame.seconds * 1000);
  if (mode === 'epoch' || Number.isNaN(date.getTime())) return formatSeconds(frame.timeNs, 9);
  return date.toISOString().replace(/\.\d{3}Z$/, `.${String(frame.nanoseconds).padStart(9, '0')}Z`);
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'print the frames of a pcap or pcapng file, one per line',
  synopsis: '[--limit N] [--time relative|absolute|epoch] FILE',
  description:
    'Decodes every frame of FILE (classic pcap or pcapng; Ethernet, raw IP, Linux cooked v1/v2)\n' +
    'and prints number, time, flow, TCP flags, seq/ack, window, payload length and options.\n' +
    'Frames that do not decode are printed with the reason and counted in the summary (stderr).',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseFlags('inspect', flags, argv);
    if (positionals.length !== 1) throw new UsageError(`inspect: expected one capture FILE, got ${positionals.length} arguments`);
    const path = positionals[0]!;
    const lines: string[] = [];
    const out = process.stdout;
    let closed = false;
    const isEpipe = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'EPIPE';
    out.on('error', (err) => {
      if (!isEpipe(err)) throw err;
      closed = true;
    });
    const flush = async (): Promise<void> => {
      if (lines.length === 0 || closed) return;
      const text = lines.join('\n') + '\n';
      lines.length = 0;
      if (out.write(text)) return;
      try {
        await once(out, 'drain');
      } catch (err) {
        if (!isEpipe(err)) throw err;
        closed = true;
      }
    };

    let count = 0;
    let firstNs: bigint | undefined;
    const undecoded = new Map<string, number>();
    const interfaces = new Set<string>();
    const line = (frame: CapturedFrame): string => {
      if (!frame.untimed) firstNs ??= frame.timeNs;
      const decoded = decodeFrame(frame.data, frame.linkType);
      // A link type the decoder does not know is shown as its length only: not decoded either.
      const problem = decoded instanceof WireError ? decoded.code : decoded.etherType === -1 ? `link type ${linkTypeName(frame.linkType)}` : undefined;
      if (problem !== undefined) undecoded.set(problem, (undecoded.get(problem) ?? 0) + 1);
      interfaces.add(`${frame.interfaceId}`);
      const iface = interfaces.size > 1 || frame.interfaceId !== 0 ? ` if${frame.interfaceId}` : '';
      const snapped = frame.data.length < frame.originalLength ? ` [snapped ${frame.data.length}/${frame.originalLength}]` : '';
      const comment = frame.comment !== undefined ? ` # ${JSON.stringify(frame.comment)}` : '';
      return `${String(count).padStart(5)} ${formatTime(frame, firstNs ?? 0n, f.time)}${iface} ${describeFrame(decoded, frame.originalLength)}${snapped}${comment}`;
    };

    try {
      reading: for await (const batch of readCaptureBatches(path)) {
        for (const frame of batch) {
          count++;
          lines.push(line(frame));
          if (f.limit !== undefined && count >= f.limit) break reading;
        }
        await flush();
        if (closed) return EXIT_OK;
      }
    } catch (err) {
      if (err instanceof CaptureFormatError || err instanceof CaptureFileError) {
        await flush();
        throw new InputError(err.message, err.code);
      }
      throw err;
    }
    await flush();
    const bad = [...undecoded].sort(([a], [b]) => a.localeCompare(b)).map(([code, n]) => `${code}: ${n}`);
    process.stderr.write(`${path}: ${count} frames${f.limit !== undefined && count >= f.limit ? ' (limit reached)' : ''}, ` +
      `${bad.length === 0 ? 'all decoded' : `not decoded: ${bad.join(', ')}`}\n`);
    return EXIT_OK;
  },
};
