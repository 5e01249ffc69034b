/**
 * Frame decoding throughput: `decodeFrame`, and a reused `FrameDecoder` (no allocation), plus
 * reading what a comparator needs (flow 5-tuple, seq, ack, flags, payload offset/length), against a
 * same-run baseline that reads the same fields by direct byte indexing with only the length checks
 * a careful hand-written parser needs (no views, no objects, no TCP option validation). The ratio
 * is the price of the view layer.
 *
 * The synthetic set is 200,000 frames in one buffer (as a socket read would deliver them):
 * 70 % Ethernet/IPv4/TCP with the timestamps option (a fifth of them VLAN-tagged) and 30 %
 * Ethernet/IPv6/UDP, payloads from 0 to 1448 bytes. Run alone with `npm run bench -- parse`.
 */

import {
  Frame, FrameDecoder, decodeFrame, fillIpv4HeaderChecksum, pseudoSumV4, pseudoSumV6, readU32,
  transportChecksum, udpChecksum, writeU16, writeU32,
} from '../compare/index.js';
import type { BenchResult } from './result.js';

const FRAME_COUNT = 200_000;
const PAYLOAD_SIZES = [0, 0, 6, 40, 100, 536, 1448];

/** A small deterministic PRNG (xorshift32) so every run decodes the same frames. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

function writeEthernet(b: Uint8Array, vlan: boolean, etherType: number): number {
  b.set([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52, 0x54, 0, 0xab, 0xcd, 0xef]);
  if (!vlan) {
    writeU16(b, 12, etherType);
    return 14;
  }
  writeU16(b, 12, 0x8100);
  writeU16(b, 14, 42);
  writeU16(b, 16, etherType);
  return 18;
}

function ipv4TcpFrame(random: () => number, vlan: boolean, payload: number): Uint8Array {
  const l3 = vlan ? 18 : 14;
  const b = new Uint8Array(Math.max(60, l3 + 20 + 32 + payload));
  writeEthernet(b, vlan, 0x0800);
  b[l3] = 0x45;
  writeU16(b, l3 + 2, 20 + 32 + payload);
  writeU16(b, l3 + 4, (random() * 0x10000) >>> 0);
  b[l3 + 6] = 0x40;
  b[l3 + 8] = 64;
  b[l3 + 9] = 6;
  writeU32(b, l3 + 12, 0x0a000001 + ((random() * 200) >>> 0));
  writeU32(b, l3 + 16, 0x0a000101);
  fillIpv4HeaderChecksum(b, l3);
  const t = l3 + 20;
  writeU16(b, t, 40000 + ((random() * 1000) >>> 0));
  writeU16(b, t + 2, 443);
  writeU32(b, t + 4, (random() * 0x100000000) >>> 0);
  writeU32(b, t + 8, (random() * 0x100000000) >>> 0);
  b[t + 12] = 8 << 4;
  b[t + 13] = payload > 0 ? 0x18 : 0x10;
  writeU16(b, t + 14, 502);
  b.set([1, 1, 8, 10], t + 20);
  writeU32(b, t + 24, (random() * 0x100000000) >>> 0);
  writeU32(b, t + 28, (random() * 0x100000000) >>> 0);
  for (let i = 0; i < payload; i++) b[t + 32 + i] = i & 0xff;
  writeU16(b, t + 16, transportChecksum(pseudoSumV4(b, l3, 6, 32 + payload), b, t, 32 + payload, t + 16));
  return b;
}

function ipv6UdpFrame(random: () => number, vlan: boolean, payload: number): Uint8Array {
  const l3 = vlan ? 18 : 14;
  const b = new Uint8Array(Math.max(60, l3 + 40 + 8 + payload));
  writeEthernet(b, vlan, 0x86dd);
  writeU32(b, l3, 0x60000000 | ((random() * 0x100000) >>> 0));
  writeU16(b, l3 + 4, 8 + payload);
  b[l3 + 6] = 17;
  b[l3 + 7] = 64;
  b.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 + ((random() * 200) >>> 0)], l3 + 8);
  b.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe], l3 + 24);
  const u = l3 + 40;
  writeU16(b, u, 50000 + ((random() * 1000) >>> 0));
  writeU16(b, u + 2, 53);
  writeU16(b, u + 4, 8 + payload);
  for (let i = 0; i < payload; i++) b[u + 8 + i] = (i * 7) & 0xff;
  writeU16(b, u + 6, udpChecksum(pseudoSumV6(b, l3, 17, 8 + payload), b, u, 8 + payload, u + 6));
  return b;
}

/** Builds the synthetic set as subarrays of one buffer. */
function buildFrames(count = FRAME_COUNT): Uint8Array[] {
  const random = rng(0xc0105eed);
  const built: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const payload = PAYLOAD_SIZES[(random() * PAYLOAD_SIZES.length) >>> 0]!;
    const frame = random() < 0.7 ? ipv4TcpFrame(random, random() < 0.2, payload) : ipv6UdpFrame(random, random() < 0.2, payload);
    built.push(frame);
    total += frame.length;
  }
  const chunk = new Uint8Array(total);
  const frames: Uint8Array[] = [];
  let at = 0;
  for (const f of built) {
    chunk.set(f, at);
    frames.push(chunk.subarray(at, at + f.length));
    at += f.length;
  }
  return frames;
}

/** One pass of `decodeFrame` over all frames, folding the comparator's fields into a checksum-like value. */
function passViews(frames: Uint8Array[]): number {
  return passDecode(frames, null);
}

const decoder = new FrameDecoder();

/** The same with one reused `FrameDecoder`. */
function passDecoder(frames: Uint8Array[]): number {
  return passDecode(frames, decoder);
}

function passDecode(frames: Uint8Array[], d: FrameDecoder | null): number {
  let sink = 0;
  for (let i = 0; i < frames.length; i++) {
    const f = d === null ? decodeFrame(frames[i]!) : d.decode(frames[i]!);
    if (!(f instanceof Frame)) {
      sink++;
      continue;
    }
    let h = f.protocol ^ f.payloadOffset ^ f.payloadLength;
    const n = f.network;
    if (n !== null) {
      if (n.kind === 'ipv4') {
        h ^= n.src ^ n.dst;
      } else if (n.kind === 'ipv6') {
        const b = n.bytes;
        const s = n.srcOffset;
        const d = n.dstOffset;
        h ^= readU32(b, s) ^ readU32(b, s + 4) ^ readU32(b, s + 8) ^ readU32(b, s + 12);
        h ^= readU32(b, d) ^ readU32(b, d + 4) ^ readU32(b, d + 8) ^ readU32(b, d + 12);
      }
    }
    const t = f.transport;
    if (t !== null) {
      if (t.kind === 'tcp') {
        h ^= ((t.srcPort << 16) | t.dstPort) ^ t.seq ^ t.ack ^ t.flags;
      } else if (t.kind === 'udp') {
        h ^= (t.srcPort << 16) | t.dstPort;
      }
    }
    sink = (sink + h) | 0;
  }
  return sink;
}

/** The same fields read by hand: direct indexing, length checks only, nothing allocated. */
function passInline(frames: Uint8Array[]): number {
  let sink = 0;
  for (let i = 0; i < frames.length; i++) {
    const b = frames[i]!;
    const len = b.length;
    if (len < 14) {
      sink++;
      continue;
    }
    let at = 12;
    let type = (b[at]! << 8) | b[at + 1]!;
    while ((type === 0x8100 || type === 0x88a8) && at + 6 <= len) {
      at += 4;
      type = (b[at]! << 8) | b[at + 1]!;
    }
    at += 2;
    let h = 0;
    if (type === 0x0800) {
      if (len - at < 20) {
        sink++;
        continue;
      }
      const hl = (b[at]! & 0x0f) * 4;
      const total = (b[at + 2]! << 8) | b[at + 3]!;
      if (hl < 20 || total < hl || total > len - at) {
        sink++;
        continue;
      }
      const protocol = b[at + 9]!;
      const src = ((b[at + 12]! << 24) | (b[at + 13]! << 16) | (b[at + 14]! << 8) | b[at + 15]!) >>> 0;
      const dst = ((b[at + 16]! << 24) | (b[at + 17]! << 16) | (b[at + 18]! << 8) | b[at + 19]!) >>> 0;
      const t = at + hl;
      const segment = total - hl;
      h = protocol ^ src ^ dst;
      if (protocol === 6 && segment >= 20) {
        const thl = (b[t + 12]! >>> 4) * 4;
        if (thl < 20 || thl > segment) {
          sink++;
          continue;
        }
        const seq = ((b[t + 4]! << 24) | (b[t + 5]! << 16) | (b[t + 6]! << 8) | b[t + 7]!) >>> 0;
        const ack = ((b[t + 8]! << 24) | (b[t + 9]! << 16) | (b[t + 10]! << 8) | b[t + 11]!) >>> 0;
        h ^= (t + thl) ^ (segment - thl);
        h ^= ((b[t]! << 24) | (b[t + 1]! << 16) | (b[t + 2]! << 8) | b[t + 3]!) ^ seq ^ ack ^ b[t + 13]!;
      }
    } else if (type === 0x86dd) {
      if (len - at < 40) {
        sink++;
        continue;
      }
      const payload = (b[at + 4]! << 8) | b[at + 5]!;
      if (payload > len - at - 40) {
        sink++;
        continue;
      }
      const protocol = b[at + 6]!;
      h = protocol;
      for (let w = at + 8; w < at + 40; w += 4) h ^= ((b[w]! << 24) | (b[w + 1]! << 16) | (b[w + 2]! << 8) | b[w + 3]!) >>> 0;
      const u = at + 40;
      if (protocol === 17 && payload >= 8) {
        const ulen = (b[u + 4]! << 8) | b[u + 5]!;
        if (ulen < 8 || ulen > payload) {
          sink++;
          continue;
        }
        h ^= (u + 8) ^ (ulen - 8);
        h ^= (b[u]! << 24) | (b[u + 1]! << 16) | (b[u + 2]! << 8) | b[u + 3]!;
      }
    }
    sink = (sink + h) | 0;
  }
  return sink;
}

/** Runs `pass` repeatedly for about `ms` milliseconds and returns frames per second. */
function measure(pass: (frames: Uint8Array[]) => number, frames: Uint8Array[], ms: number): number {
  let done = 0;
  let sink = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    sink ^= pass(frames);
    done += frames.length;
    elapsed = performance.now() - start;
  }
  if (sink === 0x7fffffff) throw new Error('bench: impossible sink value (keeps the work observable)');
  return (done * 1000) / elapsed;
}

/** Measures `decodeFrame` and `FrameDecoder` against the hand-inlined baseline; best of two rounds each, interleaved. */
export async function benchParse(ms = 2000): Promise<BenchResult[]> {
  const frames = buildFrames();
  measure(passViews, frames, 300);
  measure(passDecoder, frames, 300);
  measure(passInline, frames, 300);
  let views = 0;
  let reused = 0;
  let inline = 0;
  for (let round = 0; round < 2; round++) {
    views = Math.max(views, measure(passViews, frames, ms));
    reused = Math.max(reused, measure(passDecoder, frames, ms));
    inline = Math.max(inline, measure(passInline, frames, ms));
  }
  const baseline = 'parse: hand-inlined field reads';
  return [
    { name: 'parse: decodeFrame + comparator fields', value: views, unit: 'frames/s', baseline, ratio: views / inline },
    { name: 'parse: FrameDecoder + comparator fields', value: reused, unit: 'frames/s', baseline, ratio: reused / inline },
    { name: baseline, value: inline, unit: 'frames/s' },
  ];
}
