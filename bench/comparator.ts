/**
 * The comparator core on identical streams, frames already in memory: what `createComparator`
 * sustains when the PVM and the SVM send the same TCP bytes in lockstep (alternately one side
 * first, then the other), at 64-byte and 1448-byte payloads, over 1 and 10,000 connections.
 * Every frame is decoded, keyed, compared by sequence range and released, as in production,
 * with the Node.js byte equality the front ends use. Three ways of driving it are measured on the
 * same frames: `ingest`, returning an array of `Action` objects; `ingestTo`, handing the same
 * actions to a sink as calls; and `ingestTo` with `framesImmutable` (the caller never reuses a
 * frame's bytes, so the core keeps views instead of copies). The same-run baseline is plain
 * `Buffer.equals` over the same payload pairs: the cost of comparing bytes and nothing else.
 * Also reported: heap per idle connection (after a handshake, one exchange and one scan; needs
 * `--expose-gc`, which `npm run bench` passes). Run standalone: `node --expose-gc --import tsx bench/comparator.ts`.
 */

import { pathToFileURL } from 'node:url';
import { TCP_ACK, TCP_PSH, TCP_SYN, createComparator, type ActionSink, type Comparator } from '../compare/index.js';
import { emitTcp } from '../compare/wire/emit.js';
import { nodeBytesEqual } from '../proxy/engine/node-bytes-equal.js';
import type { BenchResult } from './result.js';

const GUEST = '10.0.0.2';
const CLIENT = '10.0.0.1';
const ISN = 4_294_000_000; // streams cross 2^32 on the way

interface Workload {
  /** [primary, secondary] frame pairs in feeding order. */
  pairs: [Uint8Array, Uint8Array][];
  /** Payload views of the pairs, for the baseline. */
  payloads: [Buffer, Buffer][];
  connections: number;
  payloadBytes: number;
}

function synAck(port: number): Uint8Array {
  return emitTcp({ src: GUEST, dst: CLIENT, srcPort: 80, dstPort: port, seq: ISN - 1, ack: 1, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, windowScale: 7 } });
}

/**
 * Packs frames back to back into 64 KiB chunks, as socket reads deliver them: one ArrayBuffer per
 * frame would make every garbage collection walk a million ArrayBuffers, which no front end does.
 */
class ChunkPacker {
  private chunk = new Uint8Array(65536);
  private used = 0;

  pack(frame: Uint8Array): Uint8Array {
    if (this.used + frame.length > this.chunk.length) {
      this.chunk = new Uint8Array(65536);
      this.used = 0;
    }
    this.chunk.set(frame, this.used);
    const view = this.chunk.subarray(this.used, this.used + frame.length);
    this.used += frame.length;
    return view;
  }
}

function workload(connections: number, payloadBytes: number, totalPairs: number): Workload {
  const packer = new ChunkPacker();
  const perConnection = Math.max(1, Math.floor(totalPairs / connections));
  const payload = new Uint8Array(payloadBytes).map((_, i) => (i * 31 + 7) & 0xff);
  const pairs: [Uint8Array, Uint8Array][] = [];
  const payloads: [Buffer, Buffer][] = [];
  for (let k = 0; k < perConnection; k++) {
    for (let c = 0; c < connections; c++) {
      const fields = {
        src: GUEST, dst: CLIENT, srcPort: 80, dstPort: 10000 + c, seq: (ISN + k * payloadBytes) >>> 0, ack: 1,
        flags: TCP_ACK | TCP_PSH, options: { timestamp: [k, k] as [number, number] }, payload,
      };
      const p = packer.pack(emitTcp(fields));
      const s = packer.pack(emitTcp(fields));
      pairs.push([p, s]);
      const at = p.length - payloadBytes;
      payloads.push([Buffer.from(p.buffer, p.byteOffset + at, payloadBytes), Buffer.from(s.buffer, s.byteOffset + at, payloadBytes)]);
    }
  }
  return { pairs, payloads, connections, payloadBytes };
}

function established(w: Workload, framesImmutable = false): Comparator {
  const c = createComparator({ bytesEqual: nodeBytesEqual, maxConnections: w.connections + 16, framesImmutable });
  for (let i = 0; i < w.connections; i++) {
    c.ingest('primary', synAck(10000 + i), 0);
    c.ingest('secondary', synAck(10000 + i), 0);
  }
  return c;
}

/** Counts releases, as a front end's sink would act on them. */
class CountingSink implements ActionSink {
  released = 0;
  release(): void {
    this.released++;
  }
  deliver(): void {}
  drop(): void {}
  mismatch(): void {}
  checkpoint(): void {}
  event(): void {}
}

/** How the comparator is driven (see the module header). */
type Form = 'ingest' | 'ingestTo' | 'ingestTo, framesImmutable';
const FORMS: Form[] = ['ingest', 'ingestTo', 'ingestTo, framesImmutable'];

/**
 * Feeds every pair once in `form`; returns primary frames released per second. Each form has a
 * loop function of its own: one loop switching on the form got deoptimized at every change of
 * form and ran some rounds at half speed.
 */
function runComparator(w: Workload, form: Form): number {
  const c = established(w, form === 'ingestTo, framesImmutable');
  const start = performance.now();
  const released = form === 'ingest' ? feedIngest(c, w.pairs) : feedIngestTo(c, w.pairs);
  const elapsed = performance.now() - start;
  const expected = w.pairs.length + w.connections; // the SYN-ACKs were released before the clock started
  if (released + w.connections !== expected || c.counters.checkpointRequests !== 0) {
    throw new Error(`bench: ${released} of ${w.pairs.length} frames released, ${c.counters.checkpointRequests} checkpoints: the workload is wrong`);
  }
  return (w.pairs.length * 1000) / elapsed;
}

/** The pairs through `ingest`, alternately primary and secondary first; returns the frames released. */
function feedIngest(c: Comparator, pairs: [Uint8Array, Uint8Array][]): number {
  let released = 0;
  for (let i = 0; i < pairs.length; i++) {
    const [p, s] = pairs[i]!;
    const first = i & 1 ? c.ingest('secondary', s, 1) : c.ingest('primary', p, 1);
    const second = i & 1 ? c.ingest('primary', p, 1) : c.ingest('secondary', s, 1);
    for (const a of first) if (a.kind === 'release') released++;
    for (const a of second) if (a.kind === 'release') released++;
  }
  return released;
}

/** The same through `ingestTo` and a counting sink. */
function feedIngestTo(c: Comparator, pairs: [Uint8Array, Uint8Array][]): number {
  const counter = new CountingSink();
  for (let i = 0; i < pairs.length; i++) {
    const [p, s] = pairs[i]!;
    if (i & 1) c.ingestTo(counter, 'secondary', s, 1);
    else c.ingestTo(counter, 'primary', p, 1);
    if (i & 1) c.ingestTo(counter, 'primary', p, 1);
    else c.ingestTo(counter, 'secondary', s, 1);
  }
  return counter.released;
}

function runBaseline(w: Workload): number {
  let equal = 0;
  const start = performance.now();
  for (const [p, s] of w.payloads) if (p.equals(s)) equal++;
  const elapsed = performance.now() - start;
  if (equal !== w.payloads.length) throw new Error('bench: baseline payloads differ');
  return (w.payloads.length * 1000) / elapsed;
}

function idleConnectionBytes(count: number): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return undefined;
  const w = workload(count, 16, count);
  gc();
  const before = process.memoryUsage().heapUsed;
  const c = established(w);
  for (const [p, s] of w.pairs) {
    c.ingest('primary', p, 1);
    c.ingest('secondary', s, 1);
  }
  c.advance(60_000); // one scan: idle connections give back their spare buffers, as they do every scan interval
  gc();
  const after = process.memoryUsage().heapUsed;
  if (c.counters.connectionsClosed !== 0) throw new Error('bench: the idle connections were swept before being measured');
  if (c.counters.releasedFrames !== 2 * count) throw new Error('bench: idle workload did not release everything');
  return (after - before) / count;
}

/** Comparator throughput against Buffer.equals, for each payload size and connection count. */
export async function benchComparator(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  // Measured first, on a heap no throughput run has shaped: after them it read anywhere from
  // ~620 to ~820 bytes depending on how the runs before had left the heap.
  const idle = idleConnectionBytes(10_000);
  for (const payloadBytes of [64, 1448]) {
    const totalPairs = payloadBytes === 64 ? 400_000 : 100_000;
    for (const connections of [1, 10_000]) {
      const w = workload(connections, payloadBytes, totalPairs);
      for (let warm = 0; warm < 2; warm++) for (const form of FORMS) runComparator(w, form);
      runBaseline(w);
      const ours = FORMS.map(() => 0);
      let base = 0;
      // Each round starts with another form: a run pays for collecting the garbage of the run
      // before it (over 10,000 connections a copying run leaves ~40 MB of copy arenas), so a
      // fixed order always handed that cost to the same form. (A forced gc() before each run
      // was tried instead: it shrinks the heap and made every run 20-40 % slower.)
      for (let round = 0; round < 3; round++) {
        for (let k = 0; k < FORMS.length; k++) {
          const i = (round + k) % FORMS.length;
          ours[i] = Math.max(ours[i]!, runComparator(w, FORMS[i]!));
        }
        base = Math.max(base, runBaseline(w));
      }
      const baseline = `Buffer.equals ${payloadBytes} B`;
      const gbit = (rate: number) => (rate * payloadBytes * 8) / 1e9;
      FORMS.forEach((form, i) => {
        const name = `compare ${payloadBytes} B x ${connections.toLocaleString('en-US')} conn, ${form}`;
        results.push({ name, value: ours[i]!, unit: 'frames/s', baseline, ratio: ours[i]! / base });
        results.push({ name, value: gbit(ours[i]!), unit: 'Gbit/s' });
      });
      results.push({ name: baseline, value: base, unit: 'pairs/s' });
    }
  }
  if (idle !== undefined) results.push({ name: 'heap per idle connection (10,000)', value: idle, unit: 'bytes' });
  return results;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await benchComparator()) {
    const ratio = r.ratio !== undefined ? `  (${r.ratio.toFixed(3)}x ${r.baseline})` : '';
    console.log(`${r.name}: ${r.value >= 100 ? Math.round(r.value).toLocaleString('en-US') : r.value.toFixed(2)} ${r.unit}${ratio}`);
  }
}
