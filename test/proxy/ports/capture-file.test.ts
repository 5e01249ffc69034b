import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../../../compare/wire/bytes.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../../compare/wire/link.js';
import { CaptureFormatError } from '../../../proxy/framing/capture.js';
import type { CapturedFrame } from '../../../proxy/framing/capture.js';
import {
  CaptureFileError, createCaptureFileWriter, readCaptureBatches, readCaptureFile,
} from '../../../proxy/ports/capture-file.js';
import type { FrameToWrite } from '../../../proxy/ports/capture-file.js';
import { runTool } from '../../support/tshark.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'colo-capture-file-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Ethernet frame of `length` bytes whose bytes count up from `seed`. */
function bytes(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i) & 0xff);
}

async function readAll(path: string, chunkSize?: number): Promise<CapturedFrame[]> {
  const frames: CapturedFrame[] = [];
  for await (const f of readCaptureFile(path, chunkSize === undefined ? {} : { chunkSize })) frames.push(f);
  return frames;
}

interface Essentials {
  timeNs: bigint;
  data: string;
  originalLength: number;
  linkType: number;
}

/** What survives any of our formats: time, bytes, lengths. */
function essentials(f: CapturedFrame): Essentials {
  return { timeNs: f.timeNs, data: toHex(f.data), originalLength: f.originalLength, linkType: f.linkType };
}

// Times chosen to have every nanosecond digit set, and one at the epoch.
const singleInterface: FrameToWrite[] = [
  { timeNs: 1_700_000_000_123_456_789n, data: bytes(60, 1) },
  { timeNs: 1_700_000_000_987_654_321n, data: bytes(1514, 2) },
  { timeNs: 1_700_000_005_000_000_001n, data: bytes(40, 3), originalLength: 1500 },
  { timeNs: 0n, data: bytes(14, 4) },
];

async function writeCapture(path: string, format: 'pcap' | 'pcapng', frames: FrameToWrite[], linkTypes = [LINKTYPE_ETHERNET]): Promise<void> {
  const w = await createCaptureFileWriter(path, format);
  for (const l of linkTypes) w.addInterface(l, { name: `if${l}` });
  for (const f of frames) await w.write(f);
  await w.close();
}

test('capture file: pcap round trip, any chunk size', async () => {
  const path = join(dir, 'round.pcap');
  await writeCapture(path, 'pcap', singleInterface);
  for (const chunkSize of [undefined, 1, 7, 100]) {
    const frames = await readAll(path, chunkSize);
    assert.deepEqual(frames.map(essentials), singleInterface.map((f) => ({
      timeNs: f.timeNs, data: toHex(f.data), originalLength: f.originalLength ?? f.data.length, linkType: LINKTYPE_ETHERNET,
    })), `chunkSize ${chunkSize}`);
    assert.deepEqual(frames.map((f) => f.fileOffset), [24, 100, 1630, 1686]);
  }
});

const multi: FrameToWrite[] = [
  { interfaceId: 0, timeNs: 1_700_000_000_000_000_001n, data: bytes(64, 5), comment: 'first, with ünïcödé ✓' },
  { interfaceId: 1, timeNs: 1_700_000_000_000_000_002n, data: bytes(20, 6) },
  { interfaceId: 2, timeNs: 1_700_000_000_000_000_003n, data: bytes(30, 7), originalLength: 9000, comment: 'snapped' },
  { interfaceId: 0, timeNs: 1_700_000_001_999_999_999n, data: bytes(1, 8) },
];
const multiLinks = [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_ETHERNET];

test('capture file: pcapng round trip with several interfaces and comments', async () => {
  const path = join(dir, 'round.pcapng');
  await writeCapture(path, 'pcapng', multi, multiLinks);
  for (const chunkSize of [undefined, 3]) {
    const frames = await readAll(path, chunkSize);
    assert.deepEqual(frames.map((f) => ({ ...essentials(f), interfaceId: f.interfaceId, comment: f.comment })), multi.map((f) => ({
      timeNs: f.timeNs, data: toHex(f.data), originalLength: f.originalLength ?? f.data.length,
      linkType: multiLinks[f.interfaceId!], interfaceId: f.interfaceId, comment: f.comment,
    })));
  }
  let batches = 0;
  for await (const batch of readCaptureBatches(path, { chunkSize: 64 })) {
    assert.ok(batch.length > 0);
    batches++;
  }
  assert.ok(batches > 1, 'small chunks give several batches');
});

test('capture file: leaving the loop early closes the file; overlapping next() calls stay in order', async () => {
  const path = join(dir, 'early.pcap');
  await writeCapture(path, 'pcap', singleInterface);
  const openFiles = () => readdirSync('/proc/self/fd').length;
  const before = openFiles();
  for await (const f of readCaptureFile(path, { chunkSize: 30 })) {
    assert.equal(f.fileOffset, 24);
    break;
  }
  assert.equal(openFiles(), before);
  const it = readCaptureFile(path, { chunkSize: 30 });
  const results = await Promise.all([it.next(), it.next(), it.next(), it.next(), it.next()]);
  assert.deepEqual(results.map((r) => (r.done ? 'done' : r.value.fileOffset)), [24, 100, 1630, 1686, 'done']);
});

test('capture file: from a pipe whose writer stays open, leaving early or a decoding error does not wait for the writer', async () => {
  const path = join(dir, 'whole.pcap');
  await writeCapture(path, 'pcap', singleInterface);
  const whole = await readFile(path);
  for (const [name, content] of [['leaving early', whole], ['a decoding error', Buffer.from('not a capture file at all')]] as const) {
    const fifo = join(dir, `live-${name.replace(/ /g, '-')}.fifo`);
    execFileSync('mkfifo', [fifo]);
    const openFiles = readdirSync('/proc/self/fd').length;
    // A FIFO opens once both ends are open: the reader's open and the writer's wait for each other.
    const reading = (async () => {
      const it = readCaptureFile(fifo);
      try {
        for await (const f of it) return f.fileOffset;
        return 'end';
      } catch (e) {
        return e instanceof CaptureFormatError ? e.code : e;
      }
    })();
    const writer = await open(fifo, 'w');
    await writer.write(content);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([reading, new Promise((resolve) => (timer = setTimeout(resolve, 5000, 'still waiting for the writer after 5 s')))]);
    clearTimeout(timer);
    await writer.close();
    await reading;
    assert.equal(outcome, name === 'leaving early' ? 24 : 'capture.bad_magic', name);
    assert.equal(readdirSync('/proc/self/fd').length, openFiles, `${name}: the pipe was closed`);
  }
});

test('capture file: a signal ends a read waiting on a quiet pipe, with its reason, and closes the pipe', async () => {
  const path = join(dir, 'quiet.pcap');
  await writeCapture(path, 'pcap', singleInterface);
  const fifo = join(dir, 'quiet.fifo');
  execFileSync('mkfifo', [fifo]);
  const openFiles = readdirSync('/proc/self/fd').length;
  const stop = new AbortController();
  const it = readCaptureBatches(fifo, { signal: stop.signal });
  const first = it.next();
  const writer = await open(fifo, 'w');
  try {
    await writer.write(await readFile(path));
    assert.equal((await first).done, false, 'what the writer sent is read');
    const waiting = it.next(); // the writer says nothing more
    stop.abort(new Error('stopped'));
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      waiting.then(() => 'a batch', (e: unknown) => e),
      new Promise((resolve) => (timer = setTimeout(resolve, 5000, 'still waiting for the writer after 5 s'))),
    ]);
    clearTimeout(timer);
    assert.ok(settled instanceof Error && settled.message === 'stopped', String(settled));
    assert.deepEqual(await it.return(undefined), { done: true, value: undefined });
  } finally {
    await writer.close();
  }
  assert.equal(readdirSync('/proc/self/fd').length, openFiles, 'the pipe was closed');
});

test('tshark reads our pcap and pcapng: count, ns timestamps, lengths, comments, interfaces', async () => {
  const pcap = join(dir, 'tshark.pcap');
  const pcapng = join(dir, 'tshark.pcapng');
  await writeCapture(pcap, 'pcap', singleInterface);
  await writeCapture(pcapng, 'pcapng', multi, multiLinks);
  const fields = ['-T', 'fields', '-E', 'separator=|', '-e', 'frame.time_epoch', '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'frame.interface_id', '-e', 'frame.comment'];
  const epoch = (ns: bigint) => `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
  const rows = (out: string) => out.trim().split('\n');
  assert.deepEqual(rows(runTool('tshark', ['-r', pcap, ...fields])), singleInterface.map((f) =>
    `${epoch(f.timeNs)}|${f.originalLength ?? f.data.length}|${f.data.length}||`));
  assert.deepEqual(rows(runTool('tshark', ['-r', pcapng, ...fields])), multi.map((f) =>
    `${epoch(f.timeNs)}|${f.originalLength ?? f.data.length}|${f.data.length}|${f.interfaceId}|${f.comment ?? ''}`));
  const info = runTool('capinfos', ['-c', '-M', pcapng]);
  assert.match(info, /Number of packets:\s+4\b/);
});

test('files editcap converts from our pcap read back identically', async () => {
  const ours = join(dir, 'source.pcap');
  await writeCapture(ours, 'pcap', singleInterface);
  const want = (await readAll(ours)).map(essentials);
  const micro = (f: Essentials): Essentials => ({ ...f, timeNs: f.timeNs - (f.timeNs % 1000n) });
  const cases: [string, string[], (f: Essentials) => Essentials][] = [
    ['pcapng', ['-F', 'pcapng'], (f) => f],
    ['nsecpcap', ['-F', 'nsecpcap'], (f) => f],
    ['pcap (µs)', ['-F', 'pcap'], micro],
  ];
  for (const [name, args, expect] of cases) {
    const out = join(dir, `editcap-${name.replace(/\W/g, '')}`);
    runTool('editcap', [...args, ours, out]);
    const got = (await readAll(out, 13)).map(essentials);
    assert.deepEqual(got, want.map(expect), name);
  }
});

test('a file editcap snaps (-s) and comments (-a) reads back snapped and commented', async () => {
  const ours = join(dir, 'snap-source.pcap');
  await writeCapture(ours, 'pcap', singleInterface);
  for (const format of ['pcapng', 'nsecpcap']) {
    const out = join(dir, `snapped.${format}`);
    const args = ['-F', format, '-s', '32'];
    if (format === 'pcapng') args.push('-a', '2:two words');
    runTool('editcap', [...args, ours, out]);
    const got = await readAll(out);
    assert.deepEqual(got.map((f) => [f.timeNs, toHex(f.data), f.originalLength, f.comment]), singleInterface.map((f, i) => [
      f.timeNs, toHex(f.data.subarray(0, 32)), f.originalLength ?? f.data.length, format === 'pcapng' && i === 1 ? 'two words' : undefined,
    ]), format);
  }
});

test('capture file: file-system failures are CaptureFileError capture.io naming the path', async () => {
  const missing = join(dir, 'does-not-exist.pcap');
  await assert.rejects(readAll(missing), (e: unknown) => {
    assert.ok(e instanceof CaptureFileError);
    assert.equal(e.code, 'capture.io');
    assert.equal(e.path, missing);
    assert.ok(e.message.includes(missing));
    return true;
  });
  await assert.rejects(readAll(dir), (e: unknown) => e instanceof CaptureFileError && e.code === 'capture.io' && e.path === dir);
  await assert.rejects(createCaptureFileWriter(join(dir, 'no', 'such', 'dir.pcap'), 'pcap'),
    (e: unknown) => e instanceof CaptureFileError && e.code === 'capture.io');
});

test('capture file: corrupt content is a CaptureFormatError naming the path', async () => {
  const path = join(dir, 'truncated.pcap');
  await writeCapture(path, 'pcap', singleInterface);
  const whole = await readFile(path);
  await writeFile(path, whole.subarray(0, whole.length - 3));
  const seen: number[] = [];
  await assert.rejects((async () => {
    for await (const f of readCaptureFile(path, { chunkSize: 50 })) seen.push(f.fileOffset);
  })(), (e: unknown) => {
    assert.ok(e instanceof CaptureFormatError);
    assert.equal(e.code, 'capture.truncated');
    assert.equal(e.offset, 1686);
    assert.equal(e.path, path);
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    return true;
  });
  assert.deepEqual(seen, [24, 100, 1630], 'the frames before the damage are delivered');

  // The third record claims 2^31 captured bytes: the two before it still arrive, though all share one read.
  const damaged = Buffer.from(whole);
  damaged.writeUInt32LE(0x80000000, 1630 + 8);
  await writeFile(path, damaged);
  seen.length = 0;
  await assert.rejects((async () => {
    for await (const f of readCaptureFile(path)) seen.push(f.fileOffset);
  })(), (e: unknown) => e instanceof CaptureFormatError && e.code === 'capture.record_too_large' && e.offset === 1630 && e.path === path);
  assert.deepEqual(seen, [24, 100]);
});

test('capture file: writer misuse is refused', async () => {
  const pcap = await createCaptureFileWriter(join(dir, 'misuse.pcap'), 'pcap');
  await assert.rejects(pcap.write({ timeNs: 0n, data: bytes(1, 0) }), RangeError);
  pcap.addInterface(LINKTYPE_ETHERNET);
  assert.throws(() => pcap.addInterface(LINKTYPE_ETHERNET), /one interface/);
  await assert.rejects(pcap.write({ interfaceId: 1, timeNs: 0n, data: bytes(1, 0) }), RangeError);
  // Fill the 1 MiB buffer so the next write has to wait for the disk, then write again without waiting.
  const big = bytes(262144, 0);
  for (let i = 0; i < 3; i++) await pcap.write({ timeNs: 0n, data: big });
  const waiting = pcap.write({ timeNs: 0n, data: big });
  await assert.rejects(pcap.write({ timeNs: 0n, data: big }), /previous write/);
  await waiting;
  await pcap.close();
  await assert.rejects(pcap.write({ timeNs: 0n, data: big }), /after close/);
  assert.equal((await readAll(join(dir, 'misuse.pcap'))).length, 4);

  const ng = await createCaptureFileWriter(join(dir, 'misuse.pcapng'), 'pcapng');
  assert.equal(ng.addInterface(LINKTYPE_ETHERNET), 0);
  assert.equal(ng.addInterface(LINKTYPE_RAW), 1);
  await assert.rejects(ng.write({ interfaceId: 2, timeNs: 0n, data: bytes(1, 0) }), RangeError);
  await ng.close();
});
