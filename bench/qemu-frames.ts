/**
 * QEMU socket framing throughput: `QemuFrameDecoder` over a large in-memory stream delivered in
 * 64 KiB chunks (a socket read's size), against a same-run baseline that only walks the length
 * fields across the same chunks (no frame objects, no subarrays, no copies). The ratio is the
 * price of the decoder's frames: one object and one or two subarrays per frame, plus a copy for
 * each frame that straddles a chunk boundary.
 *
 * Four streams of about 32 MB each: 64-byte and 1514-byte Ethernet frames, vnet off and on with
 * a 12-byte header. Figures are frames/s and MB/s (10^6 bytes of stream, length fields included),
 * best of two rounds each, interleaved. Run alone with `npm run bench -- qemu-frames`.
 */

import { readU32 } from '../compare/index.js';
import { encodeQemuFrames, QemuFrameDecoder } from '../proxy/framing/qemu-frames.js';
import type { BenchResult } from './result.js';

const STREAM_BYTES = 32 * 1000 * 1000;
const CHUNK = 64 * 1024;
const VNET_HEADER = 12;

interface Case {
  name: string;
  vnet: boolean;
  frames: number;
  bytes: number;
  chunks: Uint8Array[];
}

/** A stream of identical `size`-byte frames cut into `CHUNK`-byte subarrays. */
function buildCase(size: number, vnet: boolean): Case {
  const packet = Uint8Array.from({ length: size }, (_, i) => (i * 7) & 0xff);
  const vnetHeader = vnet ? new Uint8Array(VNET_HEADER).fill(1) : undefined;
  const frames = Math.floor(STREAM_BYTES / ((vnet ? 8 + VNET_HEADER : 4) + size));
  const stream = encodeQemuFrames(Array.from({ length: frames }, () => ({ packet, vnetHeader })), vnet);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < stream.length; at += CHUNK) chunks.push(stream.subarray(at, at + CHUNK));
  return { name: `${size} B, vnet ${vnet ? 'on' : 'off'}`, vnet, frames, bytes: stream.length, chunks };
}

/** One decode of the whole stream; returns a value that depends on every frame. */
function passDecoder(c: Case): number {
  const d = new QemuFrameDecoder({ vnetHeader: c.vnet });
  let sink = 0;
  for (const chunk of c.chunks) {
    const frames = d.push(chunk);
    for (let i = 0; i < frames.length; i++) sink = (sink + frames[i]!.packet.length + frames[i]!.vnetHeader.length) | 0;
  }
  d.end();
  return sink;
}

/** Walks the length fields only, carrying a split header or body across chunks; returns the frame count. */
function passLengths(c: Case): number {
  const headerLength = c.vnet ? 8 : 4;
  const head = new Uint8Array(8);
  let have = 0;
  let skip = 0;
  let count = 0;
  for (const chunk of c.chunks) {
    const n = chunk.length;
    let pos = 0;
    if (skip >= n) {
      skip -= n;
      continue;
    }
    pos = skip;
    skip = 0;
    if (have > 0) {
      while (have < headerLength && pos < n) head[have++] = chunk[pos++]!;
      if (have < headerLength) continue;
      pos += readU32(head, 0);
      have = 0;
      count++;
    }
    while (pos + headerLength <= n) {
      pos += headerLength + readU32(chunk, pos);
      count++;
    }
    if (pos > n) skip = pos - n;
    else while (pos < n) head[have++] = chunk[pos++]!;
  }
  return count;
}

/** Runs `pass` repeatedly for about `ms` milliseconds; returns passes per second. */
function measure(pass: (c: Case) => number, c: Case, ms: number): number {
  let done = 0;
  let sink = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    sink ^= pass(c);
    done++;
    elapsed = performance.now() - start;
  }
  if (sink === 0x7fffffff) throw new Error('bench: impossible sink value (keeps the work observable)');
  return (done * 1000) / elapsed;
}

/** Measures the decoder against the length walk on each stream; best of two rounds each, interleaved. */
export async function benchQemuFrames(ms = 1500): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const [size, vnet] of [[64, false], [64, true], [1514, false], [1514, true]] as const) {
    const c = buildCase(size, vnet);
    if (passLengths(c) !== c.frames) throw new Error(`bench: the length walk miscounts ${c.name}`);
    measure(passDecoder, c, 200);
    measure(passLengths, c, 200);
    let decoder = 0;
    let walk = 0;
    for (let round = 0; round < 2; round++) {
      decoder = Math.max(decoder, measure(passDecoder, c, ms));
      walk = Math.max(walk, measure(passLengths, c, ms));
    }
    const baseline = `qemu-frames: length walk, ${c.name}`;
    results.push(
      { name: `qemu-frames: decode, ${c.name}`, value: decoder * c.frames, unit: 'frames/s', baseline, ratio: decoder / walk },
      { name: `qemu-frames: decode, ${c.name}`, value: (decoder * c.bytes) / 1e6, unit: 'MB/s' },
      { name: baseline, value: walk * c.frames, unit: 'frames/s' },
    );
  }
  return results;
}
