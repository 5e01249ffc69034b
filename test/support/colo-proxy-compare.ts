/**
 * OUR `colo-proxy compare` as a comparator under test, behind the same interface as QEMU's real
 * colo-compare in `qemu-colo-compare.ts`, so that one scenario can be played into either and the
 * outcomes compared (test/proxy/differential.test.ts).
 *
 * `ComparatorUnderTest` is the part of `QemuColoCompare` a scenario needs; QEMU's harness satisfies
 * it structurally (checked at compile time below) and `startColoProxyCompare` returns one.
 * `startComparator('qemu' | 'colo-proxy', options)` starts either with the same options;
 * `checkpointAndFlush(c)` sends COLO_CHECKPOINT to either and waits until the flush is over.
 *
 * The process: `node --import tsx proxy/cli/main.ts compare` with all four ports listening on
 * UNIX sockets in a fresh temp dir:
 *
 *   --primary-in unix:DIR/primary_in,server --secondary-in unix:DIR/secondary_in,server
 *   --outdev unix:DIR/outdev,server --notify-dev unix:DIR/notify_dev,server
 *   [--vnet-hdr] [--compare-timeout MS] [--expired-scan-cycle MS] [--max-queue-size N]
 *
 * Start-up connects to the four sockets (retrying while the process starts listening), does the
 * Xen notify handshake (COLO_USERSPACE_PROXY_INIT, answered by COLO_COMPARE_GET_XEN_INIT) and a
 * `sync` barrier. The barrier is the very same as QEMU's harness: one UDP datagram on its own
 * flow (10.0.0.2:7 -> 10.0.0.1:7, payload `colo-barrier-N`; scenarios must not use that flow),
 * sent to the secondary and then to the primary. Our comparator releases a datagram only when both
 * sides have sent it and they match (datagram flows are compared FIFO, other connections never
 * hold it back, a pending checkpoint neither), and each input is one byte stream ingested in
 * order and released frames are written to outdev in release order; so when the barrier comes out
 * of outdev, every frame sent before it on either input has been ingested and every frame released
 * before it has been read. Barrier frames are never listed in `released`.
 *
 * Differences from QEMU's harness, on purpose:
 * - Controller messages are framed as the Xen toolstack frames them (no `VNET_LEN`), vnet or not:
 *   that is what our notify-dev reads (QEMU's reader wants a `VNET_LEN` when vnet is on, see
 *   qemu-colo-compare.ts). Each side's harness speaks what its comparator expects, so scenarios
 *   do not need to know.
 * - Our outdev keeps released frames for the next peer, so no frame is lost before the outdev
 *   connection; the start-up barrier is still done once, to prove the whole path works.
 *
 * `close()` kills the process (SIGTERM, then SIGKILL after 2 s) and removes the temp dir; a start
 * that fails closes too, and a process still alive when the test process exits is SIGKILLed.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emitUdp } from '../../compare/index.js';
import { encodeQemuFrame, QemuFrameDecoder } from '../../proxy/framing/qemu-frames.js';
import { COLO_CHECKPOINT, COLO_COMPARE_GET_XEN_INIT, COLO_USERSPACE_PROXY_INIT, encodeNotify, NotifyDecoder } from '../../proxy/framing/notify.js';
import { startQemuColoCompare, type QemuColoCompare, type ReleasedFrame } from './qemu-colo-compare.js';

export type { ReleasedFrame } from './qemu-colo-compare.js';

/** What a differential scenario may do with a comparator: QEMU's or ours. */
export interface ComparatorUnderTest {
  readonly vnetHeader: boolean;
  /** Frames written to outdev so far, in order, barrier frames left out. Live array. */
  readonly released: ReleasedFrame[];
  /** Messages written to notify_dev so far, in order, including the reply to the hello. Live array. */
  readonly notifyMessages: string[];
  /** The comparator's stderr so far (for failure messages). */
  readonly stderr: string;
  /** Sends one frame to primary_in; with vnet, `vnetHeader` defaults to 12 zero bytes. Resolves once written to the socket. */
  sendPrimary(frame: Uint8Array, vnetHeader?: Uint8Array): Promise<void>;
  /** Sends one frame to secondary_in, as `sendPrimary`. */
  sendSecondary(frame: Uint8Array, vnetHeader?: Uint8Array): Promise<void>;
  /** Waits until at least `n` frames have been released; returns a copy of `released`. */
  waitForReleased(n: number, timeoutMs?: number): Promise<ReleasedFrame[]>;
  /** Returns the frames released so far and empties `released`. */
  takeReleased(): ReleasedFrame[];
  /** Waits until `text` has come on notify_dev at least `count` times (default 1). */
  waitForNotify(text: string, timeoutMs?: number, count?: number): Promise<void>;
  /** Sends COLO_CHECKPOINT (the checkpoint is done: flush the queues), framed as this comparator reads it. A `sync()` right after it is racy: wait with `checkpointAndFlush` instead. */
  checkpointDone(): Promise<void>;
  /** Barrier: resolves when everything sent so far has been processed and everything released before it read. */
  sync(timeoutMs?: number): Promise<void>;
  /** Kills the comparator, closes the sockets and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

// Compile-time proof that QEMU's harness fits the interface (it is not modified to declare it).
const qemuFits: (q: QemuColoCompare) => ComparatorUnderTest = (q) => q;
void qemuFits;

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
  await until(() => c.released.some(isMarker), timeoutMs, () => `flush marker ${tag} not released after COLO_CHECKPOINT: no flush; notify ${JSON.stringify(c.notifyMessages)}; stderr: ${c.stderr.trim()}`);
  c.released.splice(c.released.findIndex(isMarker), 1);
}

/** Starts QEMU's colo-compare or ours with the same options. */
export function startComparator(kind: ComparatorKind, options: ComparatorUnderTestOptions = {}): Promise<ComparatorUnderTest> {
  return kind === 'qemu' ? startQemuColoCompare(options) : startColoProxyCompare(options);
}

export interface ColoProxyCompare extends ComparatorUnderTest {
  /** The argv the process was started with (node first). */
  readonly commandLine: readonly string[];
}

/** The repository root (this file is test/support/colo-proxy-compare.ts). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEFAULT_WAIT_MS = 2000;
const POLL_MS = 5;
const DEFAULT_VNET_HEADER = new Uint8Array(12);
const SOCKETS = ['primary_in', 'secondary_in', 'outdev', 'notify_dev'] as const;
type SocketName = (typeof SOCKETS)[number];
const FLAG_OF: Record<SocketName, string> = {
  primary_in: '--primary-in', secondary_in: '--secondary-in', outdev: '--outdev', notify_dev: '--notify-dev',
};

/** Processes still running, killed if the test process exits without closing them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** The argv after `node` for the given socket directory and options. */
export function coloProxyCompareArgs(dir: string, o: ComparatorUnderTestOptions = {}): string[] {
  const args = ['--import', 'tsx', join(ROOT, 'proxy', 'cli', 'main.ts'), 'compare'];
  for (const name of SOCKETS) args.push(FLAG_OF[name], `unix:${join(dir, name)},server`);
  if (o.vnetHeader === true) args.push('--vnet-hdr');
  if (o.compareTimeoutMs !== undefined) args.push('--compare-timeout', String(o.compareTimeoutMs));
  if (o.scanIntervalMs !== undefined) args.push('--expired-scan-cycle', String(o.scanIntervalMs));
  if (o.maxQueueSize !== undefined) args.push('--max-queue-size', String(o.maxQueueSize));
  return args;
}

/** Polls `ready` every few ms until it is true; rejects after `timeoutMs` with `describe()`'s text. */
async function until(ready: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function connectOnce(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      s.destroy();
      reject(e);
    });
  });
}

function writeAll(s: Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    s.write(bytes, (e) => (e ? reject(e) : resolve()));
  });
}

/** Barrier datagrams: the same flow and payload as QEMU's harness uses. */
const BARRIER_PREFIX = 'colo-barrier-';

function barrierDatagram(tag: string): Uint8Array {
  return emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 7, dstPort: 7, payload: tag });
}

/** The barrier tag if `packet` is one of the barrier datagrams (10.0.0.2:7 -> 10.0.0.1:7 UDP). */
function barrierOf(packet: Uint8Array): string | undefined {
  // Ethernet 14 + IPv4 20 + UDP 8; protocol 17 at 23, ports 7 and 7 at 34..37.
  if (packet.length < 42 || packet[12] !== 0x08 || packet[13] !== 0x00 || packet[23] !== 17) return undefined;
  if (packet[34] !== 0 || packet[35] !== 7 || packet[36] !== 0 || packet[37] !== 7) return undefined;
  const tag = Buffer.from(packet.subarray(42)).toString('latin1');
  return tag.startsWith(BARRIER_PREFIX) ? tag : undefined;
}

/** Starts `colo-proxy compare` and connects to it; see the module header. */
export async function startColoProxyCompare(options: ComparatorUnderTestOptions = {}): Promise<ColoProxyCompare> {
  const dir = mkdtempSync(join(tmpdir(), 'colo-proxy-diff-'));
  let h: Harness | undefined;
  try {
    const args = coloProxyCompareArgs(dir, options);
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const c of live) c.kill('SIGKILL');
      });
    }
    h = new Harness(child, dir, [process.execPath, ...args], options);
    await h.start(options.startTimeoutMs ?? 15000);
    return h;
  } catch (e) {
    if (h) await h.close();
    else rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

class Harness implements ColoProxyCompare {
  readonly vnetHeader: boolean;
  readonly released: ReleasedFrame[] = [];
  readonly notifyMessages: string[] = [];
  private stderrText = '';
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined = undefined;
  private readonly exitPromise: Promise<void>;
  private readonly sockets = new Map<SocketName, Socket>();
  private readonly outDecoder: QemuFrameDecoder;
  /** Our messages never carry VNET_LEN; the decoder also rejects a NUL or non-ASCII byte. */
  private readonly notifyDecoder = new NotifyDecoder();
  private streamError: Error | undefined = undefined;
  private readonly barriersPending = new Set<string>();
  private barrierCount = 0;
  private closed = false;

  constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly commandLine: readonly string[],
    private readonly options: ComparatorUnderTestOptions,
  ) {
    this.vnetHeader = options.vnetHeader === true;
    this.outDecoder = new QemuFrameDecoder({ vnetHeader: this.vnetHeader });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      this.stderrText += d;
    });
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        live.delete(child);
        resolve();
      });
      child.once('error', (e) => {
        this.streamError ??= e;
        this.exited ??= { code: null, signal: null };
        live.delete(child);
        resolve();
      });
    });
  }

  get stderr(): string {
    return this.stderrText;
  }

  async start(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const name of SOCKETS) {
      const path = join(this.dir, name);
      for (;;) {
        this.checkAlive();
        try {
          this.attach(name, await connectOnce(path));
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw e;
          if (Date.now() >= deadline) throw new Error(`colo-proxy compare did not listen on ${path} within ${timeoutMs} ms; stderr: ${this.stderrText}`);
          await new Promise((r) => setTimeout(r, POLL_MS * 4));
        }
      }
    }
    if (this.options.skipHello !== true) {
      await this.sendNotify(COLO_USERSPACE_PROXY_INIT);
      await this.waitForNotify(COLO_COMPARE_GET_XEN_INIT, Math.max(1, deadline - Date.now()));
    }
    await this.sync(Math.max(1, deadline - Date.now()));
  }

  private attach(name: SocketName, s: Socket): void {
    this.sockets.set(name, s);
    s.on('error', (e) => {
      if (!this.closed) this.streamError ??= new Error(`${name}: ${e.message}`);
    });
    s.on('close', () => {
      if (!this.closed) this.streamError ??= new Error(`colo-proxy compare closed ${name}`);
    });
    if (name === 'outdev') {
      s.on('data', (chunk: Buffer) => this.onOutdev(chunk));
    } else if (name === 'notify_dev') {
      s.on('data', (chunk: Buffer) => {
        try {
          for (const m of this.notifyDecoder.push(chunk)) this.notifyMessages.push(m.text);
          if (this.notifyDecoder.error) throw this.notifyDecoder.error;
        } catch (e) {
          this.streamError ??= e as Error;
        }
      });
    } else {
      s.on('data', (chunk: Buffer) => {
        this.streamError ??= new Error(`colo-proxy compare wrote ${chunk.length} unexpected bytes on ${name}`);
      });
    }
  }

  private onOutdev(chunk: Buffer): void {
    try {
      for (const f of this.outDecoder.push(chunk)) {
        const packet = Uint8Array.from(f.packet);
        const barrier = barrierOf(packet);
        if (barrier !== undefined) {
          this.barriersPending.delete(barrier);
          continue;
        }
        this.released.push({ packet, vnetHeader: Uint8Array.from(f.vnetHeader) });
      }
      if (this.outDecoder.error) throw this.outDecoder.error;
    } catch (e) {
      this.streamError ??= e as Error;
    }
  }

  private checkAlive(): void {
    if (this.streamError) throw new Error(`${this.streamError.message}; stderr: ${this.stderrText.trim()}`);
    if (this.exited) {
      throw new Error(`colo-proxy compare exited (code ${this.exited.code}, signal ${this.exited.signal}); stderr: ${this.stderrText.trim()}`);
    }
  }

  private describe(): string {
    return `released ${this.released.length} frame(s); notify messages ${JSON.stringify(this.notifyMessages)}; ` +
      `colo-proxy ${this.exited ? 'exited' : 'running'}; stderr: ${JSON.stringify(this.stderrText.trim())}`;
  }

  private async send(name: SocketName, frame: Uint8Array, vnetHeader: Uint8Array | undefined): Promise<void> {
    this.checkAlive();
    const bytes = this.vnetHeader ? encodeQemuFrame(frame, vnetHeader ?? DEFAULT_VNET_HEADER) : encodeQemuFrame(frame);
    await writeAll(this.sockets.get(name)!, bytes);
  }

  sendPrimary(frame: Uint8Array, vnetHeader?: Uint8Array): Promise<void> {
    return this.send('primary_in', frame, vnetHeader);
  }

  sendSecondary(frame: Uint8Array, vnetHeader?: Uint8Array): Promise<void> {
    return this.send('secondary_in', frame, vnetHeader);
  }

  async waitForReleased(n: number, timeoutMs = DEFAULT_WAIT_MS): Promise<ReleasedFrame[]> {
    await until(() => {
      this.checkAlive();
      return this.released.length >= n;
    }, timeoutMs, () => `waiting for ${n} released frame(s); ${this.describe()}`);
    return this.released.slice();
  }

  takeReleased(): ReleasedFrame[] {
    return this.released.splice(0, this.released.length);
  }

  async waitForNotify(text: string, timeoutMs = DEFAULT_WAIT_MS, count = 1): Promise<void> {
    await until(() => {
      this.checkAlive();
      return this.notifyMessages.filter((m) => m === text).length >= count;
    }, timeoutMs, () => `waiting for ${count} x ${text} on notify_dev; ${this.describe()}`);
  }

  /** Controller messages as the Xen toolstack frames them: never a VNET_LEN. */
  private async sendNotify(text: string): Promise<void> {
    this.checkAlive();
    await writeAll(this.sockets.get('notify_dev')!, encodeNotify(text));
  }

  checkpointDone(): Promise<void> {
    return this.sendNotify(COLO_CHECKPOINT);
  }

  async sync(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    const tag = `${BARRIER_PREFIX}${++this.barrierCount}`;
    const datagram = barrierDatagram(tag);
    this.barriersPending.add(tag);
    await this.sendSecondary(datagram);
    await this.sendPrimary(datagram);
    try {
      await until(() => {
        this.checkAlive();
        return !this.barriersPending.has(tag);
      }, timeoutMs, () => `waiting for barrier ${tag} on outdev; ${this.describe()}`);
    } finally {
      this.barriersPending.delete(tag);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets.values()) s.destroy();
    if (!this.exited) {
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await this.exitPromise;
      clearTimeout(killer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
