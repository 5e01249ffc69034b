/**
 * Capture file reading throughput: `readCaptureFile` (one frame per iteration) and
 * `readCaptureBatches` (one array per read chunk) against a same-run baseline that streams the
 * same file through `fs.createReadStream` with the same chunk size and does nothing per chunk.
 * The ratio is the price of decoding plus, for `readCaptureFile`, of one async iteration per frame.
 *
 * The synthetic file holds 1,200,000 Ethernet frames of mixed sizes (60 to 1514 bytes, about
 * 330 MB as pcap), written by our own writer into a fresh temporary directory that is removed
 * afterwards, once as nanosecond pcap and once as pcapng. Each figure is the best of three passes
 * over a file that is then in the page cache, so the disk does not decide it.
 * Run alone with `npm run bench -- pcap-read`.
 */

import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LINKTYPE_ETHERNET } from '../compare/index.js';
import { createCaptureFileWriter, readCaptureBatches, readCaptureFile } from '../proxy/ports/capture-file.js';
import type { BenchResult } from './result.js';

const FRAME_COUNT = 1_200_000;
const FRAME_SIZES = [60, 60, 66, 66, 66, 120, 576, 1514, 1514];
const CHUNK = 1 << 20;
const PASSES = 3;

/** Writes the synthetic capture; times advance by 0-1023 µs plus a few ns, so every digit varies. */
async function writeSynthetic(path: string, format: 'pcap' | 'pcapng'): Promise<void> {
  const templates = FRAME_SIZES.map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff));
  const w = await createCaptureFileWriter(path, format);
  w.addInterface(LINKTYPE_ETHERNET);
  let s = 0x2545f491;
  let t = 1_700_000_000_000_000_000n;
  for (let i = 0; i < FRAME_COUNT; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    t += BigInt((s >>> 0) % 1_024_000 + 1);
    await w.write({ timeNs: t, data: templates[(s >>> 20) % templates.length]! });
  }
  await w.close();
}

/** Best wall time of `PASSES` runs of `pass`, which returns a value that must not be optimized away. */
async function best(pass: () => Promise<number>): Promise<{ seconds: number; check: number }> {
  let seconds = Infinity;
  let check = 0;
  for (let i = 0; i < PASSES; i++) {
    const start = process.hrtime.bigint();
    check = await pass();
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return { seconds, check };
}

async function streamBytes(path: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) n += (chunk as Buffer).length;
  return n;
}

async function perFrame(path: string): Promise<number> {
  let n = 0;
  for await (const f of readCaptureFile(path, { chunkSize: CHUNK })) n += f.data.length > 0 ? 1 : 0;
  return n;
}

async function perBatch(path: string): Promise<number> {
  let n = 0;
  for await (const batch of readCaptureBatches(path, { chunkSize: CHUNK })) n += batch.length;
  return n;
}

async function benchFormat(dir: string, format: 'pcap' | 'pcapng'): Promise<BenchResult[]> {
  const path = join(dir, `synthetic.${format}`);
  await writeSynthetic(path, format);
  const mb = (await stat(path)).size / 1e6;
  const baseline = await best(() => streamBytes(path));
  const frames = await best(() => perFrame(path));
  const batches = await best(() => perBatch(path));
  if (frames.check !== FRAME_COUNT || batches.check !== FRAME_COUNT) {
    throw new Error(`bench/pcap-read: read ${frames.check} and ${batches.check} frames of ${FRAME_COUNT}`);
  }
  await rm(path);
  const base = `${format}: fs stream, nothing per chunk`;
  const rate = mb / baseline.seconds;
  return [
    { name: base, value: rate, unit: 'MB/s' },
    { name: `${format}: readCaptureFile`, value: mb / frames.seconds, unit: 'MB/s', baseline: base, ratio: mb / frames.seconds / rate },
    { name: `${format}: readCaptureFile`, value: FRAME_COUNT / frames.seconds, unit: 'frames/s' },
    { name: `${format}: readCaptureBatches`, value: mb / batches.seconds, unit: 'MB/s', baseline: base, ratio: mb / batches.seconds / rate },
    { name: `${format}: readCaptureBatches`, value: FRAME_COUNT / batches.seconds, unit: 'frames/s' },
  ];
}

/** Reading a ~330 MB synthetic pcap and pcapng, per frame and per batch, against plain fs streaming. */
export async function benchPcapRead(): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'colo-bench-pcap-'));
  try {
    return [...await benchFormat(dir, 'pcap'), ...await benchFormat(dir, 'pcapng')];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
