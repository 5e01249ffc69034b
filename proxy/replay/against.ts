/**
 * Replay into another comparator: the same captures, routed as for the in-process replay, sent
 * in capture-time order into a comparator that speaks colo-compare's socket protocol (QEMU's
 * colo-compare, or colo-proxy compare), with this process as its four peers: it writes PVM
 * output to `primary_in` and SVM output to `secondary_in` (QEMU framing, no vnet header), reads
 * `outdev`, and is the Xen checkpoint controller on `notify_dev` (hello, then COLO_CHECKPOINT
 * `checkpointMs` after each DO_CHECKPOINT; requests while one is pending are coalesced).
 *
 * Frames go out as fast as the comparator reads them, each input on its own (up to
 * INPUT_QUEUE_BYTES queued ahead), as the two VMs' sockets would: a comparator may pause one input
 * until the other catches up. Its timeouts run on its own clock, so a capture's pauses are not
 * reproduced. A colo-compare takes no client input (QEMU's
 * filter-mirror feeds the SVM), so client frames are counted, not sent. Completion is found with
 * a barrier: a UDP datagram on its own flow (10.0.0.2:7 -> 10.0.0.1:7, payload
 * `colo-replay-barrier-N`) sent to both inputs after everything else; once it is out, every
 * earlier frame has been compared, and what is still held comes out after the comparator's
 * timeout and a checkpoint, so the run waits until every primary frame is out or nothing has
 * happened for a timeout, a scan, a checkpoint and a second. Released frames are checked off as
 * they come against those sent (release-audit.ts): each exactly once, in order within its flow,
 * with memory for what is still owed rather than for the whole capture. The comparator is
 * connected to, and its start-up barrier passed, before our own replay runs (`runAgainst`).
 */

import type { Socket } from 'node:net';
import { emitUdp } from '../../compare/index.js';
import { QemuFrameDecoder, encodeQemuFrame } from '../framing/qemu-frames.js';
import { COLO_CHECKPOINT, COLO_COMPARE_GET_XEN_INIT, COLO_USERSPACE_PROXY_INIT, DO_CHECKPOINT, NotifyDecoder, encodeNotify } from '../framing/notify.js';
import type { Endpoint } from '../ports/endpoint.js';
import { dialUntil } from '../ports/dial.js';
import { mergeCaptures } from './merge.js';
import type { GuestChoice } from './guest.js';
import { asEthernet } from './as-ethernet.js';
import { FrameRouter, replayInputs, type SkippedFrames } from './route.js';
import { ReleaseAudit } from './release-audit.js';
import { MAX_RECORDS } from './session.js';
import type { ReplayOptions } from './run-replay.js';

/** The four peers of a colo-compare, in QEMU's property names. */
export interface ComparatorEndpoints {
  primary_in: Endpoint;
  secondary_in: Endpoint;
  outdev: Endpoint;
  notify_dev: Endpoint;
}

export interface AgainstReport {
  /** What was compared against (an endpoint list, or QEMU's command line). */
  comparator: string;
  primaryFrames: number;
  secondaryFrames: number;
  /** Client frames in the captures, not sent (colo-compare takes none). */
  clientFramesNotSent: number;
  skipped: SkippedFrames;
  released: number;
  /** Primary frames sent and never released. */
  lost: number;
  /** Flows those lost frames belong to. */
  lostFlows: number;
  /** Released frames beyond the copies sent (the same frame out twice, or one never sent). */
  duplicated: number;
  /** Released frames that came out before a frame of the same flow sent earlier. */
  reordered: number;
  /** Checkpoint episodes: DO_CHECKPOINT while none was pending. */
  checkpointCount: number;
  /** The first MAX_RECORDS of them, at ms since the first frame was sent. */
  checkpoints: { number: number; requestedAtMs: number }[];
  /** DO_CHECKPOINT messages received while a checkpoint was pending. */
  checkpointsCoalesced: number;
  /** Whether the comparator answered the hello with COLO_COMPARE_GET_XEN_INIT. */
  helloAnswered: boolean;
  /** Other notify messages: how many, and the first OTHER_NOTIFY_KEPT of them, in order. */
  otherNotifyCount: number;
  otherNotify: string[];
  /** Wall time of the run, ms. */
  wallMs: number;
}

/** Parses `--against`: four comma-separated client endpoints, primary_in,secondary_in,outdev,notify_dev. */
export function parseAgainst(text: string, parse: (flag: string, t: string) => Endpoint): ComparatorEndpoints {
  const parts = text.split(',');
  if (parts.length !== 4) throw new Error(`--against needs four endpoints, primary_in,secondary_in,outdev,notify_dev (got ${parts.length})`);
  const [p, s, o, n] = parts.map((t) => {
    const e = parse('--against', t);
    if (e.server) throw new Error(`--against: ${t}: replay connects to the comparator's sockets; give them without ",server"`);
    return e;
  }) as [Endpoint, Endpoint, Endpoint, Endpoint];
  return { primary_in: p, secondary_in: s, outdev: o, notify_dev: n };
}

const BARRIER_PREFIX = 'colo-replay-barrier-';
/** Unknown notify messages kept for the report (all are counted). */
const OTHER_NOTIFY_KEPT = 20;
const CONNECT_MS = 10_000;

function barrier(n: number): Uint8Array {
  return emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 7, dstPort: 7, payload: `${BARRIER_PREFIX}${n}` });
}

function isBarrier(p: Uint8Array): string | undefined {
  if (p.length < 42 || p[12] !== 0x08 || p[13] !== 0x00 || p[23] !== 17 || p[35] !== 7 || p[37] !== 7 || p[34] !== 0 || p[36] !== 0) return undefined;
  const text = Buffer.from(p.subarray(42)).toString('latin1');
  return text.startsWith(BARRIER_PREFIX) ? text : undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Bytes of the captures queued for one input beyond which sending waits for it to drain. A
 * comparator may stop reading one input until the other catches up (colo-proxy compare pauses
 * secondary_in while the SVM is far ahead), as the VMs' sockets, independent of each other,
 * would let it: waiting for the paused input at once would stop the other too, the one it waits on.
 */
const INPUT_QUEUE_BYTES = 64 * 1024 * 1024;

/** Writes a frame of the captures to an input, waiting for it to drain only past INPUT_QUEUE_BYTES. */
async function queue(s: Socket, bytes: Uint8Array): Promise<void> {
  s.write(bytes);
  if (s.writableLength > INPUT_QUEUE_BYTES) await drained(s);
}

/** Writes, waiting for the socket to drain when its buffer is full. */
async function send(s: Socket, bytes: Uint8Array): Promise<void> {
  if (!s.write(bytes)) await drained(s);
}

/** Resolves once `s` drains; rejects if it closes first (or has). */
function drained(s: Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (s.destroyed) {
      reject(new Error('the comparator closed the connection'));
      return;
    }
    const done = (err?: Error): void => {
      s.off('drain', done);
      s.off('close', closed);
      if (err) reject(err); else resolve();
    };
    const closed = (): void => done(new Error('the comparator closed the connection'));
    s.once('drain', done);
    s.once('close', closed);
  });
}

/**
 * Replays `o`'s captures into the comparator at `endpoints`. It connects, says hello and passes
 * the start-up barrier first, then runs `ours` (our own replay of the captures, which says what
 * guest MAC it used) before sending them: a comparator that cannot be reached or releases
 * nothing fails the command in seconds, not after our replay's work. `alive` throws when the
 * comparator process is known to have died (for --against-qemu), so waits end early with its reason.
 */
export async function runAgainst<Ours extends { guest: GuestChoice }>(o: ReplayOptions, endpoints: ComparatorEndpoints, label: string, ours: () => Promise<Ours>, alive: () => void = () => {}): Promise<{ against: AgainstReport; ours: Ours }> {
  const until = Date.now() + CONNECT_MS;
  const sockets: Socket[] = [];
  let failure: Error | undefined;
  const check = (): void => {
    o.signal?.throwIfAborted();
    alive();
    if (failure) throw failure;
  };
  // Stopped: close the sockets, so a send waiting for the comparator to read gives up too.
  const stop = (): void => {
    for (const s of sockets) s.destroy();
  };
  o.signal?.addEventListener('abort', stop);
  try {
    for (const name of ['primary_in', 'secondary_in', 'outdev', 'notify_dev'] as const) sockets.push(await dialUntil(endpoints[name], until, check));
    const [primaryIn, secondaryIn, outdev, notifyDev] = sockets as [Socket, Socket, Socket, Socket];
    for (const s of sockets) {
      s.setNoDelay(true);
      s.on('error', (err) => (failure ??= err));
      s.on('close', () => (failure ??= new Error(`${label} closed a connection`)));
    }

    // outdev: released frames checked off as they come (once the start-up barrier is through), barriers taken out.
    const audit = new ReleaseAudit();
    let auditing = false;
    const barriersSeen = new Set<string>();
    let lastActivity = Date.now();
    const outDecoder = new QemuFrameDecoder({ vnetHeader: false });
    outdev.on('data', (chunk: Buffer) => {
      lastActivity = Date.now();
      try {
        for (const f of outDecoder.push(chunk)) {
          const b = isBarrier(f.packet);
          if (b !== undefined) barriersSeen.add(b);
          else if (auditing) audit.release(f.packet);
        }
      } catch (err) {
        failure ??= err as Error;
      }
    });

    // notify_dev: the controller.
    let helloAnswered = false;
    const otherNotify: string[] = [];
    let otherNotifyCount = 0;
    const checkpoints: AgainstReport['checkpoints'] = [];
    let checkpointCount = 0;
    let coalesced = 0;
    let pending = false;
    let startedAt = Date.now();
    const notifyDecoder = new NotifyDecoder();
    notifyDev.on('data', (chunk: Buffer) => {
      lastActivity = Date.now();
      try {
        for (const m of notifyDecoder.push(chunk)) {
          if (m.text === COLO_COMPARE_GET_XEN_INIT) helloAnswered = true;
          else if (m.text === DO_CHECKPOINT) {
            if (pending) {
              coalesced++;
              continue;
            }
            pending = true;
            checkpointCount++;
            if (checkpoints.length < MAX_RECORDS) checkpoints.push({ number: checkpointCount, requestedAtMs: Date.now() - startedAt });
            setTimeout(() => {
              pending = false;
              lastActivity = Date.now();
              if (!notifyDev.destroyed) notifyDev.write(encodeNotify(COLO_CHECKPOINT));
            }, o.checkpointMs);
          } else if (otherNotifyCount++ < OTHER_NOTIFY_KEPT) otherNotify.push(m.text);
        }
      } catch (err) {
        failure ??= err as Error;
      }
    });

    await send(notifyDev, encodeNotify(COLO_USERSPACE_PROXY_INIT));
    for (const wait = Date.now() + 2000; !helloAnswered && Date.now() < wait;) {
      check();
      await sleep(5);
    }

    // Start-up barrier: a comparator may drop what it releases before it accepted outdev.
    let barriers = 0;
    const throughBarrier = async (ms: number): Promise<boolean> => {
      const tag = `${BARRIER_PREFIX}${++barriers}`;
      const frame = encodeQemuFrame(barrier(barriers));
      await send(secondaryIn, frame);
      await send(primaryIn, frame);
      for (const wait = Date.now() + ms; Date.now() < wait;) {
        check();
        if (barriersSeen.has(tag)) return true;
        await sleep(2);
      }
      return false;
    };
    let ready = false;
    for (const wait = Date.now() + 5000; !ready && Date.now() < wait;) ready = await throughBarrier(200);
    if (!ready) throw new Error(`${label} released nothing on outdev (start-up barrier lost)`);
    auditing = true;

    const oursDone = await ours();
    check();
    const { paths, roles } = replayInputs(o);
    const router = new FrameRouter(paths, roles, oursDone.guest.mac);
    let secondaryFrames = 0;
    let clientFrames = 0;
    startedAt = Date.now();
    for await (const { frames, source } of mergeCaptures(paths.map((path) => ({ path })))) {
      check();
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        const side = router.route(f, source[i]!);
        if (side === undefined) continue;
        if (side === 'client') {
          clientFrames++;
          continue;
        }
        const data = asEthernet(f.linkType, f.data);
        if (side === 'primary') {
          audit.send(data);
          await queue(primaryIn, encodeQemuFrame(data));
        } else {
          secondaryFrames++;
          await queue(secondaryIn, encodeQemuFrame(data));
        }
      }
    }

    // Wait for the end: the final barrier, then whatever the timeout and checkpoints release.
    const quietMs = o.compareTimeoutMs + o.scanIntervalMs + o.checkpointMs + 1000;
    await throughBarrier(quietMs + 5000);
    lastActivity = Date.now();
    while (audit.owed > 0 && Date.now() - lastActivity < quietMs) {
      check();
      await sleep(10);
    }
    await sleep(Math.min(200, quietMs)); // a late duplicate would show here

    const against: AgainstReport = {
      comparator: label,
      primaryFrames: audit.sent,
      secondaryFrames,
      clientFramesNotSent: clientFrames,
      skipped: { ...router.skipped },
      released: audit.released,
      lost: audit.owed,
      lostFlows: audit.flowsOwing,
      duplicated: audit.duplicated,
      reordered: audit.reordered,
      checkpointCount,
      checkpoints,
      checkpointsCoalesced: coalesced,
      helloAnswered,
      otherNotifyCount,
      otherNotify,
      wallMs: Date.now() - startedAt,
    };
    return { against, ours: oursDone };
  } finally {
    o.signal?.removeEventListener('abort', stop);
    for (const s of sockets) {
      s.removeAllListeners('close');
      s.destroy();
    }
  }
}

/** Frames the other comparator released wrong: lost, out twice (or never sent), or out of order within their flow. */
function releasedWrong(r: AgainstReport): number {
  return r.lost + r.duplicated + r.reordered;
}

/** Exit code of a replay against another comparator: 0 when it needed no checkpoint and released every frame once, in order. */
export function againstExitCode(r: AgainstReport): number {
  return r.checkpointCount === 0 && releasedWrong(r) === 0 ? 0 : 1;
}

/** Checkpoint times the readable report lists (--json has them all). */
const CHECKPOINTS_LISTED = 20;

/** The readable form of an against report, with colo-proxy's own verdict on the same captures beside it. */
export function formatAgainst(r: AgainstReport, ours: { checkpoints: number; byReason: Record<string, number>; released: number }): string {
  const verdict = (n: number): string => (n === 0 ? 'identical: no checkpoint needed' : `diverged: ${n} checkpoint${n === 1 ? '' : 's'}`);
  // The other comparator's exit code also counts frames it released wrong (againstExitCode).
  const wrong = releasedWrong(r);
  const theirs = r.checkpointCount === 0 && wrong > 0 ? `no checkpoint asked for, but ${wrong} frames released wrong (below)` : verdict(r.checkpointCount);
  const lines = [
    `against: ${r.comparator}`,
    '  frames were sent in capture order as fast as the comparator read them; its timeouts ran on its own clock',
    '',
    `  outcome     ${theirs}${r.checkpointsCoalesced > 0 ? ` (${r.checkpointsCoalesced} more DO_CHECKPOINT while one was pending)` : ''}`,
    `  frames      primary ${r.primaryFrames}, secondary ${r.secondaryFrames} sent; client ${r.clientFramesNotSent} not sent (colo-compare takes no client input)`,
    `  released    ${r.released} of ${r.primaryFrames}: ${r.lost} lost${r.lost > 0 ? ` (in ${r.lostFlows} flow${r.lostFlows === 1 ? '' : 's'})` : ''}, ${r.duplicated} duplicated or unknown, ${r.reordered} out of order within their flow`,
    `  controller  hello ${r.helloAnswered ? 'answered' : 'NOT answered'}${r.otherNotifyCount > 0 ? `; other messages: ${r.otherNotify.join(', ')}${r.otherNotifyCount > r.otherNotify.length ? ` and ${r.otherNotifyCount - r.otherNotify.length} more` : ''}` : ''}`,
    `  wall time   ${(r.wallMs / 1000).toFixed(3)} s`,
  ];
  if (r.checkpointCount > 0) {
    const listed = r.checkpoints.slice(0, CHECKPOINTS_LISTED).map((c) => `${c.requestedAtMs} ms`).join(', ');
    const more = r.checkpointCount > CHECKPOINTS_LISTED ? ` and ${r.checkpointCount - CHECKPOINTS_LISTED} more` : '';
    lines.push(`  checkpoints at ${listed}${more} (wall clock; the comparator gives no reasons)`);
  }
  const reasons = Object.entries(ours.byReason).map(([k, v]) => `${k} ${v}`).join(', ');
  lines.push(
    '',
    'side by side on the same captures',
    `  colo-proxy (virtual clock)  ${verdict(ours.checkpoints)}${reasons ? ` (${reasons})` : ''}; released ${ours.released}`,
    `  ${r.comparator.split(' ')[0]!.padEnd(26)}  ${theirs}; released ${r.released}, lost ${r.lost}`,
  );
  return `${lines.join('\n')}\n`;
}
