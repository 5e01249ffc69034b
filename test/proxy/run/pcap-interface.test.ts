/**
 * PcapInterface on a real veth pair between two network namespaces: frames injected on one end
 * are captured on the other intact and in order, a port never reads back its own injections, a
 * burst of thousands of frames gets through; a TCP frame over the MTU comes out of the kernel's
 * segmentation (the packet socket addon) as exactly the segments the JavaScript segmenter makes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import fc from 'fast-check';
import { NetnsLab } from '../../support/netns.js';
import { wholeFrame } from '../../../proxy/ports/pcap-interface.js';
import { TcpSegmenter } from '../../../proxy/ports/tcp-segmenter.js';
import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH } from '../../../compare/index.js';
import { emitTcp, type TcpFields } from '../../../compare/wire/emit.js';

const driver = fileURLToPath(new URL('./fixtures/pcap-driver.ts', import.meta.url));
const lab = new NetnsLab();
let a = '';
let b = '';

/** A driver process and a way to send it a command and read its one-line JSON answer. */
class Driver {
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(l);
      } else this.lines.push(l);
    });
  }
  next(timeoutMs = 10_000): Promise<Record<string, any>> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(JSON.parse(l));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('driver did not answer')), timeoutMs);
      this.waiting = (line) => {
        clearTimeout(t);
        resolve(JSON.parse(line));
      };
    });
  }
  async ask(cmd: string): Promise<Record<string, any>> {
    this.child.stdin!.write(`${cmd}\n`);
    return this.next();
  }
}

function startDriver(ns: string, ifname: string, mode: 'kernel' | 'js' | 'thread' = 'kernel'): Driver {
  const child = lab.spawn(ns, process.execPath, ['--import', 'tsx', driver, ifname, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Driver(child);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

before(() => {
  a = lab.ns('a');
  b = lab.ns('b');
  lab.veth({ ns: a, name: 'a0' }, { ns: b, name: 'b0' });
  lab.offloadsOff(a, 'a0');
  lab.offloadsOff(b, 'b0');
});
after(() => lab.cleanup());

test('frames injected on one veth end are captured on the other, intact and in order; own injections are not read back; the first frame is not lost', async () => {
  const da = startDriver(a, 'a0');
  const db = startDriver(b, 'b0');
  assert.deepEqual(await da.next(), { ready: true });
  assert.deepEqual(await db.next(), { ready: true });

  assert.deepEqual(await da.ask('send 5000 1'), { sent: 5000, errors: 0 });
  assert.deepEqual(await db.ask('send 3000 2'), { sent: 3000, errors: 0 });
  await until('all frames', async () => {
    const sb = await db.ask('stats');
    const sa = await da.ask('stats');
    return sb.tags['1']?.count === 5000 && sa.tags['2']?.count === 3000;
  });
  const sb = await db.ask('stats');
  const sa = await da.ask('stats');
  assert.deepEqual(sb.tags['1'], { count: 5000, next: 5000, inOrder: true, intact: true });
  assert.equal(sb.tags['2'], undefined, 'b read back its own injections');
  assert.deepEqual(sa.tags['2'], { count: 3000, next: 3000, inOrder: true, intact: true });
  assert.equal(sa.tags['1'], undefined, 'a read back its own injections');
  assert.equal(sb.truncated, 0);
  // The host's own output on b0 (ARP requests from its stack: their source is b0's MAC) is not captured.
  lab.run(b, 'ip', ['addr', 'add', '10.98.0.2/24', 'dev', 'b0']);
  await lab.exec(b, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '10.98.0.1']);
  assert.ok((await da.ask('stats')).ownArp > 0, "b's ARP requests did not reach a");
  const own = (await db.ask('stats')).foreign;
  assert.equal(own, 0, "the host stack's own frames on b0 were captured");
  assert.ok(sb.counters.rxPackets >= 5000, 'the interface counters are read from sysfs');

  da.child.stdin!.end('quit\n');
  db.child.stdin!.end('quit\n');
});

test('through the send thread, its ring small enough to wrap and fill: thousands of frames intact and in order, none read back', async () => {
  const da = startDriver(a, 'a0', 'thread');
  const db = startDriver(b, 'b0');
  assert.deepEqual(await da.next(), { ready: true });
  assert.deepEqual(await db.next(), { ready: true });
  const r = await da.ask('send 5000 3');
  assert.equal(r.sent, 5000);
  assert.ok(r.waits > 0, 'the 16 KiB ring never filled: the test does not exercise waiting for room');
  await until('all frames', async () => (await db.ask('stats')).tags['3']?.count === 5000);
  const sb = await db.ask('stats');
  assert.deepEqual(sb.tags['3'], { count: 5000, next: 5000, inOrder: true, intact: true });
  const sa = await da.ask('stats');
  assert.equal(sa.sentCount, 5000, 'the thread counts what it sent for the port');
  assert.equal(sa.tags['3'], undefined, 'a read back the thread\'s sends');
  da.child.stdin!.end('quit\n');
  db.child.stdin!.end('quit\n');
});

test('wholeFrame: an IP packet longer than the captured bytes is detected', () => {
  const f = new Uint8Array(60);
  f[12] = 0x08;
  f[13] = 0x00;
  f[16] = 0x00;
  f[17] = 46; // IPv4 total length 46: 14 + 46 = 60
  assert.equal(wholeFrame(f, 60), true);
  f[17] = 47;
  assert.equal(wholeFrame(f, 60), false);
  f[12] = 0x86;
  f[13] = 0xdd;
  f[18] = 0;
  f[19] = 6; // IPv6 payload length 6: 14 + 40 + 6 = 60
  assert.equal(wholeFrame(f, 60), true);
  f[19] = 7;
  assert.equal(wholeFrame(f, 60), false);
  f[12] = 0x08;
  f[13] = 0x06; // ARP: not IP, whole
  assert.equal(wholeFrame(f, 60), true);
});

/** Oversized TCP frames: a fixed few at the edges (sequence and IP ID wrap, IPv6, all the flags segmentation treats apart) and random ones. */
function oversizedFrames(): { frame: Uint8Array; tagged: boolean }[] {
  const base = { srcPort: 80, dstPort: 40000, ack: 777, window: 501 };
  const v4 = { src: '10.98.0.2', dst: '10.98.0.1' };
  const v6 = { src: 'fd98::2', dst: 'fd98::1' };
  const payload = (n: number, salt: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 13 + salt) & 0xff);
  const fixed: TcpFields[] = [
    { ...base, ...v4, seq: 0xffffff00, ipId: 0xfffe, flags: TCP_ACK | TCP_PSH, payload: payload(20_000, 1), options: { timestamp: [5, 6] } },
    { ...base, ...v6, seq: 1, flags: TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR | TCP_ECE, payload: payload(9000, 2) },
    { ...base, ...v4, seq: 1000, ipId: 7, flags: TCP_ACK, payload: payload(2 * 1460, 3) },
    { ...base, ...v4, seq: 1000, ipId: 7, flags: TCP_ACK | TCP_PSH, payload: payload(1461, 4), vlan: [5] },
  ];
  const random = fc.sample(fc.record({
    v6: fc.boolean(),
    size: fc.integer({ min: 1461, max: 65_000 }),
    seq: fc.integer({ min: 0, max: 0xffffffff }),
    ipId: fc.integer({ min: 0, max: 0xffff }),
    timestamps: fc.boolean(),
    flags: fc.subarray([TCP_FIN, TCP_PSH, TCP_CWR, TCP_ECE]).map((fs) => fs.reduce((x, y) => x | y, TCP_ACK)),
  }), { numRuns: 12, seed: 20261126 }).map((c): TcpFields => ({
    ...base, ...(c.v6 ? v6 : v4), seq: c.seq, ipId: c.ipId, flags: c.flags, payload: payload(c.size, c.seq & 0xff),
    ...(c.timestamps ? { options: { timestamp: [1, 2] as [number, number] } } : {}),
  }));
  return [...fixed, ...random].map((f) => ({ frame: emitTcp(f), tagged: f.vlan !== undefined }));
}

test('a TCP frame over the MTU comes out as the segments the JavaScript segmenter makes, cut by the kernel or by the port; the sender reads none back', async () => {
  const frames = oversizedFrames();
  const db = startDriver(b, 'b0');
  assert.deepEqual(await db.next(), { ready: true });
  for (const mode of ['kernel', 'js'] as const) {
    const da = startDriver(a, 'a0', mode);
    assert.deepEqual(await da.next(), { ready: true });
    await db.ask('tcp');
    let kernelCut = 0;
    let jsCut = 0;
    for (const { frame, tagged } of frames) {
      const expected: string[] = [];
      new TcpSegmenter().segment(frame, 1500, (seg) => expected.push(Buffer.from(seg).toString('hex')));
      assert.ok(expected.length >= 2);
      const r = await da.ask(`frame ${Buffer.from(frame).toString('hex')}`);
      assert.equal(r.sent, true, `${mode}: ${r.lastError}`);
      const byKernel = mode === 'kernel' && !tagged;
      kernelCut += byKernel ? 1 : 0;
      jsCut += byKernel ? 0 : 1;
      assert.deepEqual([r.kernelSegmented, r.segmented], [kernelCut, jsCut], `${mode}: who cut the frame (tagged: ${tagged})`);
      let got: string[] = [];
      await until(`${mode}: ${expected.length} segments of frame ${frames.findIndex((x) => x.frame === frame)} (got ${got.length})`, async () => {
        got = got.concat((await db.ask('tcp')).frames as string[]);
        return got.length >= expected.length;
      });
      await sleep(20);
      got = got.concat((await db.ask('tcp')).frames as string[]);
      assert.deepEqual(got, expected, `${mode}: segments of a ${frame.length}-byte frame differ`);
    }
    assert.deepEqual((await da.ask('tcp')).frames, [], `${mode}: the sender captured its own segments`);
    da.child.stdin!.end('quit\n');
    await new Promise((resolve) => da.child.once('exit', resolve));
  }
  db.child.stdin!.end('quit\n');
});

/** The driver's frame of `size` bytes with tag `tag` and sequence 0, in hex. */
function taggedFrame(tag: number, size: number): string {
  const frame = Buffer.alloc(size);
  frame.fill(0xff, 0, 6);
  Buffer.from(`02000000000${tag.toString(16)}`, 'hex').copy(frame, 6);
  frame.writeUInt16BE(0x88b5, 12);
  frame[14] = tag;
  for (let i = 19; i < frame.length; i++) frame[i] = i & 0xff;
  return frame.toString('hex');
}

test('an MTU raised while capturing reopens the capture, so frames up to the new MTU arrive whole; with offloads on, its slots hold them already', async () => {
  const mtu = (value: number): void => {
    lab.run(a, 'ip', ['link', 'set', 'a0', 'mtu', String(value)]);
    lab.run(b, 'ip', ['link', 'set', 'b0', 'mtu', String(value)]);
  };
  /** Drivers on a0 and b0: raises both MTUs to 9000, runs `before`, sends an 8000-byte frame of `tag` from a0, puts the MTUs back; b0's stats. */
  const raised = async (tag: number, before: (db: Driver) => Promise<void>): Promise<Record<string, any>> => {
    const da = startDriver(a, 'a0');
    const db = startDriver(b, 'b0');
    assert.deepEqual(await da.next(), { ready: true });
    assert.deepEqual(await db.next(), { ready: true });
    try {
      mtu(9000);
      await before(db);
      assert.equal((await da.ask(`frame ${taggedFrame(tag, 8000)}`)).sent, true);
      await until(`the 8000-byte frame ${tag}`, async () => (await db.ask('stats')).tags[String(tag)]?.count === 1 || (await db.ask('stats')).truncated > 0);
      return await db.ask('stats');
    } finally {
      mtu(1500);
      da.child.stdin!.end('quit\n');
      db.child.stdin!.end('quit\n');
    }
  };
  // libpcap sized b0's slots by its MTU, 1500, when the handle was opened.
  const reopened = await raised(4, async (db) => {
    await until('the reopen', async () => (await db.ask('stats')).reopens === 1);
  });
  assert.ok(reopened.states.includes('up: MTU raised from 1500 to 9000: capture reopened for the longer frames'), reopened.states.join('; '));
  assert.deepEqual([reopened.truncated, reopened.tags['4']], [0, { count: 1, next: 1, inOrder: true, intact: true }]);
  // GRO on (as with --keep-offloads or --gro): libpcap's slots hold 64 KiB frames, and a reopen
  // would only lose what is in the ring.
  lab.run(b, 'ethtool', ['-K', 'b0', 'gro', 'on']);
  try {
    const kept = await raised(5, async () => sleep(500)); // five watchdog periods
    assert.deepEqual([kept.reopens, kept.truncated, kept.tags['5']], [0, 0, { count: 1, next: 1, inOrder: true, intact: true }]);
  } finally {
    lab.offloadsOff(b, 'b0');
  }
});
