/**
 * TCP byte-stream comparison throughput: `TcpStreamMatch` fed two identical streams in lockstep
 * (one primary segment, then the secondary segment for the same range, or the other way round),
 * against a same-run baseline that calls the same `BytesEqual` over the same byte pairs in a plain
 * loop. The ratio is the price of the matcher's bookkeeping (relative offsets, the buffer of the
 * side that is ahead, the unit checks) on top of the comparison itself.
 *
 * Each side's segments are subarrays of its own 8 MiB buffer (as frames from a socket read would
 * be), with identical contents; sequence numbers run on across passes and wrap. `BytesEqual` is
 * `Buffer.compare` (memcmp) called on plain Uint8Arrays. Run alone with
 * `npm run bench -- tcp-stream`.
 */

import { seqAdd } from '../compare/index.js';
import type { BytesEqual } from '../compare/match/bytes-equal.js';
import { TcpStreamMatch } from '../compare/match/tcp-stream.js';
import type { BenchResult } from './result.js';

const POOL_BYTES = 8 << 20;
const bufferCompare = Buffer.prototype.compare;

/** `Buffer.compare` on any Uint8Array: `a.compare(target, targetStart, targetEnd, sourceStart, sourceEnd)`. */
const bufferEqual: BytesEqual = (a, aAt, b, bAt, n) => bufferCompare.call(a, b, bAt, bAt + n, aAt, aAt + n) === 0;

/** Refuses to measure if `bufferEqual` is wrong on plain Uint8Arrays (offsets, lengths, one differing byte). */
function checkBufferEqual(): void {
  const a = Uint8Array.from([9, 1, 2, 3, 4, 5]);
  const b = Uint8Array.from([7, 7, 1, 2, 3, 4, 6]);
  const ok = bufferEqual(a, 1, b, 2, 4) && !bufferEqual(a, 1, b, 2, 5) && !bufferEqual(a, 0, b, 0, 1) && bufferEqual(a, 6, b, 7, 0);
  if (!ok || a instanceof Buffer) throw new Error('bench: Buffer.compare-based BytesEqual gives wrong answers on Uint8Array');
}

/** Segment views of two identical pools, `size` bytes each. */
function segments(size: number): { primary: Uint8Array[]; secondary: Uint8Array[] } {
  const count = Math.floor(POOL_BYTES / size);
  const p = new Uint8Array(count * size);
  for (let i = 0; i < p.length; i++) p[i] = (i * 131 + (i >>> 9)) & 0xff;
  const s = p.slice();
  const primary: Uint8Array[] = [];
  const secondary: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    primary.push(p.subarray(i * size, (i + 1) * size));
    secondary.push(s.subarray(i * size, (i + 1) * size));
  }
  return { primary, secondary };
}

interface Rate {
  segments: number;
  bytes: number;
}

/** Runs `pass` for about `ms` milliseconds; returns segment pairs and payload bytes per second. */
function measure(pass: () => number, perPass: Rate, ms: number): Rate {
  let passes = 0;
  let sink = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    sink += pass();
    passes++;
    elapsed = performance.now() - start;
  }
  if (sink !== passes * perPass.segments) throw new Error('bench: a pass did not verify every segment');
  return { segments: (passes * perPass.segments * 1000) / elapsed, bytes: (passes * perPass.bytes * 1000) / elapsed };
}

function matcherPass(m: TcpStreamMatch, primary: Uint8Array[], secondary: Uint8Array[], primaryFirst: boolean, state: { seq: number }): () => number {
  return () => {
    let seq = state.seq;
    let verified = 0;
    for (let i = 0; i < primary.length; i++) {
      const p = primary[i]!;
      let end: number;
      if (primaryFirst) {
        end = m.addPrimary(seq, p, false, false);
        m.addSecondary(seq, secondary[i]!, false, false);
      } else {
        m.addSecondary(seq, secondary[i]!, false, false);
        end = m.addPrimary(seq, p, false, false);
      }
      if (end <= m.verified) verified++;
      seq = seqAdd(seq, p.length);
    }
    state.seq = seq;
    if (m.mismatch !== null) throw new Error(`bench: unexpected mismatch ${m.mismatch.detail}`);
    return verified;
  };
}

function baselinePass(primary: Uint8Array[], secondary: Uint8Array[]): () => number {
  return () => {
    let equal = 0;
    for (let i = 0; i < primary.length; i++) {
      const p = primary[i]!;
      if (bufferEqual(p, 0, secondary[i]!, 0, p.length)) equal++;
    }
    return equal;
  };
}

/** Measures lockstep matching at 64 and 1448 bytes per segment, each order, against the bare comparison. */
export async function benchTcpStream(ms = 1500): Promise<BenchResult[]> {
  checkBufferEqual();
  const results: BenchResult[] = [];
  for (const size of [64, 1448]) {
    const { primary, secondary } = segments(size);
    const perPass = { segments: primary.length, bytes: primary.length * size };
    const base = baselinePass(primary, secondary);
    const orders: [string, () => number][] = [true, false].map((primaryFirst) => {
      const m = new TcpStreamMatch({ bytesEqual: bufferEqual });
      m.startAt(0xfff00000);
      return [primaryFirst ? 'primary first' : 'secondary first', matcherPass(m, primary, secondary, primaryFirst, { seq: 0xfff00001 })];
    });
    measure(base, perPass, 200);
    for (const [, pass] of orders) measure(pass, perPass, 200);
    let baseline: Rate = { segments: 0, bytes: 0 };
    const best = orders.map((): Rate => ({ segments: 0, bytes: 0 }));
    for (let round = 0; round < 2; round++) {
      const b = measure(base, perPass, ms);
      if (b.segments > baseline.segments) baseline = b;
      orders.forEach(([, pass], i) => {
        const r = measure(pass, perPass, ms);
        if (r.segments > best[i]!.segments) best[i] = r;
      });
    }
    const baselineName = `tcp-stream ${size} B: bytesEqual loop`;
    orders.forEach(([order], i) => {
      const r = best[i]!;
      results.push({ name: `tcp-stream ${size} B: match, ${order}`, value: r.segments, unit: 'segments/s', baseline: baselineName, ratio: r.segments / baseline.segments });
      results.push({ name: `tcp-stream ${size} B: match, ${order}`, value: (r.bytes * 8) / 1e9, unit: 'Gbit/s' });
    });
    results.push({ name: baselineName, value: baseline.segments, unit: 'segments/s' });
    results.push({ name: baselineName, value: (baseline.bytes * 8) / 1e9, unit: 'Gbit/s' });
  }
  return results;
}
