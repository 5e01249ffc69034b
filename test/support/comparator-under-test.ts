/**
 * A comparator under test over four UNIX-socket ports (primary_in, secondary_in, outdev,
 * notify_dev in a temp dir), whichever process serves them: QEMU's colo-compare
 * (qemu-colo-compare.ts) or our `colo-proxy compare` (colo-proxy-compare.ts). `ChildUnderTest`
 * runs a process (stderr kept, SIGKILLed if the test process exits first) and `close` kills it
 * (SIGTERM, SIGKILL after 2 s) and removes its temp dir. `connectComparator` connects to the four
 * sockets (retrying while the process creates them), does the Xen notify handshake
 * (COLO_USERSPACE_PROXY_INIT, answered by COLO_COMPARE_GET_XEN_INIT) and a `sync` barrier; a start
 * that fails closes the process.
 *
 * The barrier sends one UDP datagram on its own flow (10.0.0.2:7 -> 10.0.0.1:7, payload
 * `colo-barrier-N`; scenarios must not use that flow) to the secondary and then to the primary;
 * when it comes out of outdev, every frame sent before it on either input has been processed and
 * every frame released before it has been read (why that holds: each comparator's module header).
 * Barrier frames are never listed in `released`. Waits are bounded polls that fail with what was
 * seen so far; a socket error or close, bytes on an input or undecodable output fail the next call.
 */

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emitUdp } from '../../compare/index.js';
import { encodeQemuFrame } from '../../proxy/framing/qemu-frames.js';
import { COLO_CHECKPOINT, COLO_COMPARE_GET_XEN_INIT, COLO_USERSPACE_PROXY_INIT } from '../../proxy/framing/notify.js';
import { dial, FramePeer, NotifyPeer, waitFor, writeAll } from './socket-peer.js';

const DEFAULT_WAIT_MS = 2000;
const DEFAULT_VNET_HEADER = new Uint8Array(12);
const PORTS = ['primary_in', 'secondary_in', 'outdev', 'notify_dev'] as const;
type PortName = (typeof PORTS)[number];

/** A frame the comparator wrote to outdev: copies, safe to keep. */
export interface ReleasedFrame {
  /** The Ethernet frame. */
  packet: Uint8Array;
  /** The virtio-net header as written (empty without vnet). */
  vnetHeader: Uint8Array;
}

/** What a differential scenario may do with a comparator: QEMU's or ours. */
export interface ComparatorUnderTest {
  /** The argv the process was started with (binary first). */
  readonly commandLine: readonly string[];
  readonly vnetHeader: boolean;
  /** Frames written to outdev so far, in order, barrier frames left out. Live array. */
  readonly released: ReleasedFrame[];
  /** Messages written to notify_dev so far, in order, including the reply to the hello. */
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
  /** Barrier (see the module header): resolves when everything sent so far has been processed and everything released before it read. */
  sync(timeoutMs?: number): Promise<void>;
  /** Kills the comparator, closes the sockets and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

export { findOnPath } from '../../proxy/replay/qemu-colo-compare.js';

/** A fresh directory under the system temp dir. */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Processes still running, SIGKILLed if the test process exits without closing them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** `spawn`, with the child SIGKILLed if the test process exits while it still runs. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const child = spawn(command, args, options);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** A process under test, named `label` in messages, owning the temp dir `dir`. */
export class ChildUnderTest {
  readonly commandLine: readonly string[];
  private readonly child: ChildProcess;
  private stderrText = '';
  private exitStatus: string | undefined = undefined;
  private readonly exitPromise: Promise<void>;

  constructor(readonly label: string, readonly dir: string, command: string, args: readonly string[], cwd?: string) {
    this.commandLine = [command, ...args];
    const child = spawnTracked(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (this.stderrText += d));
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = `code ${code}, signal ${signal}`;
        resolve();
      });
      child.once('error', (e) => {
        live.delete(child);
        this.exitStatus ??= `spawn error: ${e.message}`;
        resolve();
      });
    });
  }

  get stderr(): string {
    return this.stderrText;
  }

  get exited(): boolean {
    return this.exitStatus !== undefined;
  }

  /** Throws, with the stderr, if the process has exited. */
  checkAlive(): void {
    if (this.exitStatus !== undefined) throw new Error(`${this.label} exited (${this.exitStatus}); stderr: ${this.stderrText.trim()}`);
  }

  describe(): string {
    return `${this.label} ${this.exited ? 'exited' : 'running'}; stderr: ${JSON.stringify(this.stderrText.trim())}`;
  }

  /** Kills the process (SIGTERM, SIGKILL after 2 s), waits for it and removes the temp dir. */
  async close(): Promise<void> {
    if (!this.exited) {
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await this.exitPromise;
      clearTimeout(killer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ConnectOptions {
  vnetHeader: boolean;
  /** Frames a controller message as this comparator's notify_dev reader expects it. */
  notifyFrame: (text: string) => Uint8Array;
  /** Skip the start-up notify handshake. */
  skipHello?: boolean;
  /** Repeat the start-up barrier until one comes through (for a comparator that drops what it releases before it accepted outdev). */
  retryStartBarrier?: boolean;
  /** Bound on the whole start-up, ms. */
  startTimeoutMs: number;
}

/** Connects to the four ports in `child.dir` and starts as the module header says; closes `child` if that fails. */
export async function connectComparator(child: ChildUnderTest, o: ConnectOptions): Promise<PortComparator> {
  const deadline = Date.now() + o.startTimeoutMs;
  const sockets: Socket[] = [];
  try {
    for (const name of PORTS) sockets.push(await dial(join(child.dir, name), Math.max(1, deadline - Date.now()), () => child.checkAlive()));
  } catch (e) {
    const error = child.exited ? e : new Error(`${(e as Error).message}; ${child.describe()}`);
    for (const s of sockets) s.destroy();
    await child.close();
    throw error;
  }
  const c = new PortComparator(child, sockets, o);
  try {
    await c.start(deadline);
  } catch (e) {
    await c.close();
    throw e;
  }
  return c;
}

/** The barrier datagram with payload `tag`. */
function barrierDatagram(tag: string): Uint8Array {
  return emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 7, dstPort: 7, payload: tag });
}

/** The barrier tag if `packet` is a barrier datagram (10.0.0.2:7 -> 10.0.0.1:7 UDP, payload `colo-barrier-N`). */
function barrierOf(packet: Uint8Array): string | undefined {
  // Ethernet 14 + IPv4 20 + UDP 8; protocol 17 at 23, ports 7 and 7 at 34..37.
  if (packet.length < 42 || packet[12] !== 0x08 || packet[13] !== 0x00 || packet[23] !== 17) return undefined;
  if (packet[34] !== 0 || packet[35] !== 7 || packet[36] !== 0 || packet[37] !== 7) return undefined;
  const tag = Buffer.from(packet.subarray(42)).toString('latin1');
  return tag.startsWith('colo-barrier-') ? tag : undefined;
}

/** A comparator connected on its four ports; see the module header. */
export class PortComparator implements ComparatorUnderTest {
  readonly vnetHeader: boolean;
  readonly released: ReleasedFrame[];
  private readonly sockets: ReadonlyMap<PortName, Socket>;
  private readonly outdev: FramePeer;
  private readonly notify: NotifyPeer;
  private streamError: Error | undefined = undefined;
  /** Barrier datagrams sent and not yet seen on outdev, by their payload text. */
  private readonly barriersPending = new Set<string>();
  private barrierCount = 0;
  private closed = false;

  constructor(private readonly child: ChildUnderTest, sockets: readonly Socket[], private readonly o: ConnectOptions) {
    this.vnetHeader = o.vnetHeader;
    this.sockets = new Map(PORTS.map((name, i) => [name, sockets[i]!]));
    for (const [name, s] of this.sockets) {
      s.on('error', (e) => this.fail(`${name}: ${e.message}`));
      s.on('close', () => this.fail(`${child.label} closed ${name}`));
    }
    for (const name of ['primary_in', 'secondary_in'] as const) {
      this.sockets.get(name)!.on('data', (chunk: Buffer) => this.fail(`${child.label} wrote ${chunk.length} unexpected bytes on ${name}`));
    }
    this.outdev = new FramePeer(this.sockets.get('outdev')!, this.vnetHeader, (f) => {
      const tag = barrierOf(f.packet);
      if (tag !== undefined) this.barriersPending.delete(tag);
      return tag === undefined;
    });
    this.released = this.outdev.received;
    this.notify = new NotifyPeer(this.sockets.get('notify_dev')!);
  }

  get commandLine(): readonly string[] {
    return this.child.commandLine;
  }

  get stderr(): string {
    return this.child.stderr;
  }

  get notifyMessages(): string[] {
    return this.notify.received.map((m) => m.text);
  }

  /** The handshake and the start-up barrier, both done by `deadline`. */
  async start(deadline: number): Promise<void> {
    const o = this.o;
    const left = (): number => Math.max(1, deadline - Date.now());
    if (o.skipHello !== true) {
      await this.sendNotify(COLO_USERSPACE_PROXY_INIT);
      await this.waitForNotify(COLO_COMPARE_GET_XEN_INIT, left());
    }
    for (;;) {
      try {
        await this.sync(o.retryStartBarrier === true ? Math.min(200, left()) : left());
        return;
      } catch (e) {
        if (o.retryStartBarrier !== true || Date.now() >= deadline) throw e;
      }
    }
  }

  private fail(message: string): void {
    if (!this.closed) this.streamError ??= new Error(message);
  }

  private checkAlive(): void {
    this.child.checkAlive();
    const e = this.streamError ?? this.outdev.error ?? this.notify.error;
    if (e) throw new Error(`${e.message}; stderr: ${this.child.stderr.trim()}`);
  }

  private describe(): string {
    return `released ${this.released.length} frame(s); notify messages ${JSON.stringify(this.notifyMessages)}; ${this.child.describe()}`;
  }

  private async send(name: PortName, frame: Uint8Array, vnetHeader: Uint8Array | undefined): Promise<void> {
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
    await waitFor(() => `${n} released frame(s); ${this.describe()}`, () => {
      this.checkAlive();
      return this.released.length >= n;
    }, timeoutMs);
    return this.released.slice();
  }

  takeReleased(): ReleasedFrame[] {
    return this.released.splice(0, this.released.length);
  }

  async waitForNotify(text: string, timeoutMs = DEFAULT_WAIT_MS, count = 1): Promise<void> {
    await waitFor(() => `${count} x ${text} on notify_dev; ${this.describe()}`, () => {
      this.checkAlive();
      return this.notify.count(text) >= count;
    }, timeoutMs);
  }

  /** Waits until the stderr matches `pattern` (or the process exits, which fails unless it matches). */
  async waitForStderr(pattern: RegExp, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await waitFor(() => `stderr ${pattern}; ${this.describe()}`, () => pattern.test(this.child.stderr) || this.child.exited, timeoutMs);
    if (!pattern.test(this.child.stderr)) this.checkAlive();
  }

  /** Sends a controller message, framed by `notifyFrame`. */
  sendNotify(text: string): Promise<void> {
    return this.sendNotifyBytes(this.o.notifyFrame(text));
  }

  /** Writes raw bytes to notify_dev (for framing experiments). */
  async sendNotifyBytes(bytes: Uint8Array): Promise<void> {
    this.checkAlive();
    await writeAll(this.sockets.get('notify_dev')!, bytes);
  }

  checkpointDone(): Promise<void> {
    return this.sendNotify(COLO_CHECKPOINT);
  }

  async sync(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    const tag = `colo-barrier-${++this.barrierCount}`;
    const datagram = barrierDatagram(tag);
    this.barriersPending.add(tag);
    try {
      await this.sendSecondary(datagram);
      await this.sendPrimary(datagram);
      await waitFor(() => `barrier ${tag} on outdev; ${this.describe()}`, () => {
        this.checkAlive();
        return !this.barriersPending.has(tag);
      }, timeoutMs);
    } finally {
      this.barriersPending.delete(tag);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sockets.values()) s.destroy();
    await this.child.close();
  }
}
