// The replay's input feed (proxy/replay/feed.ts), read in this thread and in the worker thread:
// both must hand over exactly the frames a plain model of merging and routing gives, in the same
// order, with the same sides and times, and fail with the same errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, TCP_ACK, type Side } from '../../../compare/index.js';
import { emitTcp } from '../../../compare/wire/emit.js';
import { createCaptureFileWriter, readCaptureFile } from '../../../proxy/ports/capture-file.js';
import { SIDES, readFeed, type FeedInput } from '../../../proxy/replay/feed.js';
import { runReplay } from '../../../proxy/replay/run-replay.js';
import { parseMac } from '../../../proxy/replay/guest.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-feed-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE_NS = 1_767_225_600_000_000_000n;
const GUEST_MAC = '52:54:00:12:34:56';
const CLIENT_MAC = '52:54:00:ab:cd:ef';

/** A frame from the guest (output) or from the client, `size` payload bytes, marked with `n`. */
function frame(fromGuest: boolean, n: number, size: number): Uint8Array {
  const payload = new Uint8Array(size).fill(n & 0xff);
  return fromGuest
    ? emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq: n, ack: 1, flags: TCP_ACK, srcMac: GUEST_MAC, dstMac: CLIENT_MAC, payload })
    : emitTcp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80, seq: 1, ack: n, flags: TCP_ACK, srcMac: CLIENT_MAC, dstMac: GUEST_MAC, payload });
}

/** A 1.5 MB frame from the guest: more than a batch holds (the feed takes whatever a capture can). */
function jumbo(): Uint8Array {
  const f = new Uint8Array(1_500_000).fill(0x5a);
  f.set(frame(true, 0, 0).subarray(0, 14));
  return f;
}

/**
 * Writes a capture of `count` frames: every fifth from the client, sizes cycling up to 1448 bytes
 * of payload and, in pcapng, one frame of 1.5 MB in the middle; times `step` ns apart from `t0`,
 * with some equal to the one before (the merge must keep file order then).
 */
async function capture(name: string, format: 'pcap' | 'pcapng', count: number, t0: bigint, step: bigint, linkType = LINKTYPE_ETHERNET): Promise<string> {
  const path = join(dir, name);
  const w = await createCaptureFileWriter(path, format);
  w.addInterface(linkType, format === 'pcapng' ? { snaplen: 0 } : {}); // pcapng: no length limit
  let t = t0;
  for (let n = 0; n < count; n++) {
    const data = n === count >> 1 && format === 'pcapng' ? jumbo() : frame(n % 5 !== 4, n, [0, 10, 600, 1448][n % 4]!);
    await w.write({ timeNs: t, data: linkType === LINKTYPE_RAW ? data.subarray(14) : data });
    if (n % 7 !== 3) t += step;
  }
  await w.close();
  return path;
}

interface Fed {
  side: Side;
  offsetNs: number;
  bytes: string;
}

/** What the feed must give, worked out the plain way: every frame read, routed, then a stable sort by time. */
async function model(input: FeedInput): Promise<Fed[]> {
  const all: { t: bigint; from: number; n: number; side: Side; data: Uint8Array }[] = [];
  const clientGiven = input.roles.includes('client');
  for (let from = 0; from < input.paths.length; from++) {
    let n = 0;
    for await (const f of readCaptureFile(input.paths[from]!)) {
      const role = input.roles[from]!;
      const raw = f.linkType === LINKTYPE_RAW;
      const data = raw ? new Uint8Array([...new Uint8Array(12), 0x08, 0x00, ...f.data]) : f.data;
      const fromGuest = raw || Buffer.from(data.subarray(6, 12)).equals(Buffer.from(input.guestMac!));
      let side: Side | undefined = role;
      if (role !== 'client' && !fromGuest) side = role === 'primary' && !clientGiven ? 'client' : undefined;
      if (side !== undefined) all.push({ t: f.timeNs, from, n: n, side, data });
      n++;
    }
  }
  all.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.from - b.from || a.n - b.n));
  const base = [...all].sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0))[0]!.t;
  return all.map((f) => ({ side: f.side, offsetNs: Number(f.t - base), bytes: Buffer.from(f.data).toString('hex') }));
}

async function fed(input: FeedInput, worker: boolean): Promise<{ frames: Fed[]; skipped: unknown; batches: number }> {
  const frames: Fed[] = [];
  const feed = readFeed(input, 0, { worker });
  let batches = 0;
  for (;;) {
    const r = await feed.next();
    if (r.done) return { frames, skipped: r.value, batches };
    batches++;
    const b = r.value;
    let start = 0;
    for (let i = 0; i < b.count; i++) {
      frames.push({ side: SIDES[b.sides[i]!]!, offsetNs: b.offsetsNs[i]!, bytes: Buffer.from(b.bytes.subarray(start, b.ends[i]!)).toString('hex') });
      start = b.ends[i]!;
    }
  }
}

test('feed: in this thread and in the worker, the frames a plain merge and routing gives, in order, with sides and times', async () => {
  const primary = await capture('p.pcapng', 'pcapng', 9000, BASE_NS, 1000n);
  const secondary = await capture('s.pcap', 'pcap', 9000, BASE_NS + 500n, 1000n);
  const input: FeedInput = { paths: [primary, secondary], roles: ['primary', 'secondary'], guestMac: parseMac(GUEST_MAC) };
  const expected = await model(input);
  for (const worker of [false, true]) {
    const got = await fed(input, worker);
    assert.ok(got.batches > 2, `several batches (${got.batches})`);
    assert.equal(got.frames.length, expected.length, `worker ${worker}`);
    assert.deepEqual(got.frames, expected, `worker ${worker}`);
    assert.deepEqual(got.skipped, { secondaryInput: 1800, primaryInput: 0 }, `worker ${worker}`);
  }
});

test('feed: a separate client capture, raw IP, takes the client side and the guests\' copies are skipped', async () => {
  const primary = await capture('p2.pcapng', 'pcapng', 3000, BASE_NS + 10n, 3000n);
  const secondary = await capture('s2.pcapng', 'pcapng', 3000, BASE_NS + 20n, 3000n);
  const client = await capture('c2.pcap', 'pcap', 3000, BASE_NS, 3000n, LINKTYPE_RAW);
  const input: FeedInput = { paths: [primary, secondary, client], roles: ['primary', 'secondary', 'client'], guestMac: parseMac(GUEST_MAC) };
  const expected = await model(input);
  assert.equal(expected.filter((f) => f.side === 'client').length, 3000);
  for (const worker of [false, true]) {
    const got = await fed(input, worker);
    assert.deepEqual(got.frames, expected, `worker ${worker}`);
    assert.deepEqual(got.skipped, { secondaryInput: 600, primaryInput: 600 }, `worker ${worker}`);
  }
});

/** The error a feed of `paths` ends with, as class name and message. */
async function failure(paths: string[], worker: boolean): Promise<string> {
  try {
    await fed({ paths, roles: ['primary', 'secondary'], guestMac: undefined }, worker);
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
  return 'no error';
}

test('feed: a truncated, a missing and an unreplayable capture fail the same way in the worker as in this thread', async () => {
  const good = await capture('good.pcapng', 'pcapng', 50, BASE_NS, 1000n);
  const truncated = join(dir, 'truncated.pcapng');
  const bytes = readFileSync(good);
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 7));
  const wifi = join(dir, 'wifi.pcap');
  const w = await createCaptureFileWriter(wifi, 'pcap');
  w.addInterface(105); // IEEE 802.11
  await w.write({ timeNs: BASE_NS, data: new Uint8Array(40) });
  await w.close();
  const cases: [string[], RegExp][] = [
    [[good, truncated], /^CaptureFormatError: .*truncated\.pcapng: .* at byte \d+ \(capture\.truncated\)$/],
    [[good, join(dir, 'missing.pcap')], /^CaptureFileError: .*missing\.pcap: cannot open capture file: .*ENOENT.*\(capture\.io\)$/],
    [[good, wifi], /^ReplayInputError: .*wifi\.pcap: frame at byte 24: link type .*cannot be replayed/],
  ];
  for (const [paths, pattern] of cases) {
    const inThread = await failure(paths, false);
    assert.match(inThread, pattern);
    assert.equal(await failure(paths, true), inThread);
  }
});

test('feed: a replay through the worker reports exactly what one read in this thread does', async () => {
  const options = {
    primary: 'captures/linux-keepalive/primary.pcapng', secondary: 'captures/linux-keepalive/secondary.pcapng', mode: 'translate' as const,
    checkpointMs: 30, compareTimeoutMs: 3000, scanIntervalMs: 1000, maxQueueFrames: 1024, compareHeaders: [],
  };
  const inThread = await runReplay({ ...options, worker: false });
  const viaWorker = await runReplay({ ...options, worker: true });
  assert.ok(inThread.report.primaryFrames > 100);
  assert.deepEqual(viaWorker.report, inThread.report);
});
