/**
 * QEMU's own colo-compare as a reference peer for tests: a `qemu-system-x86_64` with no machine,
 * no devices and no guest, holding one `colo-compare` object wired to four UNIX-socket chardevs
 * that QEMU serves and the test connects to. The test plays PVM output into `primary_in`, SVM
 * output into `secondary_in`, reads `outdev` and acts as the Xen checkpoint controller on
 * `notify_dev` (COLO-REFERENCE §2-§4). The command line (see `qemuColoCompareArgs`):
 *
 *   qemu-system-x86_64 -machine none -nodefaults -display none -S
 *     -object iothread,id=iothread0
 *     -chardev socket,id=primary_in,path=DIR/primary_in,server=on,wait=off   (same for
 *        secondary_in, outdev, notify_dev)
 *     -object colo-compare,id=comp0,primary_in=primary_in,secondary_in=secondary_in,
 *        outdev=outdev,iothread=iothread0,notify_dev=notify_dev[,vnet_hdr_support=on]
 *        [,compare_timeout=MS][,expired_scan_cycle=MS][,max_queue_size=N]
 *
 * Black box, so nothing is timed by sleeping: `start` connects (retrying while QEMU creates the
 * sockets), does the notify handshake (COLO_USERSPACE_PROXY_INIT, answered by
 * COLO_COMPARE_GET_XEN_INIT) and then a `sync` barrier, which also proves that QEMU has accepted
 * `outdev` (QEMU drops what it releases to an outdev socket it has not accepted yet).
 * `sync` sends one unique UDP datagram on its own flow (10.0.0.2:7 -> 10.0.0.1:7, payload
 * `colo-barrier-N`; scenarios must not use that flow) to the secondary and then to the primary;
 * QEMU reads each input in stream order in one iothread and writes `outdev` in order, so when the
 * datagram comes out of `outdev`, every frame sent before it on either input has been compared
 * and everything QEMU released before it has been read. Barrier frames are never listed in
 * `released`. Waits are bounded polls that fail with what was seen so far.
 *
 * Facts this harness relies on, observed with QEMU 7.2 (Debian 1:7.2+dfsg-7):
 * - With `vnet_hdr_support=on` QEMU's notify_dev *reader* also expects a `VNET_LEN` field (it
 *   shares the input framing code), although what QEMU *writes* there never has one and no Xen
 *   controller sends one. The harness therefore frames controller messages with `VNET_LEN` 0
 *   when vnet is on (`notifyVnetLen` overrides this, to demonstrate the desync).
 * - A frame QEMU releases before it has accepted `outdev` is lost ("colo send primary packet
 *   failed" on stderr), hence the start-up barrier retries.
 * - `-S` makes no difference with `-machine none` (there is no vCPU; colo-compare runs in its
 *   iothread either way); `iothread` is mandatory ("Parameter 'iothread' is missing").
 * - `compare_timeout=0` makes QEMU 7.2 abort (SIGABRT, qemu_mutex_destroy assertion) at start-up;
 *   `start` then fails with QEMU's stderr.
 * - QEMU removes its socket files when it exits; the harness removes the directory anyway.
 *
 * If `qemu-system-x86_64` is not installed, `startQemuColoCompare` throws an Error naming the
 * apt-get line: a test using this harness fails, it never skips.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { emitUdp } from '../../compare/index.js';
import { encodeQemuFrame, QemuFrameDecoder } from '../../proxy/framing/qemu-frames.js';
import { COLO_COMPARE_GET_XEN_INIT, COLO_USERSPACE_PROXY_INIT, COLO_CHECKPOINT, NotifyDecoder } from '../../proxy/framing/notify.js';

export const QEMU_BINARY = 'qemu-system-x86_64';
export const QEMU_PACKAGE = 'qemu-system-x86';
export const QEMU_INSTALL_LINE = `apt-get install -y --no-install-recommends ${QEMU_PACKAGE}`;

/** Options of `startQemuColoCompare`; absent ones are left to QEMU's defaults (COLO-REFERENCE §3). */
export interface QemuColoCompareOptions {
  /** `vnet_hdr_support=on`: every frame on primary_in, secondary_in and outdev carries `VNET_LEN`. */
  vnetHeader?: boolean;
  /** `compare_timeout` in ms (QEMU's default 3000). */
  compareTimeoutMs?: number;
  /** `expired_scan_cycle` in ms (QEMU's default 1000). */
  scanIntervalMs?: number;
  /** `max_queue_size` (QEMU's default 1024). */
  maxQueueSize?: number;
  /** Whether controller messages carry a `VNET_LEN` 0 field; default: as `vnetHeader` (what QEMU's reader expects). */
  notifyVnetLen?: boolean;
  /** Skip the start-up notify handshake (default false). */
  skipHello?: boolean;
  /** Bound on the whole start-up, ms (default 5000). */
  startTimeoutMs?: number;
}

/** A frame QEMU wrote to outdev: copies, safe to keep. */
export interface ReleasedFrame {
  /** The Ethernet frame. */
  packet: Uint8Array;
  /** The virtio-net header as QEMU wrote it (empty without vnet). */
  vnetHeader: Uint8Array;
}

export interface QemuColoCompare {
  /** The argv QEMU was started with (binary first). */
  readonly commandLine: readonly string[];
  readonly vnetHeader: boolean;
  /** Frames QEMU wrote to outdev so far, in order, barrier frames left out. Live array. */
  readonly released: ReleasedFrame[];
  /** Messages QEMU wrote to notify_dev so far, in order, including the reply to the hello. Live array. */
  readonly notifyMessages: string[];
  /** QEMU's stderr so far. */
  readonly stderr: string;
  /** Sends one frame to primary_in; with vnet, `vnetHeader` defaults to 12 zero bytes. Resolves once written to the socket. */
  sendPrimary(frame: Uint8Array, vnetHeader?: Uint8Array): Promise<void>;
  /** Sends one frame to secondary_in, as `sendPrimary`. */
  sendSecondary(frame: Uint8Array, vnetHeader?: Uint8Array): Promise<void>;
  /** Waits until at least `n` frames have been released; returns a copy of `released`. */
  waitForReleased(n: number, timeoutMs?: number): Promise<ReleasedFrame[]>;
  /** Waits until `text` has come on notify_dev at least `count` times (default 1). */
  waitForNotify(text: string, timeoutMs?: number, count?: number): Promise<void>;
  /** Waits until QEMU's stderr matches `pattern`. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a controller message, framed as QEMU's notify reader expects (see `notifyVnetLen`). */
  sendNotify(text: string): Promise<void>;
  /** Writes raw bytes to notify_dev (for framing experiments). */
  sendNotifyBytes(bytes: Uint8Array): Promise<void>;
  /** Sends COLO_CHECKPOINT: the checkpoint is done, QEMU flushes its queues. */
  checkpointDone(): Promise<void>;
  /** Returns the frames released so far and empties `released`. */
  takeReleased(): ReleasedFrame[];
  /** Barrier (see the module header): resolves when everything sent so far has been processed by QEMU. */
  sync(timeoutMs?: number): Promise<void>;
  /** Kills QEMU, waits for it to exit, closes the sockets and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_WAIT_MS = 2000;
const POLL_MS = 5;
const DEFAULT_VNET_HEADER = new Uint8Array(12);
const SOCKETS = ['primary_in', 'secondary_in', 'outdev', 'notify_dev'] as const;
type SocketName = (typeof SOCKETS)[number];

/** QEMU processes still running, killed if the test process exits without closing them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function findOnPath(binary: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The QEMU argv (without the binary) for the given socket directory and options. */
export function qemuColoCompareArgs(dir: string, o: QemuColoCompareOptions = {}): string[] {
  const args = ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-object', 'iothread,id=iothread0'];
  for (const name of SOCKETS) args.push('-chardev', `socket,id=${name},path=${join(dir, name)},server=on,wait=off`);
  let compare = 'colo-compare,id=comp0,primary_in=primary_in,secondary_in=secondary_in,outdev=outdev,iothread=iothread0,notify_dev=notify_dev';
  if (o.vnetHeader === true) compare += ',vnet_hdr_support=on';
  if (o.compareTimeoutMs !== undefined) compare += `,compare_timeout=${o.compareTimeoutMs}`;
  if (o.scanIntervalMs !== undefined) compare += `,expired_scan_cycle=${o.scanIntervalMs}`;
  if (o.maxQueueSize !== undefined) compare += `,max_queue_size=${o.maxQueueSize}`;
  args.push('-object', compare);
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

function notifyFrame(text: string, vnetLen: boolean): Uint8Array {
  const body = new TextEncoder().encode(text);
  return encodeQemuFrame(body, vnetLen ? new Uint8Array(0) : undefined);
}

/** Starts QEMU's colo-compare and connects to it; see the module header. */
export async function startQemuColoCompare(options: QemuColoCompareOptions = {}): Promise<QemuColoCompare> {
  const binary = findOnPath(QEMU_BINARY);
  if (binary === undefined) {
    throw new Error(`${QEMU_BINARY} is not installed, and the QEMU reference tests need it. ` +
      `Install it with: apt-get update && ${QEMU_INSTALL_LINE} (or run \`npm run setup\` as root, which does exactly that)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'colo-qemu-'));
  const args = qemuColoCompareArgs(dir, options);
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const h = new Harness(child, dir, [binary, ...args], options);
  try {
    await h.start(options.startTimeoutMs ?? 5000);
  } catch (e) {
    await h.close();
    throw e;
  }
  return h;
}

class Harness implements QemuColoCompare {
  readonly vnetHeader: boolean;
  readonly released: ReleasedFrame[] = [];
  readonly notifyMessages: string[] = [];
  private stderrText = '';
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined = undefined;
  private readonly exitPromise: Promise<void>;
  private readonly sockets = new Map<SocketName, Socket>();
  private readonly outDecoder: QemuFrameDecoder;
  /** QEMU's messages never carry VNET_LEN, vnet or not; the decoder also rejects a NUL or non-ASCII byte. */
  private readonly notifyDecoder = new NotifyDecoder();
  private readonly notifyVnetLen: boolean;
  private streamError: Error | undefined = undefined;
  /** Barrier datagrams sent and not yet seen on outdev, by their payload text. */
  private readonly barriersPending = new Set<string>();
  private barrierCount = 0;
  private closed = false;

  constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly commandLine: readonly string[],
    private readonly options: QemuColoCompareOptions,
  ) {
    this.vnetHeader = options.vnetHeader === true;
    this.notifyVnetLen = options.notifyVnetLen ?? this.vnetHeader;
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
          const s = await connectOnce(path);
          this.attach(name, s);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw e;
          if (Date.now() >= deadline) throw new Error(`QEMU did not create ${path} within ${timeoutMs} ms; stderr: ${this.stderrText}`);
          await new Promise((r) => setTimeout(r, POLL_MS));
        }
      }
    }
    if (this.options.skipHello !== true) {
      await this.sendNotify(COLO_USERSPACE_PROXY_INIT);
      await this.waitForNotify(COLO_COMPARE_GET_XEN_INIT, Math.max(1, deadline - Date.now()));
    }
    // QEMU drops frames released before it accepted outdev: retry the barrier until one comes through.
    for (;;) {
      try {
        await this.sync(Math.min(200, Math.max(1, deadline - Date.now())));
        return;
      } catch (e) {
        if (Date.now() >= deadline) throw e;
      }
    }
  }

  private attach(name: SocketName, s: Socket): void {
    this.sockets.set(name, s);
    s.on('error', (e) => {
      if (!this.closed) this.streamError ??= new Error(`${name}: ${e.message}`);
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
        this.streamError ??= new Error(`QEMU wrote ${chunk.length} unexpected bytes on ${name}`);
      });
    }
  }

  private onOutdev(chunk: Buffer): void {
    try {
      for (const f of this.outDecoder.push(chunk)) {
        const packet = Uint8Array.from(f.packet);
        const barrier = this.barrierOf(packet);
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

  /** The barrier tag if `packet` is one of our barrier datagrams (its own flow, 10.0.0.2:7 -> 10.0.0.1:7). */
  private barrierOf(packet: Uint8Array): string | undefined {
    // Ethernet 14 + IPv4 20 + UDP 8; protocol 17 at 23, ports 7 and 7 at 34..37.
    if (packet.length < 42 || packet[12] !== 0x08 || packet[13] !== 0x00 || packet[23] !== 17) return undefined;
    if (packet[34] !== 0 || packet[35] !== 7 || packet[36] !== 0 || packet[37] !== 7) return undefined;
    const tag = Buffer.from(packet.subarray(42)).toString('latin1');
    return tag.startsWith('colo-barrier-') ? tag : undefined;
  }

  private checkAlive(): void {
    if (this.streamError) throw this.streamError;
    if (this.exited) {
      throw new Error(`QEMU exited (code ${this.exited.code}, signal ${this.exited.signal}); stderr: ${this.stderrText.trim()}`);
    }
  }

  private describe(): string {
    return `released ${this.released.length} frame(s); notify messages ${JSON.stringify(this.notifyMessages)}; ` +
      `QEMU ${this.exited ? 'exited' : 'running'}; stderr: ${JSON.stringify(this.stderrText.trim())}`;
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

  async waitForNotify(text: string, timeoutMs = DEFAULT_WAIT_MS, count = 1): Promise<void> {
    await until(() => {
      this.checkAlive();
      return this.notifyMessages.filter((m) => m === text).length >= count;
    }, timeoutMs, () => `waiting for ${count} x ${text} on notify_dev; ${this.describe()}`);
  }

  async waitForStderr(pattern: RegExp, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await until(() => pattern.test(this.stderrText) || this.exited !== undefined, timeoutMs, () => `waiting for stderr ${pattern}; ${this.describe()}`);
    if (!pattern.test(this.stderrText)) this.checkAlive();
  }

  sendNotify(text: string): Promise<void> {
    return this.sendNotifyBytes(notifyFrame(text, this.notifyVnetLen));
  }

  async sendNotifyBytes(bytes: Uint8Array): Promise<void> {
    this.checkAlive();
    await writeAll(this.sockets.get('notify_dev')!, bytes);
  }

  checkpointDone(): Promise<void> {
    return this.sendNotify(COLO_CHECKPOINT);
  }

  takeReleased(): ReleasedFrame[] {
    return this.released.splice(0, this.released.length);
  }

  async sync(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    const tag = `colo-barrier-${++this.barrierCount}`;
    const datagram = emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 7, dstPort: 7, payload: tag });
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
