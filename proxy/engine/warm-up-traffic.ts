/**
 * Synthetic traffic for warming up V8 before a front end takes real frames (see `warmUp` in
 * compare-engine.ts and run-engine.ts): V8 runs new code interpreted and compiles the hot paths
 * only after they have run a few thousand times, so without a warm-up the first real frames take
 * several times longer than later ones (the compare bench's "first traffic" latency; in
 * translate mode the first 2,000 frames took 39-45 ms cold against 8-18 ms warm).
 *
 * The traffic is what a COLO pair commonly sends, identical on both sides: guest-to-client TCP
 * streams (each opened by a SYN-ACK, with timestamps) at small and MTU-sized payloads, over one
 * connection and over many, over IPv4 and IPv6, UDP datagrams and ICMP echo replies, all mixed,
 * and each group's two copies in either order. Mixed from the start, because code V8 compiled
 * for TCP alone is thrown away (deoptimized) at the first datagram, and the slow start comes
 * back. For `compare` (pre-translated) it is framed as QEMU frames into chunks like socket reads,
 * so the framing decoder warms up too; for `run` (translate) the client's side comes too (its
 * SYN, the ACK of each SYN-ACK, an ACK every fourth segment) and the SVM answers from its own
 * initial sequence numbers, so the translation paths warm up. About 7,000 frames a side.
 */

import { TCP_ACK, TCP_PSH, TCP_SYN, emitIcmpEcho, emitTcp, emitUdp, type TcpFields } from '../../compare/index.js';
import { encodeQemuPackets } from '../framing/qemu-frames.js';

/** One read's worth of framed frames from one side. */
export interface WarmUpChunk {
  side: 'primary' | 'secondary';
  bytes: Buffer;
}

/** Frames per chunk: about what one socket read carries of a busy flow. */
const FRAMES_PER_CHUNK = 32;

const GUEST = '192.0.2.1';
const CLIENT = '192.0.2.2';
const GUEST6 = '2001:db8::1';
const CLIENT6 = '2001:db8::2';

/** A client frame (towards the guests), or one output frame of each guest. */
export type WarmUpEvent = { kind: 'client'; frame: Uint8Array } | { kind: 'guests'; primary: Uint8Array; secondary: Uint8Array };

/** How far the SVM's initial sequence numbers are from the PVM's in translate mode. */
const SVM_ISN_OFFSET = 500_000_000;

/**
 * `flows` TCP connections to the guest's port 80: each one's SYN-ACK, then `segments` segments of
 * `size` bytes, round-robin. `translate`: with the client's frames, and the SVM in its own space.
 */
function tcpStream(src: string, dst: string, firstPort: number, flows: number, segments: number, size: number, translate: boolean): WarmUpEvent[] {
  const payload = new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff);
  const events: WarmUpEvent[] = [];
  const offset = translate ? SVM_ISN_OFFSET : 0;
  const guests = (f: Omit<TcpFields, 'seq'>, seq: number): WarmUpEvent => ({ kind: 'guests', primary: emitTcp({ ...f, seq }), secondary: emitTcp({ ...f, seq: (seq + offset) >>> 0 }) });
  const client = (port: number, seq: number, ack: number, flags: number, timestamp: [number, number]): WarmUpEvent => (
    { kind: 'client', frame: emitTcp({ src: dst, dst: src, srcPort: port, dstPort: 80, seq, ack, flags, options: { timestamp, ...(flags & TCP_SYN ? { mss: 1460, sackPermitted: true, windowScale: 7 } : {}) } }) }
  );
  const seq = new Array<number>(flows).fill(1000);
  for (let f = 0; f < flows; f++) {
    if (translate) events.push(client(firstPort + f, 0, 0, TCP_SYN, [1, 0]));
    events.push(guests({ src, dst, srcPort: 80, dstPort: firstPort + f, ack: 1, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, timestamp: [1, 1], windowScale: 7 } }, 999));
    if (translate) events.push(client(firstPort + f, 1, 1000, TCP_ACK, [2, 1]));
  }
  for (let n = 0; n < segments * flows; n++) {
    const f = n % flows;
    events.push(guests({ src, dst, srcPort: 80, dstPort: firstPort + f, ack: 1, flags: TCP_ACK | TCP_PSH, options: { timestamp: [n + 2, n + 1] }, payload }, seq[f]!));
    seq[f]! += size;
    if (translate && Math.floor(n / flows) % 4 === 3) events.push(client(firstPort + f, 1, seq[f]!, TCP_ACK, [n + 3, n + 2]));
  }
  return events;
}

/** The streams' events interleaved: one from each in turn while any has events left. */
function interleave(streams: WarmUpEvent[][]): WarmUpEvent[] {
  const out: WarmUpEvent[] = [];
  const longest = Math.max(...streams.map((s) => s.length));
  for (let i = 0; i < longest; i++) {
    for (const s of streams) if (i < s.length) out.push(s[i]!);
  }
  return out;
}

/** The warm-up traffic in feeding order: for `run` when `translate`, else for `compare`. */
export function warmUpEvents(translate: boolean): WarmUpEvent[] {
  const datagram = new Uint8Array(100).fill(0x5a);
  const same = (frame: Uint8Array): WarmUpEvent => ({ kind: 'guests', primary: frame, secondary: frame });
  return interleave([
    tcpStream(GUEST, CLIENT, 40000, 1, 1500, 64, translate),
    tcpStream(GUEST, CLIENT, 40001, 1, 1500, 1400, translate),
    tcpStream(GUEST, CLIENT, 41000, 64, 25, 64, translate),
    tcpStream(GUEST, CLIENT, 42000, 64, 25, 1400, translate),
    tcpStream(GUEST6, CLIENT6, 43000, 1, 300, 1400, translate),
    Array.from({ length: 300 }, (_, n) => same(emitUdp({ src: GUEST, dst: CLIENT, srcPort: 53, dstPort: 44000, payload: datagram.subarray(0, 40 + (n % 60)) }))),
    Array.from({ length: 100 }, (_, n) => same(emitIcmpEcho({ src: GUEST, dst: CLIENT, id: 7, sequence: n, reply: true, payload: datagram }))),
  ]);
}

/** `compare`'s warm-up chunks, in feeding order; each chunk's two copies go primary first or secondary first, alternately. */
export function warmUpChunks(vnetHeader: boolean): WarmUpChunk[] {
  const header = vnetHeader ? new Uint8Array(12) : new Uint8Array(0);
  const events = warmUpEvents(false).flatMap((e) => (e.kind === 'guests' ? [e] : []));
  const chunks: WarmUpChunk[] = [];
  for (let at = 0; at < events.length; at += FRAMES_PER_CHUNK) {
    const part = events.slice(at, at + FRAMES_PER_CHUNK);
    const encode = (side: 'primary' | 'secondary'): Buffer => encodeQemuPackets(part.map((e) => e[side]), part.map(() => header), vnetHeader, (n) => Buffer.allocUnsafe(n));
    const sides: ('primary' | 'secondary')[] = (at / FRAMES_PER_CHUNK) % 2 === 0 ? ['primary', 'secondary'] : ['secondary', 'primary'];
    for (const side of sides) chunks.push({ side, bytes: encode(side) });
  }
  return chunks;
}
