/**
 * A thread that sends the frames `run` injects, so that the kernel work each send sets off runs
 * beside the engine's thread instead of on it. On a veth (and a tap) the receiving stack runs in
 * the sender's context: a frame released to the client runs the client's TCP receive path, and
 * an ACK delivered to a guest runs the guest's transmit path, all inside the send system call.
 * Measured on `run` with the guests' TSO on, that was over a third of the engine thread's time,
 * with a third of the machine idle.
 *
 * The engine thread copies each frame into a ring in shared memory (one `Uint8Array.set`) and
 * goes on; the thread sends it through colo-proxy's packet socket addon (packet-socket.ts), one
 * socket per interface index, opened on first use. Frames leave in the order they were queued,
 * so a connection's segments, and a flow's frames on one interface, keep their order. A frame
 * over the MTU queued with its offload plan goes out with a virtio-net header for the kernel to
 * segment, as `OffloadSocket.send` does. The thread sleeps on the ring's write index when the
 * ring is empty and is woken only then (Atomics.notify, one futex call per burst). When the ring
 * is full the engine thread waits for room: frames are never dropped here.
 *
 * Results are counted per port slot in shared counters (frames out, counting each segment the
 * kernel cuts; frames refused; the last refusal's errno), which the port adds to its own.
 *
 * The thread's code is a string run with `eval: true` (plain JavaScript, CommonJS): a worker
 * cannot take TypeScript through the tsx loader the sources run with, and this code must run the
 * same from the sources and from dist/. It does nothing but the loop below.
 */

import { Worker } from 'node:worker_threads';
import type { OffloadPlan, PacketSocketAddon } from './packet-socket.js';

/** Control words (Int32Array indices). */
const WRITE = 0;
const READ = 1;
const SLEEPING = 2;
const STOP = 3;
/** Per port slot: frames out, frames refused, the last refusal's errno. */
const SENT = 8;
const ERRORS = SENT + 8;
const ERRNO = ERRORS + 8;
const CONTROL_WORDS = ERRNO + 8;
/** Port slots: run has three interfaces. */
export const MAX_PORTS = 8;

/** A record's header: length, ifindex, slot, GSO type, GSO size, header length, checksum start, frame length, segments. */
const HEADER = 24;
/** A record length meaning "the rest of the ring is unused: go on at 0". */
const WRAP = 0xffffffff;
const DEFAULT_RING_BYTES = 8 * 1024 * 1024;
/** No checksum left to the kernel. */
const NO_CSUM = 0xffff;
/**
 * From this many bytes a frame is copied into the ring by the addon's memcpy: V8 copies into a
 * SharedArrayBuffer with relaxed atomic stores (measured: 5.3 us for 65,000 bytes against 2.3 us;
 * `Uint8Array.set` into the ring was a fifth of the engine thread's time with TSO frames).
 */
const NATIVE_COPY_FROM = 512;

const THREAD_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const addon = require(workerData.addonPath);
const ctl = new Int32Array(workerData.control);
const data = new Uint8Array(workerData.ring);
const view = new DataView(workerData.ring);
const [WRITE, READ, SLEEPING, STOP, SENT, ERRORS, ERRNO, WRAP, NO_CSUM, HEADER] = workerData.layout;
const GONE = new Set([6, 19]); // ENXIO, ENODEV: the interface index is no more
const sockets = new Map();
let r = Atomics.load(ctl, READ);
for (;;) {
  let w = Atomics.load(ctl, WRITE);
  if (r === w) {
    if (Atomics.load(ctl, STOP) === 1) break;
    Atomics.store(ctl, SLEEPING, 1);
    if (Atomics.load(ctl, WRITE) === r && Atomics.load(ctl, STOP) === 0) Atomics.wait(ctl, WRITE, r);
    Atomics.store(ctl, SLEEPING, 0);
    continue;
  }
  while (r !== w) {
    const length = view.getUint32(r, true);
    if (length === WRAP) { r = 0; continue; }
    const ifindex = view.getInt32(r + 4, true);
    const slot = data[r + 8];
    const gsoType = data[r + 9];
    const gsoSize = view.getUint16(r + 10, true);
    const hdrLen = view.getUint16(r + 12, true);
    const csumStart = view.getUint16(r + 14, true);
    const frameLength = view.getUint32(r + 16, true);
    const segments = view.getUint32(r + 20, true);
    let fd = sockets.get(ifindex);
    let err = 0;
    if (fd === undefined) {
      try { fd = addon.open(ifindex); sockets.set(ifindex, fd); } catch { err = 19; }
    }
    if (err === 0) {
      const at = r + HEADER;
      err = addon.send(fd, data.subarray(at, at + hdrLen), data.subarray(at + hdrLen, at + frameLength), gsoType, gsoSize, hdrLen,
        csumStart === NO_CSUM ? -1 : csumStart, 16);
      if (err !== 0 && GONE.has(err)) { addon.close(fd); sockets.delete(ifindex); }
    }
    if (err === 0) Atomics.add(ctl, SENT + slot, segments);
    else { Atomics.add(ctl, ERRORS + slot, 1); Atomics.store(ctl, ERRNO + slot, err); }
    r += length;
    Atomics.store(ctl, READ, r);
  }
}
for (const fd of sockets.values()) addon.close(fd);
`;

export class SendThread {
  /** Why the thread is gone ('' while it runs): frames queued after that are refused. */
  failure = '';
  private closing = false;
  private readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
  private readonly ring: Uint8Array;
  private readonly view: DataView;
  private readonly worker: Worker;
  private write = 0;
  private ports = 0;
  /** Times `send` waited for room in the ring. */
  waits = 0;

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
      workerData: { addonPath, control: this.control.buffer, ring, layout: [WRITE, READ, SLEEPING, STOP, SENT, ERRORS, ERRNO, WRAP, NO_CSUM, HEADER] },
    });
    const fail = (why: string): void => {
      if (this.failure !== '' || this.closing) return;
      this.failure = why;
      failed(why);
    };
    this.worker.on('error', (e) => fail(`the send thread failed: ${e.message}`));
    this.worker.on('exit', (code) => fail(`the send thread exited (${code})`));
    this.worker.unref();
  }

  /** A slot for one port's counters. */
  addPort(): number {
    if (this.ports === MAX_PORTS) throw new RangeError(`SendThread: at most ${MAX_PORTS} ports`);
    return this.ports++;
  }

  /** Frames out for `slot` (each segment the kernel cuts counts), frames refused, and the last refusal's errno (0: none). */
  counters(slot: number): { sent: number; errors: number; errno: number } {
    return { sent: Atomics.load(this.control, SENT + slot), errors: Atomics.load(this.control, ERRORS + slot), errno: Atomics.load(this.control, ERRNO + slot) };
  }

  /** Queues `frame` for the interface `ifindex` (sent as it is); false when the thread is gone. */
  send(slot: number, ifindex: number, frame: Uint8Array): boolean {
    const at = this.reserve(frame.length);
    if (at < 0) return false;
    this.header(at, slot, ifindex, 0, 0, 0, NO_CSUM, frame.length, 1);
    this.put(frame, at + HEADER);
    this.commit(at, frame.length);
    return true;
  }

  /** Queues a frame for the kernel to segment (TcpSegmenter.offload's plan); false when the thread is gone. */
  sendOffloaded(slot: number, ifindex: number, plan: OffloadPlan): boolean {
    const length = plan.headers.length + plan.payload.length;
    const at = this.reserve(length);
    if (at < 0) return false;
    this.header(at, slot, ifindex, plan.gsoType, plan.gsoSize, plan.headers.length, plan.tcpOffset, length, plan.segments);
    this.put(plan.headers, at + HEADER);
    this.put(plan.payload, at + HEADER + plan.headers.length);
    this.commit(at, length);
    return true;
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
   * room; -1 when the thread is gone. The ring is empty when the write and read offsets are
   * equal, so a record never fills it to the read offset; one that does not fit before the end
   * goes at 0 after a WRAP mark (records are multiples of 4 bytes, so the mark always fits).
   */
  private reserve(frameLength: number): number {
    const need = recordLength(frameLength);
    const size = this.ring.length;
    if (need + HEADER > size / 2) throw new RangeError(`SendThread: a ${frameLength}-byte frame does not fit the ring`);
    for (;;) {
      if (this.failure !== '' || this.closing) return -1;
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
      Atomics.notify(this.control, WRITE);
      Atomics.wait(this.control, READ, r, 5);
    }
  }

  private commit(at: number, frameLength: number): void {
    this.write = at + recordLength(frameLength);
    Atomics.store(this.control, WRITE, this.write);
    if (Atomics.load(this.control, SLEEPING) === 1) Atomics.notify(this.control, WRITE);
  }
}

/** A record's length: header and frame, rounded up to 4 bytes. */
function recordLength(frameLength: number): number {
  return (HEADER + frameLength + 3) & ~3;
}
