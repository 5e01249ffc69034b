/**
 * The `run` front end's loop: the live COLO proxy beside the VMs' tap devices, with no QEMU
 * filters. Three ports: the client-facing interface, the PVM's interface and the SVM's (an
 * interface, or a framed socket to a `bridge` on the secondary's host).
 *
 *   client-if frame   -> core (client) -> deliver: unchanged to primary-if, translated to the SVM
 *   primary-if frame  -> core (primary) -> release: onto client-if (when the SVM agreed)
 *   SVM frame         -> core (secondary) -> drop (compared, never reaches the client)
 *
 * Frames from the client and the PVM are injected elsewhere, so a checksum their sender left to
 * the device is completed (complete-checksum.ts): the client's before the core (its rewrites for
 * the SVM assume a complete checksum), the PVM's when it goes out (the comparison never reads it);
 * the SVM's output is only compared. A PVM frame longer than the client link takes (a guest's
 * segmentation offload, or its segments merged by GRO with --gro) goes out cut into segments, no
 * larger than the client's MSS when its handshake was seen (peer-mss.ts), each with a fresh
 * checksum: cut by the kernel through the packet socket addon when it is built (pcap-interface.ts).
 * Everything runs synchronously inside each capture callback (the frame is a view of the capture
 * buffer, valid only during the call; the core copies what it keeps and every send copies: a
 * system call, or with --send-thread a copy into the send thread's ring), the core is woken at
 * its `nextDeadline` (between frames, while they keep the event loop from turning:
 * capture-stall.ts), and checkpoint requests go to a controller (Xen notify protocol on
 * --notify-dev, or logged and ended at once by a resynchronisation without it).
 * There is no backpressure on a live link: the kernel drops what the capture ring cannot hold, and
 * the interfaces' counters are exported (see run-metrics.ts).
 *
 * Secondary lost. A checkpoint requested for `timeout` with no payload compared in between since
 * the previous one is one more consecutive timeout episode; any other checkpoint reason, or bytes
 * compared equal, starts the count again. After `lostAfter` episodes (0: never) the SVM is
 * declared lost: counted, logged, held frames flushed, and from then on the PVM's output goes
 * straight to the client and client frames only to the PVM, uncompared, until `restore()` (the
 * operator's SIGUSR2), which starts comparison afresh with a new core (connections open by then are
 * picked up mid-stream, the SVM assumed to be a copy of the PVM, as after a checkpoint).
 *
 * Controller lost. Held frames wait for "checkpoint done", and a live link has no backpressure:
 * with a controller that never answers they would pile up until the process runs out of memory
 * (and the client hears nothing meanwhile). So a checkpoint not done `controllerTimeoutMs` after
 * it was requested (0: no time limit), or PENDING_HELD_LIMIT bytes held while one is pending
 * (always), declares the controller lost, with the same pass-through as a lost secondary: without
 * checkpoints the SVM cannot be made a copy again, so fault tolerance is gone either way, and the
 * client keeps being served. A "checkpoint done" arriving later means the controller did
 * checkpoint the VMs after all: the SVM is a copy of the PVM again and comparison restarts by
 * itself, as on SIGUSR2. (The request stays wanted, so a controller that reconnects is asked
 * again.) Every "checkpoint done" is applied, asked for or not: the Xen toolstack also checkpoints
 * on its own every 5 s, and a checkpoint, whichever request it answers, leaves the SVM a copy of
 * the PVM.
 */

import { performance } from 'node:perf_hooks';
import { Frame, FrameDecoder, LINKTYPE_ETHERNET, createComparator, type ActionSink, type Comparator, type ComparatorConfig, type Mismatch, type MismatchReason, type Side } from '../../compare/index.js';
import type { Endpoint } from '../ports/endpoint.js';
import { PcapInterface, disableOffloads, enableGro } from '../ports/pcap-interface.js';
import { FramedSocket } from '../ports/framed-socket.js';
import { SendThread } from '../ports/send-thread.js';
import { loadPacketSocket, packetSocketPath, packetSocketUnavailable } from '../ports/packet-socket.js';
import { ImmediateController, XenNotifyController, type CheckpointController } from '../control/controller.js';
import { nodeBytesEqual } from './node-bytes-equal.js';
import { DeadlineTimer } from './deadline-timer.js';
import { CaptureStall } from './capture-stall.js';
import { ChecksumCompleter } from './complete-checksum.js';
import { PeerMss } from './peer-mss.js';
import { describeMismatch } from './compare-engine.js';
import { warmUpEvents } from './warm-up-traffic.js';
import { LogLimiter } from './log-limiter.js';
import { createRunMetrics, type RunMetrics, type LivePortStats } from './run-metrics.js';
import { startListenersFirst, type StartingSocket } from '../ports/start-ports.js';

/**
 * Where the SVM is: its interface, a `bridge` on its host, or an interface that is gone (the
 * supervisor started this engine without it while it was down): then the engine passes the PVM's
 * output through uncompared from the start, as for a secondary declared lost.
 */
export type SecondaryPort = { kind: 'interface'; name: string } | { kind: 'socket'; endpoint: Endpoint } | { kind: 'gone'; name: string };

export interface RunOptions {
  clientIf: string;
  primaryIf: string;
  secondary: SecondaryPort;
  notifyDev: Endpoint | undefined;
  comparator: Partial<ComparatorConfig>;
  /** Consecutive timeout episodes before the SVM is declared lost (0: never). */
  lostAfter: number;
  /** Ms a requested checkpoint may take before the controller is declared lost (0: no time limit; see the header). */
  controllerTimeoutMs: number;
  /** Capture ring per interface, bytes. */
  ringBytes?: number;
  /** Leave the interfaces' offloads as they are (default: turn GRO/GSO/TSO/LRO off). */
  keepOffloads?: boolean;
  /** Turn GRO on on the guest-facing interfaces (after turning the other offloads off, unless keepOffloads). */
  gro?: boolean;
  /** Send from a second thread (send-thread.ts) when the packet socket addon is built (default: from the engine's own). */
  sendThread?: boolean;
  /** One line per call: start-up, mismatches, checkpoints, state changes. */
  log(line: string): void;
  /** Called while captured frames keep the event loop from turning (capture-stall.ts), after the engine's own inline work. */
  whileStalled?(): void;
}

type Role = 'client' | 'primary' | 'secondary';

/** A core as `run` drives it: translate mode, Node's byte comparison. */
function translatingCore(comparator: Partial<ComparatorConfig>): Comparator {
  return createComparator({ bytesEqual: nodeBytesEqual, ...comparator, mode: 'translate' });
}

/** The warm-up's sink: its actions go nowhere. */
const DISCARD: ActionSink = { release() {}, deliver() {}, drop() {}, mismatch() {}, checkpoint() {}, event() {} };

/** Bytes of held frames while a checkpoint is pending beyond which the controller is declared lost (see the header). */
export const PENDING_HELD_LIMIT = 256 * 1024 * 1024;

export class RunEngine implements ActionSink {
  comparator: Comparator;
  readonly metrics: RunMetrics;
  /** Mismatch and event lines, kept from flooding the log. */
  private readonly flowLines: LogLimiter;
  readonly controller: CheckpointController;
  /** Why the PVM's output passes through uncompared, or null while comparing. */
  passThrough: 'secondary lost' | 'controller lost' | null = null;
  /** Consecutive timeout episodes so far. */
  timeoutEpisodes = 0;
  private comparedAtLastEpisode = -1;
  private readonly client: PcapInterface;
  private readonly primary: PcapInterface;
  private readonly secondaryIf: PcapInterface | null;
  /** The link to a `bridge` on the secondary's host (--secondary-socket), or null; its counts are exported. */
  readonly secondarySocket: FramedSocket | null;
  private readonly deadlines = new DeadlineTimer(() => this.comparator.nextDeadline(), () => this.now(), () => this.wake());
  private closed = false;
  /** Set by `episode` inside a core call: flush the core once the call is over. */
  private lostNow = false;
  /** Fires when the pending checkpoint has taken `controllerTimeoutMs`. */
  private checkpointTimer: NodeJS.Timeout | null = null;
  /** When the pending checkpoint was requested (engine clock). */
  private requestedAt = 0;
  /** Completes the checksums of frames from offloading senders before they are injected anywhere. */
  readonly checksums = new ChecksumCompleter();
  /** The thread the interfaces send through (send-thread.ts), or null: they send from this one. */
  private readonly sendThread: SendThread | null;
  /** The MSS each client announced, to cut the guests' offload frames for it. */
  private readonly peerMss = new PeerMss();
  private readonly clientDecoder = new FrameDecoder();
  /** Frames passed straight through while comparison is suspended, by side. */
  readonly passedThrough = { client: 0, primary: 0, secondary: 0 };
  /** Keeps the core's deadlines going while frames hold up the event loop (see `stalled`). */
  private readonly stall = new CaptureStall(() => this.now(), { stalled: () => this.stalled(), log: (line) => this.options.log(line) });

  constructor(private readonly options: RunOptions) {
    this.flowLines = new LogLimiter(options.log);
    this.comparator = translatingCore(this.options.comparator);
    const ports: LivePortStats[] = [];
    const state = (role: Role, name: string) => (up: boolean, detail: string): void => options.log(`${role} ${name}: ${detail}${up ? '' : '; frames to it are lost until it is back'}`);
    const notice = (role: Role, name: string) => (detail: string): void => options.log(`${role} ${name}: ${detail}`);
    // Every frame a capture hands over counts towards a stall (capture-stall.ts).
    const packet = (): void => this.stall.frame();
    const addon = options.sendThread === true ? loadPacketSocket() : null;
    if (options.sendThread === true && addon === null) options.log(`--send-thread: ${packetSocketUnavailable()}; sending from the engine's thread`);
    this.sendThread = addon !== null ? new SendThread(addon, packetSocketPath(), (why) => options.log(why)) : null;
    const pcapOptions = { ringBytes: options.ringBytes, ...(this.sendThread !== null ? { sendThread: this.sendThread } : {}) };
    this.client = new PcapInterface(
      options.clientIf, { packet, frame: (f) => this.fromClient(f), state: state('client', options.clientIf), notice: notice('client', options.clientIf) },
      { ...pcapOptions, payloadLimit: this.peerMss.limit },
    );
    this.primary = new PcapInterface(options.primaryIf, { packet, frame: (f) => this.fromPrimary(f), state: state('primary', options.primaryIf), notice: notice('primary', options.primaryIf) }, pcapOptions);
    ports.push({ role: 'client', port: this.client }, { role: 'primary', port: this.primary });
    if (options.secondary.kind === 'interface') {
      this.secondaryIf = new PcapInterface(options.secondary.name, {
        packet, frame: (f) => this.fromSecondary(f), state: state('secondary', options.secondary.name), notice: notice('secondary', options.secondary.name),
      }, pcapOptions);
      this.secondarySocket = null;
      ports.push({ role: 'secondary', port: this.secondaryIf });
    } else if (options.secondary.kind === 'gone') {
      this.secondaryIf = null;
      this.secondarySocket = null;
      this.passThrough = 'secondary lost';
    } else {
      this.secondaryIf = null;
      this.secondarySocket = new FramedSocket(options.secondary.endpoint, {
        frame: (f) => this.fromSecondary(f),
        peer: (connected, detail) => {
          if (connected) this.metrics.peerConnections.inc({ port: 'secondary-socket' });
          options.log(`secondary-socket: ${detail}`);
        },
        framingError: (code) => this.metrics.framingErrors.inc({ port: 'secondary-socket', code }),
      });
    }
    this.metrics = createRunMetrics(() => this.comparator.counters, ports, this);
    // Without a controller no checkpoint resets the SVM: a request ends in a resynchronisation.
    const done = (resynchronize: boolean) => (): void => {
      this.stopCheckpointTimer();
      if (this.passThrough === 'controller lost') {
        this.comparator.counters.checkpointsDone++;
        this.resume('checkpoint done after the controller was declared lost: the SVM is a copy of the PVM again; comparing again (open connections are picked up mid-stream)');
        return;
      }
      if (this.passThrough === 'secondary lost') {
        options.log('checkpoint done while the secondary is lost: ignored (SIGUSR2 restores comparison)');
        return;
      }
      this.run(() => (resynchronize ? this.comparator.resynchronizeTo(this, this.now()) : this.comparator.checkpointDoneTo(this, this.now())));
    };
    this.controller = options.notifyDev
      ? new XenNotifyController(options.notifyDev, done(false), this.metrics, options.log)
      : new ImmediateController(done(true));
  }

  /**
   * Opens the listening sockets, turns offloads off, opens the interfaces, then the connecting
   * sockets; throws (LiveCaptureError, or an Error naming the socket's flag) naming what failed.
   * Listeners first, so that an address that cannot be listened on fails before any interface is
   * touched; connecting sockets last, since they log their failures to connect.
   */
  async start(): Promise<void> {
    const sockets: StartingSocket[] = [{ flag: '--notify-dev', listens: this.options.notifyDev?.server ?? true, start: () => this.controller.start() }];
    const secondary = this.secondarySocket;
    if (secondary !== null && this.options.secondary.kind === 'socket') {
      sockets.push({ flag: '--secondary-socket', listens: this.options.secondary.endpoint.server, start: () => secondary.start() });
    }
    await startListenersFirst(sockets, () => this.close(), () => this.openInterfaces());
    this.options.log(this.controller.description);
    if (this.options.secondary.kind === 'gone') {
      this.options.log(`secondary ${this.options.secondary.name}: gone; passing the primary's output through uncompared; once it is back, SIGUSR2 compares again (in a new engine)`);
    }
    if (this.sendThread !== null) this.options.log('sends: from a second thread (--send-thread)');
  }

  /** Turns offloads off (GRO on with --gro) and opens the interfaces; throws LiveCaptureError naming what failed. */
  private openInterfaces(): void {
    const log = this.options.log;
    const interfaces: [string, PcapInterface][] = [['client', this.client], ['primary', this.primary]];
    if (this.secondaryIf) interfaces.push(['secondary', this.secondaryIf]);
    for (const [role, p] of interfaces) {
      const gro = this.options.gro === true && role !== 'client';
      if (!this.options.keepOffloads) {
        const still = disableOffloads(p.name);
        if (still.length > 0) log(`${role} ${p.name}: warning: offloads still on (${still.join(', ')}): the capture ring has 64 KiB slots, about 16 frames per MiB of --ring-mb`);
      }
      if (gro) {
        const problem = enableGro(p.name);
        if (problem !== null) log(`${role} ${p.name}: warning: --gro: GRO is not on (${problem}): the guest's segments are captured one by one`);
      }
    }
    for (const [, p] of interfaces) p.open();
  }

  /**
   * Stops for good, saying what the core still held: discarded, as `compare` discards it, since
   * released uncompared it could be output the SVM never confirms (TCP resends what the client
   * did not acknowledge).
   */
  async close(): Promise<void> {
    const { heldFrames, heldBytes } = this.comparator.counters;
    if (heldFrames > 0) this.options.log(`run: discarding ${heldFrames} held frames (${heldBytes} bytes)`);
    this.closed = true;
    this.deadlines.close();
    this.stopCheckpointTimer();
    this.client.close();
    this.primary.close();
    this.secondaryIf?.close();
    await Promise.all([this.secondarySocket?.close(), this.controller.close(), this.sendThread?.close()]);
  }

  get secondaryLost(): boolean {
    return this.passThrough === 'secondary lost';
  }

  get controllerLost(): boolean {
    return this.passThrough === 'controller lost';
  }

  /** The operator restores comparison after the SVM or the controller was declared lost (SIGUSR2). */
  restore(): void {
    if (this.passThrough === null) {
      this.options.log('restore: neither the secondary nor the controller is lost; nothing to do');
      return;
    }
    const lost = this.passThrough === 'secondary lost' ? 'secondary' : 'controller';
    this.metrics.restores.inc({ lost });
    this.resume(`${lost} restored by the operator: comparing again (open connections are picked up mid-stream)`);
  }

  /** Ends the pass-through: a fresh core, which carries the earlier one's totals on (its metrics do not fall back to zero). */
  private resume(why: string): void {
    this.passThrough = null;
    this.timeoutEpisodes = 0;
    this.comparedAtLastEpisode = -1;
    const earlier = this.comparator.counters;
    this.comparator = translatingCore(this.options.comparator);
    this.comparator.counters.carryOver(earlier);
    this.options.log(why);
  }

  /**
   * Runs synthetic traffic (warm-up-traffic.ts: client frames, and the SVM answering from its own
   * sequence numbers) through a throwaway core, so V8 has compiled the core's paths before the
   * first real frame: cold, the first 2,000 frames of translate-mode traffic took 39-45 ms of core
   * time, warm 8-18 ms. Its actions go to a sink that sends and logs nothing. Static, and called
   * before an engine exists, so nothing of one (threads, sockets) is up should it fail. Returns the
   * frames fed, the primary frames among them, and how many of those the core released (all, when
   * everything matched).
   */
  static warmUp(comparator: Partial<ComparatorConfig>): { fed: number; primary: number; released: number } {
    const core = translatingCore(comparator);
    const events = warmUpEvents(true);
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const now = performance.now();
      if (e.kind === 'client') {
        core.ingestTo(DISCARD, 'client', e.frame, now);
      } else if ((i >> 5) % 2 === 0) { // the guests' copies primary first for 32 events, then secondary first
        core.ingestTo(DISCARD, 'primary', e.primary, now);
        core.ingestTo(DISCARD, 'secondary', e.secondary, now);
      } else {
        core.ingestTo(DISCARD, 'secondary', e.secondary, now);
        core.ingestTo(DISCARD, 'primary', e.primary, now);
      }
    }
    const c = core.counters;
    return { fed: c.clientFrames + c.primaryFrames + c.secondaryFrames, primary: c.primaryFrames, released: c.releasedFrames };
  }

  private now(): number {
    return performance.now();
  }

  private fromClient(frame: Buffer): void {
    // Decoded once here for both: this runs for every client frame.
    const f = this.clientDecoder.decode(frame, LINKTYPE_ETHERNET);
    if (f instanceof Frame) {
      this.checksums.completeDecoded(f);
      this.peerMss.observe(f);
    }
    if (this.passThrough !== null) {
      this.passedThrough.client++;
      this.primary.send(frame);
      return;
    }
    this.ingest('client', frame);
  }

  private fromPrimary(frame: Buffer): void {
    if (this.passThrough !== null) {
      this.passedThrough.primary++;
      this.toClient(frame);
      return;
    }
    this.ingest('primary', frame);
  }

  /**
   * A PVM frame onto the client link: its checksum completed if the PVM left it to the device,
   * unless it goes out cut into segments, which get checksums of their own (summing a 64 KiB
   * frame first would be for nothing).
   */
  private toClient(frame: Uint8Array): void {
    if (this.client.sendsWhole(frame)) this.checksums.complete(frame);
    this.client.send(frame);
  }

  private fromSecondary(frame: Uint8Array): void {
    if (this.passThrough !== null) {
      this.passedThrough.secondary++;
      return;
    }
    this.ingest('secondary', frame);
  }

  /** One captured frame into the core, then whatever the call decided. */
  private ingest(side: Side, frame: Uint8Array): void {
    this.comparator.ingestTo(this, side, frame, this.now());
    this.afterCall();
    this.schedule();
  }

  private sendToSecondary(frame: Uint8Array): void {
    if (this.secondaryIf) this.secondaryIf.send(frame);
    else this.secondarySocket!.send(frame);
  }

  /** Runs a core call outside a capture callback (timeouts, checkpoint done). */
  private run(call: () => void): void {
    if (this.closed) return;
    call();
    this.afterCall();
    this.schedule();
  }

  // --- ActionSink: what the core decided, called while it runs (no action arrays).

  release(frame: Uint8Array): void {
    this.toClient(frame);
  }

  deliver(to: 'primary' | 'secondary', frame: Uint8Array): void {
    if (to === 'primary') this.primary.send(frame);
    else this.sendToSecondary(frame);
  }

  drop(): void {
    // SVM output is consumed by the comparison and never reaches the client.
  }

  mismatch(flow: string, m: Mismatch): void {
    this.flowLines.line('mismatch', describeMismatch(flow, m));
  }

  checkpoint(reason: MismatchReason, flow: string): void {
    this.flowLines.line('checkpoint', `checkpoint requested (${reason}, ${flow})`);
    if (this.episode(reason)) {
      this.lostNow = true;
      return;
    }
    this.controller.request();
    this.requestedAt = this.now();
    const limit = this.options.controllerTimeoutMs;
    if (limit === 0) return;
    this.stopCheckpointTimer();
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = null;
      if (!this.closed && this.passThrough === null) this.declareControllerLost(`checkpoint not done ${limit} ms after it was requested`);
    }, limit);
  }

  event(code: string, flow: string, detail: string): void {
    this.flowLines.line('event', `event ${code} ${flow}: ${detail}`);
  }

  /**
   * After a core call: if it declared the SVM lost, whatever the core holds goes out now, as a
   * checkpoint would release it; if a pending checkpoint has let too much pile up, the controller
   * is declared lost.
   */
  private afterCall(): void {
    if (this.lostNow) {
      this.lostNow = false;
      this.stopCheckpointTimer();
      this.comparator.flushTo(this, this.now());
      return;
    }
    const held = this.comparator.counters.heldBytes;
    if (held > PENDING_HELD_LIMIT && this.comparator.checkpointPending) {
      this.declareControllerLost(`${held} bytes held waiting for the checkpoint requested ${Math.round(this.now() - this.requestedAt)} ms ago`);
    }
  }

  /** Passes through from now on (see the header); whatever the core holds goes out first. */
  private declareControllerLost(why: string): void {
    this.stopCheckpointTimer();
    this.passThrough = 'controller lost';
    this.metrics.controllerLost.inc();
    this.options.log(`controller lost: ${why}; passing the primary's output through uncompared until a checkpoint is done or SIGUSR2 restores comparison`);
    this.comparator.flushTo(this, this.now());
  }

  private stopCheckpointTimer(): void {
    if (this.checkpointTimer !== null) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = null;
  }

  /** Counts timeout episodes; true when this one declares the SVM lost (the caller flushes the core). */
  private episode(reason: string): boolean {
    const compared = this.comparator.counters.comparedBytes;
    if (reason !== 'timeout') {
      this.timeoutEpisodes = 0;
    } else {
      this.timeoutEpisodes = this.comparedAtLastEpisode === compared ? this.timeoutEpisodes + 1 : 1;
      this.comparedAtLastEpisode = compared;
    }
    if (this.options.lostAfter === 0 || this.timeoutEpisodes < this.options.lostAfter) return false;
    this.passThrough = 'secondary lost';
    this.metrics.secondaryLost.inc();
    this.options.log(`secondary lost: ${this.timeoutEpisodes} consecutive timeout episodes with nothing compared; passing the primary's output through uncompared until SIGUSR2 restores comparison`);
    return true;
  }

  private schedule(): void {
    this.deadlines.schedule();
  }

  /** Frames hold up the event loop (capture-stall.ts): the deadline timer cannot fire, so a deadline that is due runs here. */
  private stalled(): void {
    const due = this.comparator.nextDeadline();
    if (due !== undefined && due <= this.now()) this.wake();
    this.options.whileStalled?.();
  }

  /** The core's deadline came: timeouts and idle connections. */
  private wake(): void {
    if (this.passThrough === null) this.run(() => this.comparator.advanceTo(this, this.now()));
  }
}
