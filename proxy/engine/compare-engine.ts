/**
 * The `compare` front end's loop: QEMU chardev sockets in, the comparator core in the middle,
 * released frames out on `outdev`, checkpoints through a controller.
 *
 * Each input chunk is decoded into frames (QEMU framing, with or without virtio-net headers),
 * every frame goes into the core with the monotonic clock's time and its virtio-net header as the
 * tag, and the frames the core releases are encoded back, header as received, into one buffer and
 * written with one write per chunk (a checkpoint's flush in writes of at most 256 KiB of whole
 * frames, so that an outdev peer going away takes only the one it was reading). The core is woken at its `nextDeadline` for timeouts. When
 * `outdev` cannot keep up (its socket buffer full, or no peer connected and too much waiting),
 * both inputs stop being read until it drains: memory stays bounded and the senders (QEMU's
 * redirectors) feel TCP backpressure. An input that runs far ahead of the other (more than half
 * `maxQueueFrames` frames waiting for the other side's) is paused on its own, so a burst read
 * from one socket before the other cannot fill a queue and cost a false checkpoint. That is
 * checked every INGEST_SLICE frames, not once a read: one 64 KiB read holds up to ~1,400 small
 * frames, more than the queue. The rest of a read that paused its input waits here (`backlog`),
 * and goes into the core, in order, before anything read after it, when the input resumes. The secondary
 * stays paused until it is halfway back. The primary is paused for at most PRIMARY_PAUSE_MS:
 * every flow's released output goes through it, so a PVM that stays ahead is a real lag, which
 * the queue limit and the timeout then turn into a checkpoint, as in QEMU. While a checkpoint is
 * pending, whatever the primary sends may have to be held until it is done (and a held frame keeps
 * its whole read buffer), so once PENDING_READ_LIMIT bytes of the primary input have been read
 * since the request, the primary stays paused until it is done: a controller that never answers
 * costs that much memory, not all of it. (A checkpoint pauses the PVM, so a prompt one never gets
 * near the limit; frames the PVM sent before it that are read only after it wait for secondary
 * copies that will not come, until a timeout.) A framing error closes that one connection (logged and
 * counted) and the listener waits for a new peer; the other ports keep working. A connection that
 * ends inside a frame loses that frame, counted and logged as a framing error too. Zero-length
 * frames are counted and skipped (QEMU never forwards one).
 *
 * The core's clock (`now`, what it and its deadlines see) is the monotonic clock less the time
 * both inputs spent paused for outdev, and stands still during such a pause. A frame held for its
 * other copy while outdev stalls would otherwise time out into a false checkpoint, that copy
 * sitting unread in the paused input's socket: the stall is outdev's, not the VMs'. Only those
 * pauses count: an input paused for running ahead of the other, or until a pending checkpoint is
 * done, is a lag between the VMs the timeout is there to catch. While the clock stands still no
 * deadline can come, so none is armed until the inputs resume.
 *
 * Stopping (`stop`) closes the inputs and the controller first, so nothing more is released, and
 * gives a connected outdev up to STOP_DRAIN_MS to take the released frames still queued for it.
 * Then it says in one line what is discarded: the frames the core still holds, what was read of
 * the primary's input and not compared yet (decoded frames and bytes Node read ahead while the
 * input was paused; what the kernel still buffers is lost with the connection, as on a wire) and
 * the released frames never written whole to outdev (no peer, or one too slow), or that nothing is.
 */

import { performance } from 'node:perf_hooks';
import { createComparator, type ActionSink, type Comparator, type ComparatorConfig, type Mismatch, type MismatchReason } from '../../compare/index.js';
import { QemuPacketDecoder, QemuFramingError, encodeQemuPackets, qemuFrameCount, suspectVnetMismatch } from '../framing/qemu-frames.js';
import type { Endpoint } from '../ports/endpoint.js';
import { StreamPort } from '../ports/stream-port.js';
import { startListenersFirst } from '../ports/start-ports.js';
import { createMetrics, type ProxyMetrics } from '../metrics/registry.js';
import { ImmediateController, XenNotifyController, type CheckpointController } from '../control/controller.js';
import { nodeBytesEqual } from './node-bytes-equal.js';
import { DeadlineTimer } from './deadline-timer.js';
import { warmUpChunks } from './warm-up-traffic.js';
import { LogLimiter } from './log-limiter.js';

export interface CompareOptions {
  primaryIn: Endpoint;
  secondaryIn: Endpoint;
  outdev: Endpoint;
  notifyDev: Endpoint | undefined;
  vnetHeader: boolean;
  comparator: Partial<ComparatorConfig>;
  /** One line per call: start-up, peers, mismatches, errors. */
  log(line: string): void;
}

/** Longest pause of the primary input for running ahead of the secondary (see the header). */
const PRIMARY_PAUSE_MS = 100;

/** Primary input bytes read while a checkpoint is pending after which the primary waits for it (see the header). */
export const PENDING_READ_LIMIT = 64 * 1024 * 1024;

/** Frames of a read ingested between two checks of whether their input runs too far ahead (see the header). */
const INGEST_SLICE = 32;

/** The rest of a read whose input was paused in the middle of it: its frames from `next` on. */
interface Backlog {
  side: 'primary' | 'secondary';
  frames: readonly Uint8Array[];
  headers: readonly Uint8Array[];
  next: number;
}

/** Room of the reusable outdev buffer (see `output`); a larger batch is encoded into one of its own. */
const OUTPUT_BYTES = 256 * 1024;

/** Bytes waiting for an outdev peer before the inputs are paused. */
const OUTDEV_PENDING_LIMIT = 16 * 1024 * 1024;

/** How long `stop` waits for a connected outdev to take the released frames still queued for it. */
const STOP_DRAIN_MS = 1000;

const EMPTY = new Uint8Array(0);

/** One line describing a mismatch for the log. */
export function describeMismatch(flow: string, m: Mismatch): string {
  const where = m.position >= 0 ? ` at ${m.position}` : '';
  const hex = m.primaryHex !== '' || m.secondaryHex !== '' ? ` primary ${m.primaryHex || '-'} secondary ${m.secondaryHex || '-'}` : '';
  return `mismatch ${m.reason} ${flow}${where}: ${m.detail}${hex}`;
}

/**
 * A core as `compare` drives it: pre-translated (QEMU's rewriter did the translation), Node's byte
 * comparison, frames kept as views: they are views of socket reads (fresh buffers) or of the
 * decoder's own copies of frames that straddled reads (fresh per frame), which nothing writes to.
 */
function comparingCore(comparator: Partial<ComparatorConfig>): Comparator {
  return createComparator({ bytesEqual: nodeBytesEqual, ...comparator, mode: 'pre-translated', framesImmutable: true });
}

export class CompareEngine implements ActionSink {
  readonly comparator: Comparator;
  readonly metrics: ProxyMetrics;
  /** Mismatch and event lines, kept from flooding the log. */
  private readonly flowLines: LogLimiter;
  readonly controller: CheckpointController;
  private readonly primary: StreamPort;
  private readonly secondary: StreamPort;
  private readonly outdev: StreamPort;
  private readonly decoders = new Map<StreamPort, QemuPacketDecoder>();
  /** Per input, the rest of a read paused in the middle (see the header). */
  private readonly backlog = new Map<StreamPort, Backlog>();
  /** True while frames go into the core: an input resumed meanwhile takes its backlog after (`wakeLater`). */
  private taking = false;
  private readonly wakeLater = new Set<StreamPort>();
  private readonly firstChunk = new Set<StreamPort>();
  /**
   * The first `releasedCount` entries: frames released since the last flush and their vnet
   * headers. The arrays are reused (cleared to EMPTY, never shortened), so a release allocates
   * nothing.
   */
  private readonly released: Uint8Array[] = [];
  private readonly releasedHeaders: Uint8Array[] = [];
  private releasedCount = 0;
  /**
   * The buffer released frames are encoded into, reused from one write to the next while each
   * write goes to the kernel whole (then nothing here keeps it); dropped when a write is queued.
   * A fresh buffer per write was one more ArrayBuffer per write for scavenges to sweep: with this
   * one our process ran 56 scavenges per compare-vs-qemu bench run instead of 74 (two runs each).
   */
  private output: Buffer | null = null;
  private readonly outputBytes = (n: number): Buffer => {
    if (n > OUTPUT_BYTES) return Buffer.allocUnsafeSlow(n);
    this.output ??= Buffer.allocUnsafeSlow(OUTPUT_BYTES);
    return this.output.subarray(0, n);
  };
  private readonly deadlines = new DeadlineTimer(() => this.comparator.nextDeadline(), () => this.now(), () => this.wake());
  private paused = false;
  /** The secondary input is paused because the SVM ran far ahead (see `balance`). */
  private secondaryAhead = false;
  /**
   * The primary input is paused for running ahead ('paused'), or its pause ran out ('expired'), or
   * it is paused until the pending checkpoint is done ('checkpoint'), or none of these ('no').
   */
  private primaryAhead: 'no' | 'paused' | 'expired' | 'checkpoint' = 'no';
  private primaryTimer: NodeJS.Timeout | null = null;
  private readonly aheadLimit: number;
  /** Primary input bytes read since the pending checkpoint was requested (0 when none is). */
  private readWhilePending = 0;
  private closed = false;
  /** Time the inputs spent paused for outdev, up to the current such pause (see `now`). */
  private stalledMs = 0;
  /** When the current pause for outdev began (`performance.now()`), or null when not paused for it. */
  private stalledSince: number | null = null;
  /** Called while `stop` waits for outdev, when it has taken every write or gone away. */
  private outdevSettled: (() => void) | null = null;
  /** True during `warmUp`: what its throwaway core reports goes nowhere. */
  private warming = false;

  constructor(private readonly options: CompareOptions) {
    this.flowLines = new LogLimiter(options.log);
    this.comparator = comparingCore(options.comparator);
    this.aheadLimit = Math.max(1, Math.floor((options.comparator.maxQueueFrames ?? 1024) / 2));
    this.metrics = createMetrics(this.comparator.counters, ['primary', 'secondary']);
    // Without a controller no checkpoint resets the SVM: a request ends in a resynchronisation.
    this.controller = options.notifyDev
      ? new XenNotifyController(options.notifyDev, () => this.run(() => this.comparator.checkpointDoneTo(this, this.now())), this.metrics, options.log)
      : new ImmediateController(() => this.run(() => this.comparator.resynchronizeTo(this, this.now())));
    this.primary = this.input('primary-in', options.primaryIn, 'primary');
    this.secondary = this.input('secondary-in', options.secondaryIn, 'secondary');
    // The inputs paused for a full outdev resume on 'drain', which a socket that went away never
    // emits, nor does a new peer that takes the waiting frames in its stride: so they resume on
    // either change too (released frames then wait for the next peer, up to OUTDEV_PENDING_LIMIT).
    this.outdev = new StreamPort(options.outdev, {
      connected: () => {
        this.metrics.peerConnections.inc({ port: 'outdev' });
        options.log('outdev: peer connected');
        this.resumeInputs();
      },
      data: () => {},
      disconnected: (reason, dropped) => {
        const frames = dropped === null ? 0 : qemuFrameCount(dropped, options.vnetHeader);
        this.metrics.outdevDropped.inc(frames);
        const lost = dropped === null ? '' : `; the write it was taking, ${frames} released frames (${dropped.length} bytes), is dropped, not resent (it may have read part of it)`;
        // What the kernel had taken for it and it had not read is gone with the socket, uncounted:
        // nothing here can see how much that was.
        options.log(`outdev: peer gone (${reason})${lost}; frames in the socket's kernel buffer it had not read are lost with it, as on a wire; released frames not yet written wait for the next one`);
        if (this.outdev.pendingBytes <= OUTDEV_PENDING_LIMIT) this.resumeInputs();
        this.outdevSettled?.();
      },
      drained: () => {
        this.resumeInputs();
        this.outdevSettled?.();
      },
      log: (line) => options.log(`outdev: ${line}`),
    });
  }

  /** How checkpoints are signalled, for the start-up log. */
  get checkpointsDescription(): string {
    return this.controller.description;
  }

  /**
   * Opens every port; rejects (naming the port) when one cannot listen. The listening ports open
   * first: a connecting one logs its failures to connect, which must not come before that error.
   */
  async start(): Promise<void> {
    const o = this.options;
    await startListenersFirst([
      { flag: '--primary-in', listens: o.primaryIn.server, start: () => this.primary.start() },
      { flag: '--secondary-in', listens: o.secondaryIn.server, start: () => this.secondary.start() },
      { flag: '--outdev', listens: o.outdev.server, start: () => this.outdev.start() },
      { flag: '--notify-dev', listens: o.notifyDev?.server ?? true, start: () => this.controller.start() },
    ], () => this.close());
  }

  /**
   * Stops for good, saying what is discarded (see the header): the inputs and the controller
   * close at once, outdev once it has taken what was released, STOP_DRAIN_MS have passed, or
   * `hurry` resolves (to what it says: a second signal), whichever comes first.
   */
  async stop(hurry?: Promise<string>): Promise<void> {
    this.halt();
    const unreadBytes = this.primary.unreadBytes;
    const partialBytes = this.decoders.get(this.primary)?.pendingBytes ?? 0;
    await Promise.all([this.primary.close(), this.secondary.close(), this.controller.close()]);
    let why = 'outdev has no peer';
    if (this.outdev.connected && this.outdev.unsent().length > 0) {
      let hurried: string | undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, STOP_DRAIN_MS);
        const settled = (): void => {
          clearTimeout(timer);
          resolve();
        };
        this.outdevSettled = settled;
        void hurry?.then((what) => {
          hurried = what;
          settled();
        });
      });
      this.outdevSettled = null;
      why = hurried !== undefined ? `${hurried} before outdev took them` : this.outdev.connected ? `outdev did not take them within ${STOP_DRAIN_MS} ms` : 'outdev went away';
    }
    const unsent = this.outdev.unsent();
    let frames = 0;
    let bytes = 0;
    for (const b of unsent) {
      frames += qemuFrameCount(b, this.options.vnetHeader);
      bytes += b.length;
    }
    const { heldFrames, heldBytes } = this.comparator.counters;
    const b = this.backlog.get(this.primary);
    const unread = b === undefined ? 0 : b.frames.length - b.next;
    let notCompared = unread > 0 || unreadBytes > 0 ? `, ${unread} primary frames and ${unreadBytes} more bytes of primary-in read while it was paused, not compared yet` : '';
    if (partialBytes > 0) notCompared += `, ${partialBytes} bytes of a primary frame read only in part`;
    this.options.log(heldFrames === 0 && frames === 0 && notCompared === ''
      ? 'compare: nothing discarded: no frame held, every released frame written to outdev'
      : `compare: discarding ${heldFrames} held frames (${heldBytes} bytes)${notCompared} and ${frames} released frames not written to outdev (${bytes} bytes${frames > 0 ? `; ${why}` : ''})`);
    await this.outdev.close();
  }

  /** Closes every port at once (a failed start). */
  async close(): Promise<void> {
    this.halt();
    await Promise.all([this.primary.close(), this.secondary.close(), this.outdev.close(), this.controller.close()]);
  }

  /** No more core calls: timers stopped, and `run` does nothing. */
  private halt(): void {
    this.closed = true;
    this.deadlines.close();
    if (this.primaryTimer) clearTimeout(this.primaryTimer);
  }

  /** The core's clock: the monotonic clock, standing still while outdev has the inputs paused (see the header). */
  private now(): number {
    return (this.stalledSince ?? performance.now()) - this.stalledMs;
  }

  private input(name: string, endpoint: Endpoint, side: 'primary' | 'secondary'): StreamPort {
    const port: StreamPort = new StreamPort(endpoint, {
      connected: () => {
        this.decoders.set(port, new QemuPacketDecoder({ vnetHeader: this.options.vnetHeader }));
        this.firstChunk.add(port);
        this.metrics.peerConnections.inc({ port: name });
        this.options.log(`${name}: peer connected`);
        if (this.paused || (port === this.secondary && this.secondaryAhead) || (port === this.primary && this.primaryPaused())) port.pause();
      },
      data: (chunk) => this.receive(name, port, side, chunk),
      disconnected: (reason) => {
        this.options.log(`${name}: peer gone (${reason})`);
        this.streamEnded(name, port);
      },
      drained: () => {},
      log: (line) => this.options.log(`${name}: ${line}`),
    });
    return port;
  }

  private receive(name: string, port: StreamPort, side: 'primary' | 'secondary', chunk: Buffer): void {
    if (this.firstChunk.delete(port)) {
      const suspicion = suspectVnetMismatch(chunk, this.options.vnetHeader);
      if (suspicion !== null) this.options.log(`${name}: warning: ${suspicion}`);
    }
    if (side === 'primary' && this.comparator.checkpointPending) this.readWhilePending += chunk.length;
    const decoder = this.decoders.get(port)!;
    let frames;
    try {
      frames = decoder.push(chunk);
    } catch (e) {
      if (!(e instanceof QemuFramingError)) throw e;
      this.framingError(name, port, e);
      return;
    }
    this.take(port, { side, frames, headers: decoder.vnetHeaders, next: 0 });
    this.flush();
    if (decoder.error) this.framingError(name, port, decoder.error);
    this.wakeWaiting();
  }

  /**
   * Frames of one read into the core, INGEST_SLICE at a time, checking after each slice whether
   * their input ran too far ahead; if it did, the rest waits as the input's backlog.
   */
  private take(port: StreamPort, b: Backlog): void {
    this.taking = true;
    try {
      for (let i = b.next; i < b.frames.length; i += INGEST_SLICE) {
        if (i > b.next && this.inputHeld(port)) {
          this.backlog.set(port, { ...b, next: i });
          return;
        }
        this.ingestFrames(this.comparator, b.side, b.frames, b.headers, this.now(), i, Math.min(b.frames.length, i + INGEST_SLICE));
        this.balance();
      }
    } finally {
      this.taking = false;
    }
  }

  /** The input is paused: for outdev, or for running ahead of the other. */
  private inputHeld(port: StreamPort): boolean {
    return this.paused || (port === this.secondary ? this.secondaryAhead : this.primaryPaused());
  }

  /** Resumes an input: its backlog first, and its socket only if that did not pause it again. */
  private resumeInput(port: StreamPort): void {
    const b = this.backlog.get(port);
    if (b !== undefined) {
      if (this.taking) {
        this.wakeLater.add(port);
        return;
      }
      this.backlog.delete(port);
      this.take(port, b);
      this.flush();
      this.wakeWaiting();
    }
    if (!this.inputHeld(port)) port.resume();
  }

  /** Inputs resumed while frames went into the core. */
  private wakeWaiting(): void {
    for (const port of this.wakeLater) {
      this.wakeLater.delete(port);
      if (!this.inputHeld(port)) this.resumeInput(port);
    }
  }

  /** One chunk's frames into `core`, this engine the sink: the path of every real frame (and of the warm-up's). */
  private ingestFrames(core: Comparator, side: 'primary' | 'secondary', frames: readonly Uint8Array[], headers: readonly Uint8Array[], now: number, from = 0, to = frames.length): void {
    for (let i = from; i < to; i++) {
      const packet = frames[i]!;
      if (packet.length === 0) {
        core.counters.count('qemu.empty_frame');
        continue;
      }
      core.ingestTo(this, side, packet, now, headers[i] ?? EMPTY);
    }
  }

  /**
   * Runs synthetic traffic (warm-up-traffic.ts) through a throwaway core along the path real
   * frames take: framing decoder, `ingestFrames`, this engine's `release`, encoding into the output
   * buffer, which is then dropped unwritten. V8 compiles code only once it has run for a while, and
   * without this the first few thousand real frames were released 2-4x slower than later ones.
   * The throwaway core has its own counters, so metrics start from zero; a checkpoint, mismatch or
   * event it reports (none, unless the traffic is wrong) goes nowhere. Returns the frames fed and
   * how many of them the core released (half: every primary frame, when all matched).
   */
  warmUp(): { fed: number; released: number } {
    const core = comparingCore(this.options.comparator);
    const decoders = { primary: new QemuPacketDecoder({ vnetHeader: this.options.vnetHeader }), secondary: new QemuPacketDecoder({ vnetHeader: this.options.vnetHeader }) };
    let fed = 0;
    this.warming = true;
    try {
      for (const chunk of warmUpChunks(this.options.vnetHeader)) {
        const decoder = decoders[chunk.side];
        const frames = decoder.push(chunk.bytes);
        this.ingestFrames(core, chunk.side, frames, decoder.vnetHeaders, this.now());
        fed += frames.length;
        this.encodeReleased(() => {});
      }
    } finally {
      this.warming = false;
    }
    return { fed, released: core.counters.releasedFrames };
  }

  /**
   * An input's connection is over: a frame it stopped inside of is lost, and counted and logged as
   * the framing error it is (unless the connection was closed for an earlier one).
   */
  private streamEnded(name: string, port: StreamPort): void {
    const decoder = this.decoders.get(port);
    if (decoder === undefined || decoder.error !== undefined) return;
    try {
      decoder.end();
    } catch (e) {
      if (!(e instanceof QemuFramingError)) throw e;
      this.metrics.framingErrors.inc({ port: name, code: e.code });
      this.options.log(`${name}: ${e.message}; that partial frame is dropped`);
    }
  }

  private framingError(name: string, port: StreamPort, e: QemuFramingError): void {
    this.metrics.framingErrors.inc({ port: name, code: e.code });
    this.options.log(`${name}: ${e.message}; closing this connection, waiting for a new peer`);
    port.drop(e.code);
  }

  /** Runs a core call that may release frames outside an input chunk (timeouts, checkpoint done). */
  private run(call: () => void): void {
    if (this.closed) return;
    call();
    this.flush();
  }

  // --- ActionSink: what the core decided, called while it runs (no action arrays).

  release(frame: Uint8Array, tag: unknown): void {
    const n = this.releasedCount++;
    this.released[n] = frame;
    this.releasedHeaders[n] = (tag as Uint8Array | undefined) ?? EMPTY;
  }

  mismatch(flow: string, m: Mismatch): void {
    if (!this.warming) this.flowLines.line('mismatch', describeMismatch(flow, m));
  }

  checkpoint(reason: MismatchReason, flow: string): void {
    if (this.warming) return;
    this.flowLines.line('checkpoint', `checkpoint requested (${reason}, ${flow})`);
    this.controller.request();
  }

  event(code: string, flow: string, detail: string): void {
    if (!this.warming) this.flowLines.line('event', `event ${code} ${flow}: ${detail}`);
  }

  deliver(): void {
    // compare has no client side: QEMU's filter-mirror feeds the SVM.
  }

  drop(): void {
    // SVM output is consumed by the comparison.
  }

  /** Writes the batch of released frames (see `encodeReleased`), pausing the inputs when outdev is full. */
  private flush(): void {
    let full = false;
    this.encodeReleased((bytes) => {
      if (!this.outdev.write(bytes)) full = true;
      if (!this.outdev.flushed) this.output = null;
    });
    if (full && (this.outdev.connected || this.outdev.pendingBytes > OUTDEV_PENDING_LIMIT)) this.pauseInputs();
    this.balance();
    this.schedule();
  }

  /**
   * The frames released since the last call, encoded for outdev and handed to `write`, then
   * forgotten: in one piece, unless they come to more than OUTPUT_BYTES (a checkpoint's flush, up
   * to tens of MiB), then in pieces of whole frames of at most that much. A peer that goes away
   * takes with it the one write it was reading (stream-port.ts); the pieces after it go to the
   * next peer.
   */
  private encodeReleased(write: (bytes: Buffer) => void): void {
    const n = this.releasedCount;
    const vnet = this.options.vnetHeader;
    let from = 0;
    while (from < n) {
      let to = from + 1;
      let bytes = this.encodedLength(from);
      for (; to < n; to++) {
        const next = this.encodedLength(to);
        if (bytes + next > OUTPUT_BYTES) break;
        bytes += next;
      }
      write(encodeQemuPackets(this.released, this.releasedHeaders, vnet, this.outputBytes, to, from));
      from = to;
    }
    // Drop the references, so that a burst's frames and their read buffers do not stay alive.
    this.released.fill(EMPTY, 0, n);
    this.releasedHeaders.fill(EMPTY, 0, n);
    this.releasedCount = 0;
  }

  /** Bytes of released frame `i` encoded for outdev. */
  private encodedLength(i: number): number {
    return (this.options.vnetHeader ? 8 + this.releasedHeaders[i]!.length : 4) + this.released[i]!.length;
  }

  /** Pauses an input that runs far ahead of the other, and resumes it once it is halfway back. */
  private balance(): void {
    const counters = this.comparator.counters;
    const waiting = counters.secondaryWaitingFrames;
    if (waiting > this.aheadLimit && !this.secondaryAhead) {
      this.secondaryAhead = true;
      this.secondary.pause();
    } else if (waiting <= this.aheadLimit / 2 && this.secondaryAhead) {
      this.secondaryAhead = false;
      if (!this.paused) this.resumeInput(this.secondary);
    }
    if (!this.comparator.checkpointPending) this.readWhilePending = 0;
    if (this.readWhilePending > PENDING_READ_LIMIT) {
      if (this.primaryAhead !== 'checkpoint') {
        if (this.primaryTimer) clearTimeout(this.primaryTimer);
        this.primaryTimer = null;
        if (!this.primaryPaused()) this.primary.pause();
        this.primaryAhead = 'checkpoint';
        this.options.log(`primary-in: paused: ${this.readWhilePending} bytes read since the checkpoint request, ${counters.heldFrames} frames (${counters.heldBytes} bytes) held; waiting for the checkpoint`);
      }
      return;
    }
    if (this.primaryAhead === 'checkpoint') this.endPrimaryPause('no');
    const held = counters.heldFrames;
    if (held > this.aheadLimit && this.primaryAhead === 'no') {
      this.primaryAhead = 'paused';
      this.primary.pause();
      this.armPrimaryPause();
    } else if (held <= this.aheadLimit / 2 && this.primaryAhead !== 'no') {
      this.endPrimaryPause('no');
    }
  }

  /** The primary input is paused on its own (running ahead, or waiting for the checkpoint). */
  private primaryPaused(): boolean {
    return this.primaryAhead === 'paused' || this.primaryAhead === 'checkpoint';
  }

  private endPrimaryPause(next: 'no' | 'expired'): void {
    if (this.primaryTimer) clearTimeout(this.primaryTimer);
    this.primaryTimer = null;
    const wasPaused = this.primaryPaused();
    this.primaryAhead = next;
    if (wasPaused && !this.paused) this.resumeInput(this.primary);
  }

  /**
   * Starts the primary's pause for running ahead, unless outdev has both inputs paused: the
   * secondary is not read then and cannot catch up, so that time does not count (it had let the
   * primary run on unchecked after an outdev stall, into a queue_full checkpoint).
   */
  private armPrimaryPause(): void {
    if (this.paused || this.primaryTimer !== null) return;
    this.primaryTimer = setTimeout(() => this.endPrimaryPause('expired'), PRIMARY_PAUSE_MS);
  }

  private pauseInputs(): void {
    if (this.paused) return;
    this.paused = true;
    this.stalledSince = performance.now();
    this.primary.pause();
    this.secondary.pause();
    if (this.primaryTimer) clearTimeout(this.primaryTimer);
    this.primaryTimer = null;
  }

  private resumeInputs(): void {
    if (!this.paused) return;
    this.paused = false;
    this.stalledMs += performance.now() - this.stalledSince!;
    this.stalledSince = null;
    this.schedule();
    if (!this.primaryPaused()) this.resumeInput(this.primary);
    // The primary's backlog may have filled outdev again.
    if (!this.paused && !this.secondaryAhead) this.resumeInput(this.secondary);
    if (this.primaryAhead === 'paused') this.armPrimaryPause();
  }

  /** Arms the timer for the core's next deadline, unless its clock stands still (see the header). */
  private schedule(): void {
    if (this.stalledSince === null) this.deadlines.schedule();
  }

  /** The core's deadline came: timeouts and idle connections. */
  private wake(): void {
    this.run(() => this.comparator.advanceTo(this, this.now()));
  }
}
