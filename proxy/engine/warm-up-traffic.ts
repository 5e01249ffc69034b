/**
 * Synthetic traffic for warming up V8 before a front end takes real frames (see `warmUp` in
 * compare-engine.ts): V8 runs new code interpreted and compiles the hot paths only after they have
 * run a few thousand times, so without a warm-up the first real frames take several times longer
 * than later ones (the compare bench's "first traffic" latency).
 *
 * The traffic is what a COLO pair commonly sends, identical on both sides: guest-to-client TCP
 * streams (each opened by a SYN-ACK, with timestamps) at small and MTU-sized payloads, over one
 * connection and over many, over IPv4 and IPv6, UDP datagrams and ICMP echo replies, all mixed,
 * and each chunk's two copies in either order. Mixed from the start, because code V8 compiled
 * for TCP alone is thrown away (deoptimized) at the first datagram, and the slow start comes
 * back. It is framed as QEMU frames into chunks like socket reads, so the framing decoder warms
 * up too. About 7,000 frames a side.
 */

import { TCP_ACK, TCP_PSH, TCP_SYN, emitIcmpEcho, emitTcp, emitUdp } from '../../compare/index.js';
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

/** `flows` TCP connections from the guest's port 80: each one's SYN-ACK, then `segments` segments of `size` bytes, round-robin. */
function tcpStream(src: string, dst: string, firstPort: number, flows: number, segments: number, size: number): Uint8Array[] {
  const payload = new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff);
  const frames: Uint8Array[] = [];
  const seq = new Array<number>(flows).fill(1000);
  for (let f = 0; f < flows; f++) {
    frames.push(emitTcp({ src, dst, srcPort: 80, dstPort: firstPort + f, seq: 999, ack: 1, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, timestamp: [1, 1], windowScale: 7 } }));
  }
  for (let n = 0; n < segments * flows; n++) {
    const f = n % flows;
    frames.push(emitTcp({ src, dst, srcPort: 80, dstPort: firstPort + f, seq: seq[f]!, ack: 1, flags: TCP_ACK | TCP_PSH, options: { timestamp: [n + 2, n + 1] }, payload }));
    seq[f]! += size;
  }
  return frames;
}

/** The streams' frames interleaved: one from each in turn while any has frames left. */
function interleave(streams: Uint8Array[][]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const longest = Math.max(...streams.map((s) => s.length));
  for (let i = 0; i < longest; i++) {
    for (const s of streams) if (i < s.length) out.push(s[i]!);
  }
  return out;
}

/** The warm-up chunks, in feeding order; each chunk's two copies go primary first or secondary first, alternately. */
export function warmUpChunks(vnetHeader: boolean): WarmUpChunk[] {
  const header = vnetHeader ? new Uint8Array(12) : new Uint8Array(0);
  const datagram = new Uint8Array(100).fill(0x5a);
  const frames = interleave([
    tcpStream(GUEST, CLIENT, 40000, 1, 1500, 64),
    tcpStream(GUEST, CLIENT, 40001, 1, 1500, 1400),
    tcpStream(GUEST, CLIENT, 41000, 64, 25, 64),
    tcpStream(GUEST, CLIENT, 42000, 64, 25, 1400),
    tcpStream(GUEST6, CLIENT6, 43000, 1, 300, 1400),
    Array.from({ length: 300 }, (_, n) => emitUdp({ src: GUEST, dst: CLIENT, srcPort: 53, dstPort: 44000, payload: datagram.subarray(0, 40 + (n % 60)) })),
    Array.from({ length: 100 }, (_, n) => emitIcmpEcho({ src: GUEST, dst: CLIENT, id: 7, sequence: n, reply: true, payload: datagram })),
  ]);
  const chunks: WarmUpChunk[] = [];
  for (let at = 0; at < frames.length; at += FRAMES_PER_CHUNK) {
    const part = frames.slice(at, at + FRAMES_PER_CHUNK);
    const encode = (): Buffer => encodeQemuPackets(part, part.map(() => header), vnetHeader, (n) => Buffer.allocUnsafe(n));
    const sides: ('primary' | 'secondary')[] = (at / FRAMES_PER_CHUNK) % 2 === 0 ? ['primary', 'secondary'] : ['secondary', 'primary'];
    for (const side of sides) chunks.push({ side, bytes: encode() });
  }
  return chunks;
}
