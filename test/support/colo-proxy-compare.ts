/**
 * OUR `colo-proxy compare` as a comparator under test, behind the same interface as QEMU's real
 * colo-compare in `qemu-colo-compare.ts`, so that one scenario can be played into either and the
 * outcomes compared (test/proxy/differential.test.ts).
 *
 * `startColoProxyCompare` starts ours; `startComparator('qemu' | 'colo-proxy', options)` starts
 * either with the same options; `checkpointAndFlush(c)` sends COLO_CHECKPOINT to either and waits
 * until the flush is over. `startRawColoProxyCompare` gives raw access to ours instead (below).
 *
 * The process: `node --single-threaded-gc --import tsx proxy/cli/main.ts compare` (the Node flags of
 * the executable; under the benches the build in dist/ instead: colo-proxy-cli.ts) with all four ports listening on
 * UNIX sockets in a fresh temp dir:
 *
 *   --primary-in unix:DIR/primary_in,server --secondary-in unix:DIR/secondary_in,server
 *   --outdev unix:DIR/outdev,server --notify-dev unix:DIR/notify_dev,server
 *   [--vnet-hdr] [--compare-timeout MS] [--expired-scan-cycle MS] [--max-queue-size N]
 *
 * Connection, handshake, `sync` barrier, waits and clean-up are the very same as for QEMU
 * (comparator-under-test.ts). The barrier holds here because our comparator releases a datagram
 * only when both sides have sent it and they match (datagram flows are compared FIFO, other
 * connections never hold it back, a pending checkpoint neither), and each input is one byte stream
 * ingested in order and released frames are written to outdev in release order.
 *
 * Differences from QEMU's harness, on purpose:
 * - Controller messages are framed as the Xen toolstack frames them (no `VNET_LEN`), vnet or not:
 *   that is what our notify-dev reads (QEMU's reader wants a `VNET_LEN` when vnet is on, see
 *   qemu-colo-compare.ts). Each side's harness speaks what its comparator expects, so scenarios
 *   do not need to know.
 * - Our outdev keeps released frames for the next peer, so no frame is lost before the outdev
 *   connection; the start-up barrier is done once, not retried, to prove the whole path works.
 */

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { coloProxyArgv } from './colo-proxy-cli.js';
import { emitUdp } from '../../compare/index.js';
import { encodeNotify } from '../../proxy/framing/notify.js';
import { ChildUnderTest, connectComparator, makeTempDir, type ComparatorUnderTest, type ReleasedFrame } from './comparator-under-test.js';
import { startQemuColoCompare } from './qemu-colo-compare.js';
import { dial, waitFor } from './socket-peer.js';

export type { ComparatorUnderTest, ReleasedFrame } from './comparator-under-test.js';

/** Options both comparators understand; absent ones are left to the comparator's defaults (QEMU's, COLO-REFERENCE §3). */
export interface ComparatorUnderTestOptions {
  /** Frames on primary_in, secondary_in and outdev carry `VNET_LEN` (QEMU vnet_hdr_support, our --vnet-hdr). */
  vnetHeader?: boolean;
  /** compare_timeout / --compare-timeout, ms. */
  compareTimeoutMs?: number;
  /** expired_scan_cycle / --expired-scan-cycle, ms. */
  scanIntervalMs?: number;
  /** max_queue_size / --max-queue-size. */
  maxQueueSize?: number;
  /** Skip the start-up notify handshake (default false). */
  skipHello?: boolean;
  /** Bound on the whole start-up, ms (default 15000 for ours: node + tsx start in about a second). */
  startTimeoutMs?: number;
}

export type ComparatorKind = 'qemu' | 'colo-proxy';

/** Flush markers: PVM-only datagrams on their own flow (10.0.0.2:9 -> 10.0.0.1:9, payload `colo-flush-N`). */
const FLUSH_PORT = 9;
let flushMarkers = 0;

/**
 * Sends COLO_CHECKPOINT and resolves once the comparator has flushed, for either comparator.
 *
 * `checkpointDone(); sync()` is racy, with QEMU and with us: COLO_CHECKPOINT and the barrier's
 * datagrams come on different sockets, so the comparator may ingest the barrier's SVM copy first;
 * the flush then discards it and the PVM copy stays held until compare_timeout (seen with QEMU: the
 * barrier never came out). Instead a PVM-only marker datagram is sent and synced first (held: it
 * has no SVM copy), then COLO_CHECKPOINT; the flush releases the marker, and both comparators flush
 * everything in one go, so once the marker is out the flush is over. The marker is removed from
 * `released` (wherever the flush put it); frames flushed with it stay there. Call `sync()` after
 * this to be sure everything the flush wrote has been read.
 */
export async function checkpointAndFlush(c: ComparatorUnderTest, timeoutMs = 5000): Promise<void> {
  const tag = `colo-flush-${++flushMarkers}`;
  const marker = emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: FLUSH_PORT, dstPort: FLUSH_PORT, payload: tag });
  const isMarker = (f: ReleasedFrame): boolean => Buffer.from(f.packet).equals(marker);
  await c.sendPrimary(marker);
  await c.sync();
  if (c.released.some(isMarker)) throw new Error(`flush marker ${tag} was released before COLO_CHECKPOINT, yet it has no SVM copy`);
  await c.checkpointDone();
  await waitFor(() => `flush marker ${tag} after COLO_CHECKPOINT: no flush; notify ${JSON.stringify(c.notifyMessages)}; stderr: ${c.stderr.trim()}`, () => c.released.some(isMarker), timeoutMs);
  c.released.splice(c.released.findIndex(isMarker), 1);
}

/** Starts QEMU's colo-compare or ours with the same options. */
export function startComparator(kind: ComparatorKind, options: ComparatorUnderTestOptions = {}): Promise<ComparatorUnderTest> {
  return kind === 'qemu' ? startQemuColoCompare(options) : startColoProxyCompare(options);
}

/** The repository root (this file is test/support/colo-proxy-compare.ts): `--import tsx` resolves from there. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FLAG_OF = {
  primary_in: '--primary-in', secondary_in: '--secondary-in', outdev: '--outdev', notify_dev: '--notify-dev',
} as const;

/** The argv after `node` for the given socket directory and options. */
export function coloProxyCompareArgs(dir: string, o: ComparatorUnderTestOptions = {}): string[] {
  const args = coloProxyArgv(['compare']);
  for (const [name, flag] of Object.entries(FLAG_OF)) args.push(flag, `unix:${join(dir, name)},server`);
  if (o.vnetHeader === true) args.push('--vnet-hdr');
  if (o.compareTimeoutMs !== undefined) args.push('--compare-timeout', String(o.compareTimeoutMs));
  if (o.scanIntervalMs !== undefined) args.push('--expired-scan-cycle', String(o.scanIntervalMs));
  if (o.maxQueueSize !== undefined) args.push('--max-queue-size', String(o.maxQueueSize));
  return args;
}

/** `colo-proxy compare` running on the four sockets of a fresh temp dir (the prefix names it). */
function spawnColoProxyCompare(prefix: string, options: ComparatorUnderTestOptions): ChildUnderTest {
  const dir = makeTempDir(prefix);
  return new ChildUnderTest('colo-proxy compare', dir, process.execPath, coloProxyCompareArgs(dir, options), ROOT);
}

/** Starts `colo-proxy compare` and connects to it; see the module header. */
export function startColoProxyCompare(options: ComparatorUnderTestOptions = {}): Promise<ComparatorUnderTest> {
  return connectComparator(spawnColoProxyCompare('colo-proxy-diff-', options), {
    vnetHeader: options.vnetHeader === true,
    notifyFrame: encodeNotify,
    skipHello: options.skipHello,
    startTimeoutMs: options.startTimeoutMs ?? 15000,
  });
}

/**
 * OUR `colo-proxy compare` with raw access to its inputs: `write(side, bytes)` writes bytes to
 * primary_in or secondary_in verbatim (so a QEMU filter stream can be relayed chunk for chunk,
 * with no re-encoding), and `outdev` collects the raw bytes it releases. Started as above;
 * notify_dev is left unconnected (nothing here needs a checkpoint).
 */
export interface RawColoProxyCompare {
  readonly commandLine: readonly string[];
  readonly stderr: string;
  /** The raw bytes read from outdev so far. */
  outdev(): Buffer;
  write(side: 'primary_in' | 'secondary_in', bytes: Uint8Array): void;
  waitForOutdev(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startRawColoProxyCompare(options: { vnetHeader?: boolean; startTimeoutMs?: number } = {}): Promise<RawColoProxyCompare> {
  const child = spawnColoProxyCompare('colo-proxy-filters-', { vnetHeader: options.vnetHeader });
  const sockets = new Map<string, Socket>();
  const out: Buffer[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const s of sockets.values()) s.destroy();
    await child.close();
  };
  try {
    const deadline = Date.now() + (options.startTimeoutMs ?? 15000);
    for (const name of ['primary_in', 'secondary_in', 'outdev']) {
      const s = await dial(join(child.dir, name), Math.max(1, deadline - Date.now()), () => child.checkAlive());
      s.on('error', () => {});
      sockets.set(name, s);
    }
    sockets.get('outdev')!.on('data', (c: Buffer) => out.push(c));
  } catch (e) {
    await close();
    throw e;
  }
  const outLength = (): number => out.reduce((a, c) => a + c.length, 0);
  return {
    commandLine: child.commandLine,
    get stderr() {
      return child.stderr;
    },
    outdev: () => Buffer.concat(out),
    write: (side, bytes) => {
      child.checkAlive();
      sockets.get(side)!.write(bytes);
    },
    waitForOutdev: (n, timeoutMs = 3000) =>
      waitFor(() => `${n} bytes on outdev, have ${outLength()}; stderr: ${JSON.stringify(child.stderr.trim())}`, () => {
        child.checkAlive();
        return outLength() >= n;
      }, timeoutMs),
    close,
  };
}
