/**
 * A thread that sends the frames `run` injects, so that the kernel work each send sets off runs
 * beside the engine's thread instead of on it. On a veth (and a tap) the receiving stack runs in
 * the sender's context: a frame released to the client runs the client's TCP receive path, and
 * an ACK delivered to a guest runs the guest's transmit path, all inside the send system call.
 * Measured on `run` with the guests' TSO on, that was over a third of the engine thread's time,
 * with a third of the machine idle.
 *
 * The engine thread copies each frame into a ring in shared memory (the addon's memcpy from 512
 * bytes on, see NATIVE_COPY_FROM) and goes on; the thread sends it through colo-proxy's packet
 * socket addon (packet-socket.ts), one socket per interface index, opened on first use. Frames leave in the order they were queued,
 * so a connection's segments, and a flow's frames on one interface, keep their order. A frame
 * over the MTU queued with its offload plan goes out with a virtio-net header for the kernel to
 * segment, as `OffloadSocket.send` does. The thread sleeps on the ring's write index when the
 * ring is empty and is woken only then (Atomics.notify, one futex call per burst). When the ring
 * is full the engine thread waits for room (the thread wakes it as it frees some): frames are
 * never dropped here. If the thread dies (it catches what it can and says so in a shared word),
 * `send` says so from then on and `failure` says why; what was still queued is counted as
 * refused.
 *
 * Results are counted per port slot in shared 64-bit counters (frames out, counting each segment
 * the kernel cuts; frames handed to the kernel to segment; frames refused; the last refusal's
 * errno), which the port adds to its own.
 *
 * The thread's code is a string run with `eval: true` (plain JavaScript, CommonJS): a worker
 * cannot take TypeScript through the tsx loader the sources run with, and this code must run the
 * same from the sources and from dist/. It does nothing but the loop below.
 */

import { Worker } from 'node:worker_threads';
import { TCP_CHECKSUM_OFFSET, type OffloadPlan, type PacketSocketAddon } from './packet-socket.js';

/** Control words (Int32Array indices). */
const WRITE = 0;
const READ = 1;
const SLEEPING = 2;
const STOP = 3;
/** The engine thread waits for room (the thread notifies READ). */
const WAITING = 4;
/** The thread died: 1, its message then in the `message` buffer (see `deadMessage`). */
const DEAD = 5;
const CONTROL_WORDS = 6;
/** Port slots: run has three interfaces. */
export const MAX_PORTS = 8;
/**
 * Per port slot, 64-bit counters (BigInt64Array indices; 32 bits would wrap within hours at line
 * rate): frames out, frames handed to the kernel to segment, frames refused, the last refusal's errno.
 */
const SENT = 0;
const OFFLOADED = SENT + MAX_PORTS;
const ERRORS = OFFLOADED + MAX_PORTS;
const ERRNO = ERRORS + MAX_PORTS;
const COUNTERS = ERRNO + MAX_PORTS;

/** A record's header: length, ifindex, slot, GSO type, GSO size, header length, checksum start, frame length, segments. */
const HEADER = 24;
/** A record length meaning "the rest of the ring is unused: go on at 0". */
const WRAP = 0xffffffff;
const DEFAULT_RING_BYTES = 8 * 1024 * 1024;
/** No checksum left to the kernel. */
const NO_CSUM = 0xffff;
/** After an interface index failed to open, the thread tries again no sooner than this (ms). */
const REOPEN_MS = 1000;
/**
 * From this many bytes a frame is copied into the ring by the addon's memcpy: V8 copies into a
 * SharedArrayBuffer with relaxed atomic stores (measured: 5.3 us for 65,000 bytes against 2.3 us;
 * `Uint8Array.set` into the ring was a fifth of the engine thread's time with TSO frames).
 */
const NATIVE_COPY_FROM = 512;

const THREAD_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const ctl = new Int32Array(workerData.control);
const counters = new BigInt64Array(workerData.counters);
const data = new Uint8Array(workerData.ring);
const view = new DataView(workerData.ring);
const { WRITE, READ, SLEEPING, STOP, WAITING, DEAD, SENT, OFFLOADED, ERRORS, ERRNO, WRAP, NO_CSUM, HEADER, REOPEN_MS, TCP_CHECKSUM_OFFSET } = workerData.layout;
const EBADF = 9;
const GONE = new Set([6, 19]); // ENXIO, ENODEV: the interface index is no more
const sockets = new Map(); // ifindex -> fd, or -errno and when it failed
let r = Atomics.load(ctl, READ);

/** The socket for an interface index, or -errno while opening it fails (tried again after REOPEN_MS). */
function socketFor(ifindex) {
  const s = sockets.get(ifindex);
  if (s !== undefined && (s.fd >= 0 || Date.now() - s.at < REOPEN_MS)) return s.fd;
  try {
    const fd = addon.open(ifindex);
    sockets.set(ifindex, { fd, at: 0 });
    return fd;
  } catch (e) {
    const fd = -(Number(e.code) || EBADF);
    sockets.set(ifindex, { fd, at: Date.now() });
    return fd;
  }
}

function sendRecord(at) {
  const ifindex = view.getInt32(at + 4, true);
  const slot = data[at + 8];
  const gsoType = data[at + 9];
  const gsoSize = view.getUint16(at + 10, true);
  const hdrLen = view.getUint16(at + 12, true);
  const csumStart = view.getUint16(at + 14, true);
  const frameLength = view.getUint32(at + 16, true);
  const segments = view.getUint32(at + 20, true);
  const fd = socketFor(ifindex);
  let err = -fd;
  if (fd >= 0) {
    const f = at + HEADER;
    err = addon.send(fd, ifindex, data.subarray(f, f + hdrLen), data.subarray(f + hdrLen, f + frameLength), gsoType, gsoSize, hdrLen,
      csumStart === NO_CSUM ? -1 : csumStart, TCP_CHECKSUM_OFFSET);
    if (GONE.has(err)) { addon.close(fd); sockets.delete(ifindex); }
  }
  if (err === 0) {
    Atomics.add(counters, SENT + slot, BigInt(segments));
    if (gsoType !== 0) Atomics.add(counters, OFFLOADED + slot, 1n);
  } else {
    Atomics.add(counters, ERRORS + slot, 1n);
    Atomics.store(counters, ERRNO + slot, BigInt(err));
  }
}

let addon;
try {
  addon = require(workerData.addonPath);
  for (;;) {
    const w = Atomics.load(ctl, WRITE);
    if (r === w) {
      if (Atomics.load(ctl, STOP) === 1) break;
      Atomics.store(ctl, SLEEPING, 1);
      // A write is never missed (wait returns at once if WRITE moved), but STOP could be set just
      // after the check, its notify gone before the wait: hence the timeout.
      if (Atomics.load(ctl, WRITE) === r && Atomics.load(ctl, STOP) === 0) Atomics.wait(ctl, WRITE, r, 200);
      Atomics.store(ctl, SLEEPING, 0);
      continue;
    }
    while (r !== w) {
      const length = view.getUint32(r, true);
      if (length === WRAP) { r = 0; continue; }
      sendRecord(r);
      r += length;
      Atomics.store(ctl, READ, r);
      if (Atomics.load(ctl, WAITING) === 1) Atomics.notify(ctl, READ);
    }
  }
  for (const s of sockets.values()) if (s.fd >= 0) addon.close(s.fd);
} catch (e) {
  const message = new TextEncoder().encode(String(e && e.message || e)).subarray(0, workerData.messageBytes);
  new Uint8Array(workerData.message).set(message);
  Atomics.store(ctl, DEAD, 1);
  Atomics.notify(ctl, READ);
}
`;

export class SendThread {
  /** Why the thread is gone ('' while it runs): frames queued after that are refused. */
  failure = '';
  private closing = false;
  private readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
  private readonly counts = new BigInt64Array(new SharedArrayBuffer(COUNTERS * 8));
  /** The dead thread's message (UTF-8, zero-padded). */
  private readonly message = new Uint8Array(new SharedArrayBuffer(MESSAGE_BYTES));
  private readonly ring: Uint8Array;
  private readonly view: DataView;
  private readonly worker: Worker;
  private write = 0;
  private ports = 0;
  /** Times `send` waited for room in the ring. */
  waits = 0;
  /** Per port slot, frames still queued when the thread died. */
  private readonly lost = new Array<number>(MAX_PORTS).fill(0);
  private readonly failed: (why: string) => void;

  /**
   * Starts the thread; `addon` is the packet socket addon and `addonPath` its file, for the
   * thread to load (packet-socket.ts). `failed` is called once if the thread dies (frames queued
   * after that are refused).
   */
  constructor(private readonly addon: PacketSocketAddon, addonPath: string, failed: (why: string) => void, ringBytes = DEFAULT_RING_BYTES) {
    if (ringBytes % 4 !== 0) throw new RangeError('SendThread: the ring size must be a multiple of 4');
    const ring = new SharedArrayBuffer(ringBytes);
    this.ring = new Uint8Array(ring);
    this.view = new DataView(ring);
    this.worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: {
        addonPath, control: this.control.buffer, counters: this.counts.buffer, ring, message: this.message.buffer, messageBytes: MESSAGE_BYTES,
        layout: { WRITE, READ, SLEEPING, STOP, WAITING, DEAD, SENT, OFFLOADED, ERRORS, ERRNO, WRAP, NO_CSUM, HEADER, REOPEN_MS, TCP_CHECKSUM_OFFSET },
      },
    });
    this.failed = failed;
    this.worker.on('error', (e) => this.fail(`the send thread failed: ${e.message}`));
    this.worker.on('exit', (code) => this.fail(Atomics.load(this.control, DEAD) === 1 ? this.deadMessage() : `the send thread exited (${code})`));
    this.worker.unref();
  }

  private fail(why: string): void {
    if (this.failure !== '' || this.closing) return;
    this.failure = why;
    // What the thread had not sent is lost: count it as refused, per port.
    let r = Atomics.load(this.control, READ);
    while (r !== this.write) {
      const length = this.view.getUint32(r, true);
      if (length === WRAP) {
        r = 0;
        continue;
      }
      this.lost[this.ring[r + 8]!]!++;
      r += length;
    }
    this.failed(why);
  }

  private deadMessage(): string {
    const end = this.message.indexOf(0);
    return `the send thread failed: ${new TextDecoder().decode(this.message.slice(0, end < 0 ? undefined : end))}`;
  }

  /** A slot for one port's counters. */
  addPort(): number {
    if (this.ports === MAX_PORTS) throw new RangeError(`SendThread: at most ${MAX_PORTS} ports`);
    return this.ports++;
  }

  /**
   * For `slot`: frames out (each segment the kernel cuts counts), frames handed to the kernel to
   * segment, frames refused, and the last refusal's errno (0: none).
   */
  counters(slot: number): { sent: number; offloaded: number; errors: number; errno: number } {
    const c = this.counts;
    return {
      sent: Number(Atomics.load(c, SENT + slot)), offloaded: Number(Atomics.load(c, OFFLOADED + slot)),
      errors: Number(Atomics.load(c, ERRORS + slot)) + this.lost[slot]!, errno: Number(Atomics.load(c, ERRNO + slot)),
    };
  }

  /**
   * Queues `frame` for the interface `ifindex` (sent as it is): 'queued'; 'too-long' for a frame
   * over half the ring (never with the default ring and frames up to 64 KiB); 'gone' when the
   * thread is gone (see `failure`).
   */
  send(slot: number, ifindex: number, frame: Uint8Array): SendResult {
    const at = this.reserve(frame.length);
    if (at < 0) return at === TOO_LONG ? 'too-long' : 'gone';
    this.header(at, slot, ifindex, 0, 0, 0, NO_CSUM, frame.length, 1);
    this.put(frame, at + HEADER);
    this.commit(at, frame.length);
    return 'queued';
  }

  /** Queues a frame for the kernel to segment (TcpSegmenter.offload's plan); results as `send`'s. */
  sendOffloaded(slot: number, ifindex: number, plan: OffloadPlan): SendResult {
    const length = plan.headers.length + plan.payload.length;
    const at = this.reserve(length);
    if (at < 0) return at === TOO_LONG ? 'too-long' : 'gone';
    this.header(at, slot, ifindex, plan.gsoType, plan.gsoSize, plan.headers.length, plan.tcpOffset, length, plan.segments);
    this.put(plan.headers, at + HEADER);
    this.put(plan.payload, at + HEADER + plan.headers.length);
    this.commit(at, length);
    return 'queued';
  }

  /** Stops the thread once it has sent what is queued. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.failure !== '') return;
    Atomics.store(this.control, STOP, 1);
    Atomics.notify(this.control, WRITE);
    this.worker.ref();
    await new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
  }

  private put(bytes: Uint8Array, at: number): void {
    if (bytes.length >= NATIVE_COPY_FROM) this.addon.copy(this.ring, at, bytes);
    else this.ring.set(bytes, at);
  }

  private header(at: number, slot: number, ifindex: number, gsoType: number, gsoSize: number, hdrLen: number, csumStart: number, frameLength: number, segments: number): void {
    const v = this.view;
    v.setUint32(at, recordLength(frameLength), true);
    v.setInt32(at + 4, ifindex, true);
    v.setUint8(at + 8, slot);
    v.setUint8(at + 9, gsoType);
    v.setUint16(at + 10, gsoSize, true);
    v.setUint16(at + 12, hdrLen, true);
    v.setUint16(at + 14, csumStart, true);
    v.setUint32(at + 16, frameLength, true);
    v.setUint32(at + 20, segments, true);
  }

  /**
   * Where a record for a frame of `frameLength` bytes goes, waiting until the thread has made
   * room; GONE when the thread is gone, TOO_LONG for a frame over half the ring. The ring is
   * empty when the write and read offsets are equal, so a record never fills it to the read
   * offset; one that does not fit before the end goes at 0 after a WRAP mark (records are
   * multiples of 4 bytes, so the mark always fits).
   */
  private reserve(frameLength: number): number {
    const need = recordLength(frameLength);
    const size = this.ring.length;
    if (need > size / 2) return TOO_LONG;
    for (;;) {
      if (Atomics.load(this.control, DEAD) === 1) this.fail(this.deadMessage());
      if (this.failure !== '' || this.closing) return GONE;
      const r = Atomics.load(this.control, READ);
      const w = this.write;
      if (w >= r) {
        if (size - w > need) return w; // room before the end (the end itself stays unused)
        if (r > need) { // room at the start: mark the rest unused and go there
          this.view.setUint32(w, WRAP, true);
          this.write = 0;
          Atomics.store(this.control, WRITE, 0);
          continue;
        }
      } else if (r - w > need) {
        return w;
      }
      this.waits++;
      Atomics.store(this.control, WAITING, 1);
      Atomics.notify(this.control, WRITE);
      Atomics.wait(this.control, READ, r, 5); // woken as soon as the thread frees a record; the timeout is a backstop
      Atomics.store(this.control, WAITING, 0);
    }
  }

  private commit(at: number, frameLength: number): void {
    this.write = at + recordLength(frameLength);
    Atomics.store(this.control, WRITE, this.write);
    if (Atomics.load(this.control, SLEEPING) === 1) Atomics.notify(this.control, WRITE);
  }
}

/** What queuing a frame came to. */
export type SendResult = 'queued' | 'too-long' | 'gone';

const GONE = -1;
const TOO_LONG = -2;
/** Room for the dead thread's message. */
const MESSAGE_BYTES = 512;

/** A record's length: header and frame, rounded up to 4 bytes. */
function recordLength(frameLength: number): number {
  return (HEADER + frameLength + 3) & ~3;
}
