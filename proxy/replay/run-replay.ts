/**
 * A whole replay, files to report: the captures merged by time, each frame routed to the side
 * the comparator sees it on, the session driven to the end, the optional output captures
 * written, and the report built. The CLI's `replay` command and the benchmark call this.
 * Which side each frame goes to: route.ts. Each input is read once, so a pipe or FIFO can be
 * one: the first frames are held back while the guest's MAC is found in them (guest.ts).
 */

import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { HeaderField, SequenceMode } from '../../compare/index.js';
import type { CapturedFrame } from '../framing/capture.js';
import { mergeCaptures, type MergedBatch } from './merge.js';
import { GuestDetector, formatMac, givenGuest, type GuestChoice } from './guest.js';
import { ReplaySession } from './session.js';
import { SequenceSpaceCheck } from './sequence-space.js';
import { MismatchCaptures, PCAPNG_LAST_SECONDS, ReleasedCapture } from './captures-out.js';
import { asEthernet } from './as-ethernet.js';
import { FrameRouter, ReplayInputError, replayInputs } from './route.js';
import { buildReport, type ReplayReport } from './report.js';

export interface ReplayOptions {
  primary: string;
  secondary: string;
  client?: string | undefined;
  mode: SequenceMode;
  checkpointMs: number;
  compareTimeoutMs: number;
  scanIntervalMs: number;
  maxQueueFrames: number;
  compareHeaders: readonly HeaderField[];
  /** The guests' MAC address; found in their captures when not given. */
  guestMac?: Uint8Array | undefined;
  /** `--out`: write released frames here. */
  out?: string | undefined;
  /** `--mismatch-dir`: write one capture per checkpoint episode here. */
  mismatchDir?: string | undefined;
  /** Called after each batch with the input bytes read so far and in all. */
  progress?: ((done: number, total: number) => void) | undefined;
  /** Called once per warning, when the replay ends (they are in the report too). */
  warn?: ((line: string) => void) | undefined;
  /** Stops the replay between input batches, throwing its reason; --out is then discarded. */
  signal?: AbortSignal | undefined;
}

export interface ReplayResult {
  report: ReplayReport;
  /** The guest MAC used (given or found), for a replay of the same captures into another comparator. */
  guest: GuestChoice;
}

export async function runReplay(o: ReplayOptions): Promise<ReplayResult> {
  const { paths, roles } = replayInputs(o);
  // Undefined for a file that cannot be read: the reader reports its problem with its own error.
  const stats = await Promise.all(paths.map((p) => stat(p).catch(() => undefined)));
  const total = stats.reduce((sum, st) => sum + (st?.size ?? 0), 0);

  const warnings: string[] = [];
  const warn = (line: string): void => {
    warnings.push(line);
    o.warn?.(line);
  };

  const mismatches = o.mismatchDir !== undefined ? new MismatchCaptures(o.mismatchDir, o.mode === 'translate') : undefined;
  const released = o.out !== undefined ? await ReleasedCapture.create(o.out) : undefined;
  const session = new ReplaySession(
    {
      checkpointMs: o.checkpointMs,
      comparator: {
        mode: o.mode, compareTimeoutMs: o.compareTimeoutMs, scanIntervalMs: o.scanIntervalMs,
        maxQueueFrames: o.maxQueueFrames, compareHeaders: o.compareHeaders,
      },
    },
    {
      released: (frame, atMs) => released?.add(frame, atMs),
      mismatch: (m) => mismatches?.mismatch(m),
    },
  );
  const check = new SequenceSpaceCheck();
  const offsets = new Array<number>(paths.length).fill(0);
  /** Frames without a capture time, per input (CapturedFrame.untimed). */
  const untimed = new Array<number>(paths.length).fill(0);
  /** The first frame with a capture time: virtual time 0. */
  let first: CapturedFrame | undefined;
  let batches = 0;
  // The guest's MAC, given or found in the first frames, which are held back until it is (guest.ts).
  const routing = (guest: GuestChoice): { guest: GuestChoice; router: FrameRouter } => ({ guest, router: new FrameRouter(paths, roles, guest.mac) });
  let routed = o.guestMac !== undefined ? routing(givenGuest(o.guestMac)) : undefined;
  const detector = new GuestDetector();
  let held: MergedBatch[] = [];
  const feed = (batch: MergedBatch, to: FrameRouter): void => {
    const { frames, source } = batch;
    // Frames without a time come first; the first timed frame is virtual time 0 for them too, and
    // both writers keep their times relative to it until it is read (ReleasedCapture,
    // MismatchCaptures), so that they are stamped at it rather than at 1970.
    if (first === undefined) {
      first = frames.find((f) => !f.untimed);
      if (first !== undefined) {
        if (released) released.baseNs = first.timeNs;
        if (mismatches) mismatches.baseNs = first.timeNs;
      }
    }
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      if (f.untimed) untimed[source[i]!]++;
      const side = to.route(f, source[i]!);
      if (side === undefined) continue;
      const data = asEthernet(f.linkType, f.data);
      if (side !== 'client' && !check.done) check.observe(side, data);
      // A frame without a capture time is taken at the replay's time when it is read.
      const timed = !f.untimed && first !== undefined;
      const atMs = timed ? f.msSince(first!) : session.nowMs;
      if (timed) mismatches?.frame(side, data, f.timeNs);
      else mismatches?.frame(side, data, (first?.timeNs ?? 0n) + BigInt(Math.round(atMs * 1e6)), first === undefined);
      session.ingest(side, data, atMs);
    }
  };
  const found = (): { guest: GuestChoice; router: FrameRouter } => {
    const r = routing(detector.choice());
    for (const b of held) feed(b, r.router);
    held = [];
    return r;
  };

  try {
    for await (const batch of mergeCaptures(paths.map((path) => ({ path })), { signal: o.signal })) {
      const { frames, source } = batch;
      // The inputs read: now --mismatch-dir is made ready (a mistyped input leaves no trace).
      if (batches++ === 0) await mismatches?.prepare();
      for (let i = 0; i < frames.length; i++) offsets[source[i]!] = frames[i]!.fileOffset;
      if (routed !== undefined) {
        feed(batch, routed.router);
      } else {
        for (let i = 0; i < frames.length; i++) detector.observe(frames[i]!, roles[source[i]!]!);
        held.push(batch);
        if (detector.enough) routed = found();
      }
      await released?.flush();
      await mismatches?.flush();
      o.progress?.(offsets.reduce((a, b) => a + b, 0), total);
      o.signal?.throwIfAborted();
    }
    o.signal?.throwIfAborted();
    routed ??= found();
    await released?.flush();
    session.finish();
    if (session.comparator.counters.primaryFrames === 0 && session.comparator.counters.secondaryFrames === 0) {
      throw new ReplayInputError(`nothing to compare: neither ${o.primary} nor ${o.secondary} holds a frame${fromGuest(routed.guest, o.guestMac !== undefined)}`);
    }
    // The last point a stop leaves --out and --mismatch-dir as they were; past it the replay finishes.
    o.signal?.throwIfAborted();
    await released?.close();
    await mismatches?.flush(true);
    await mismatches?.commit();
  } catch (e) {
    // What was written goes, leaving --out and --mismatch-dir as they were; the first error is the one to report.
    await released?.discard();
    await mismatches?.discard();
    throw e;
  }
  o.progress?.(total, total);

  const same = (a: Stats | undefined, b: Stats | undefined): boolean => a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
  const [p, s, client] = stats;
  if (same(p, s)) warn(`--primary and --secondary are the same file (${o.primary}): one capture is trivially identical to itself`);
  for (const [flag, guest] of [['--primary', p], ['--secondary', s]] as const) {
    if (same(client, guest)) warn(`--client and ${flag} are the same file (${o.client}): a guest's capture was taken for the client's input`);
  }
  if (routed.guest.warning !== undefined) warn(routed.guest.warning);
  if (first !== undefined && first.seconds > PCAPNG_LAST_SECONDS) {
    // Both captures made with the same mistake pass the merge's check (their times agree).
    const year = new Date(first.seconds * 1000).getUTCFullYear(); // NaN past year 275760
    warn(`capture times start ${Number.isNaN(year) ? 'after the year 275760' : `in the year ${year}`}, past any real capture: a writer's unit error (nanoseconds in a pcapng without if_tsresol, read as microseconds) stretches time a thousandfold, so timeouts in this replay are not to be trusted`);
  }
  untimed.forEach((n, i) => {
    if (n > 0) warn(`${paths[i]}: ${n} frames have no capture time (pcapng Simple Packet Blocks before any block with one): replayed as read, at the replay's time then, ahead of other inputs' timed frames`);
  });
  const c = session.comparator.counters;
  for (const [side, path, frames] of [['primary', o.primary, c.primaryFrames], ['secondary', o.secondary, c.secondaryFrames]] as const) {
    if (frames === 0) warn(`${path} (--${side}) holds no frame${fromGuest(routed.guest, o.guestMac !== undefined)}: the other guest's output had nothing to be compared with`);
  }
  const verdict = check.verdict;
  if (verdict === 'own' && o.mode === 'pre-translated') {
    warn('the secondary\'s TCP sequence numbers follow its own initial ones (raw SVM output, as on its tap): replay with --mode translate');
  } else if (verdict === 'primary' && o.mode === 'translate') {
    warn('the secondary\'s TCP sequence numbers are already in the primary\'s space (captured after filter-rewriter): replay with --mode pre-translated');
  }
  for (const [flag, writer] of [['--out', released], ['--mismatch-dir', mismatches]] as const) {
    if (writer !== undefined && writer.clamped > 0) {
      warn(`${flag}: ${writer.clamped} frames written have capture times pcapng cannot hold (before 1970, or after 2554-07-21 as when a pcapng holds nanoseconds without if_tsresol): written at the nearest time it can`);
    }
  }
  if (released?.modeNotKept !== undefined) warn(`--out: the new file could not be given the permission bits of the one it replaced: ${released.modeNotKept}`);
  if (mismatches?.failure !== undefined) {
    const kept = mismatches.keptEarlier ? '; none of this replay\'s are kept, and the directory is left as it was' : '';
    warn(`--mismatch-dir: ${mismatches.unwritten} episode captures not written, from the first that failed: ${mismatches.failure}${kept}`);
  }
  const left = mismatches?.leftovers ?? [];
  if (left.length > 0) {
    const [are, them] = left.length === 1 ? ['is a directory', 'it'] : ['are directories', 'them'];
    warn(`--mismatch-dir: ${left.join(', ')} ${are} of replays killed before they could remove ${them}, or still running there: remove ${them} once no replay writes there`);
  }
  if (session.unreleased > 0) warn(`${session.unreleased} primary frames were never released: a bug in colo-proxy, please report it with these captures`);

  const report = buildReport(
    {
      primary: o.primary, secondary: o.secondary, client: o.client, mode: o.mode, checkpointMs: o.checkpointMs,
      compareTimeoutMs: o.compareTimeoutMs, scanIntervalMs: o.scanIntervalMs, maxQueueFrames: o.maxQueueFrames, compareHeaders: o.compareHeaders,
    },
    session, routed.guest.how, routed.router.skipped, warnings,
  );
  return { report, guest: routed.guest };
}

/** " from the guest MAC ...", saying whether it was given, or nothing when every frame counts as the guest's. */
function fromGuest(guest: GuestChoice, given: boolean): string {
  return guest.mac === undefined ? '' : ` from the guest MAC ${formatMac(guest.mac)}${given ? ' (--guest-mac)' : ' (found in the captures)'}`;
}
