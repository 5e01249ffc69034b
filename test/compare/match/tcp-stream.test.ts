// TcpStreamMatch: Suricata-style overlap tables (every table at four initial sequence numbers,
// two of them wrapping through zero), then mid-stream pickup, checkpoint reset, limits, ownership.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpStreamMatch } from '../../../compare/match/tcp-stream.js';
import { jsBytesEqual, type BytesEqual } from '../../../compare/match/bytes-equal.js';
import type { MismatchReason } from '../../../compare/events.js';
import type { Mismatch } from '../../../compare/match/mismatch.js';
import { seqAdd } from '../../../compare/wire/seq.js';

const ISNS = [0, 1, 2 ** 32 - 1, 2 ** 32 - 11];

/** The reference stream: the byte at relative offset i is 'a' + i % 26. */
function stream(at: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = 97 + ((at + i) % 26);
  return b;
}

/**
 * One segment: side, relative seq, payload (a length means the reference stream's bytes there, a
 * string means exactly those bytes), flags ('F' FIN, 'R' RST), and optionally `verified` expected
 * right after it.
 */
type Row = [side: 'P' | 'S', at: number, payload: number | string, flags?: string, verified?: number];

interface Case {
  name: string;
  rows: Row[];
  verified: number;
  /** Expected mismatch: reason and relative offset of the first differing unit. */
  mismatch?: [MismatchReason, number];
}

const mss = (side: 'P' | 'S', from: number, count: number, size: number): Row[] =>
  Array.from({ length: count }, (_, i): Row => [side, from + i * size, size]);

const CASES: Case[] = [
  { name: 'same segmentation', rows: [['P', 0, 1448], ['S', 0, 1448, '', 1448]], verified: 1448 },
  { name: 'secondary first', rows: [['S', 0, 1448, '', 0], ['P', 0, 1448, '', 1448]], verified: 1448 },
  { name: '1x2896 against 2x1448', rows: [['P', 0, 2896], ['S', 0, 1448, '', 1448], ['S', 1448, 1448, '', 2896]], verified: 2896 },
  { name: '2x1448 against 1x2896', rows: [['P', 0, 1448], ['P', 1448, 1448], ['S', 0, 2896, '', 2896]], verified: 2896 },
  { name: '1x1448 against 2x724, secondary first', rows: [['S', 0, 724], ['S', 724, 724], ['P', 0, 1448, '', 1448]], verified: 1448 },
  { name: '64 KB segment against 45 MSS segments', rows: [['P', 0, 65160], ...mss('S', 0, 45, 1448)], verified: 65160 },
  { name: '45 MSS segments against one 64 KB segment', rows: [...mss('P', 0, 45, 1448), ['S', 0, 65160, '', 65160]], verified: 65160 },
  {
    name: 'retransmission of verified bytes is ignored',
    rows: [['P', 0, 100], ['S', 0, 100, '', 100], ['P', 0, 100, '', 100], ['S', 0, 100, '', 100], ['P', 40, 20, '', 100]],
    verified: 100,
  },
  {
    name: 'retransmission straddling the verified point: only the new part is compared',
    rows: [['P', 0, 100], ['S', 0, 100], ['P', 50, 100, '', 100], ['S', 80, 70, '', 150]],
    verified: 150,
  },
  {
    name: 'verified bytes are not kept: a resend that differs below verified is not checked',
    rows: [['P', 0, 'abcd'], ['S', 0, 'abcd'], ['P', 2, 'XXef', '', 4], ['S', 4, 'ef', '', 6]],
    verified: 6,
  },
  { name: 'out of order on the primary', rows: [['P', 100, 100], ['P', 0, 100], ['S', 0, 200, '', 200]], verified: 200 },
  { name: 'out of order on the secondary', rows: [['S', 100, 100], ['P', 0, 200, '', 0], ['S', 0, 100, '', 200]], verified: 200 },
  {
    name: 'out of order on both sides, crossing',
    rows: [['P', 20, 10], ['S', 10, 10], ['P', 0, 10], ['S', 20, 10, '', 0], ['S', 0, 10, '', 10], ['P', 10, 10, '', 30]],
    verified: 30,
  },
  {
    name: 'overlapping segments with consistent bytes',
    rows: [['P', 0, 10], ['P', 5, 10], ['P', 3, 20], ['S', 10, 20], ['S', 0, 12, '', 23], ['S', 25, 10], ['P', 20, 15, '', 35]],
    verified: 35,
  },
  { name: 'pure ACKs change nothing', rows: [['P', 0, 0], ['S', 0, 0], ['P', 10, 10], ['S', 50, 0, '', 0], ['P', 0, 10], ['S', 0, 20, '', 20]], verified: 20 },
  { name: 'FIN with data on both sides', rows: [['P', 0, 10, 'F', 0], ['S', 0, 10, 'F', 11]], verified: 11 },
  { name: 'FIN with data against a bare FIN', rows: [['P', 0, 10, 'F'], ['S', 0, 10, '', 10], ['S', 10, 0, 'F', 11]], verified: 11 },
  { name: 'retransmitted FIN below verified', rows: [['P', 0, 10, 'F'], ['S', 0, 10, 'F'], ['P', 0, 10, 'F', 11], ['S', 10, 0, 'F', 11]], verified: 11 },
  { name: 'FIN arriving before the data it ends', rows: [['S', 10, 0, 'F'], ['P', 5, 5, 'F'], ['S', 0, 10, '', 0], ['P', 0, 5, '', 11]], verified: 11 },
  { name: 'FIN only on the primary: held, no mismatch yet', rows: [['P', 0, 10, 'F'], ['S', 0, 10, '', 10]], verified: 10 },
  { name: 'RST on both sides at the same point', rows: [['P', 0, 10], ['P', 10, 0, 'R'], ['S', 0, 10, '', 10], ['S', 10, 0, 'R', 11]], verified: 11 },
  { name: 'RST below the end counts at the end (seq from an ACK)', rows: [['P', 0, 10], ['P', 10, 0, 'R'], ['S', 0, 10], ['S', 4, 0, 'R', 11]], verified: 11 },
  { name: 'RST payload is ignored', rows: [['P', 0, 10], ['S', 0, 10], ['P', 10, 'diag', 'R'], ['S', 10, 'other', 'R', 11]], verified: 11 },
  { name: 'FIN then RST on both sides', rows: [['P', 0, 5, 'F'], ['P', 6, 0, 'R'], ['S', 0, 5, 'F', 6], ['S', 5, 0, 'R', 7]], verified: 7 },
  { name: 'RST only on the primary: held', rows: [['P', 0, 10], ['P', 10, 0, 'R'], ['S', 0, 10, '', 10]], verified: 10 },
  // Detection.
  { name: 'one differing byte', rows: [['P', 0, 'abcXe'], ['S', 0, 'abcde', '', 3]], verified: 3, mismatch: ['tcp.payload', 3] },
  { name: 'one differing byte, secondary first', rows: [['S', 0, 'abcde'], ['P', 0, 'abcdX', '', 4]], verified: 4, mismatch: ['tcp.payload', 4] },
  { name: 'differing byte in the second MSS of a 2896 segment', rows: [['P', 0, 2896], ['S', 0, 1448], ['S', 1448, 'X', '', 1448]], verified: 1448, mismatch: ['tcp.payload', 1448] },
  {
    name: 'a difference out of order is reported only when it is the first one',
    rows: [['P', 10, 10], ['S', 10, 'kXmnopqrst', '', 0], ['P', 0, 10, '', 0], ['S', 0, 10, '', 11]],
    verified: 11,
    mismatch: ['tcp.payload', 11],
  },
  {
    name: 'an earlier difference arriving later wins',
    rows: [['P', 10, 10], ['S', 10, 'kXmnopqrst'], ['P', 0, 10], ['S', 0, 'abcdeXghij', '', 5]],
    verified: 5,
    mismatch: ['tcp.payload', 5],
  },
  { name: 'missing bytes: FIN where the primary has data', rows: [['P', 0, 20], ['S', 0, 10, 'F', 10]], verified: 10, mismatch: ['tcp.length', 10] },
  { name: 'extra bytes: data where the primary sent FIN', rows: [['P', 0, 10, 'F'], ['S', 0, 20, '', 10]], verified: 10, mismatch: ['tcp.length', 10] },
  { name: 'FINs at different points: the earlier one faces data', rows: [['P', 0, 10, 'F'], ['S', 12, 0, 'F', 0], ['S', 0, 10, '', 10]], verified: 10, mismatch: ['tcp.length', 10] },
  { name: 'FIN against data not yet arrived', rows: [['S', 0, 10], ['S', 15, 5], ['P', 0, 10, 'F', 10]], verified: 10, mismatch: ['tcp.length', 10] },
  { name: 'FIN against RST', rows: [['P', 0, 10, 'F'], ['S', 0, 10], ['S', 10, 0, 'R', 10]], verified: 10, mismatch: ['tcp.fin_rst', 10] },
  { name: 'RST against data', rows: [['P', 0, 10], ['P', 10, 0, 'R'], ['S', 0, 20, '', 10]], verified: 10, mismatch: ['tcp.fin_rst', 10] },
  { name: 'RST against data, secondary resets', rows: [['S', 0, 5], ['S', 5, 0, 'R'], ['P', 0, 10, '', 5]], verified: 5, mismatch: ['tcp.fin_rst', 5] },
  { name: 'RSTs at different points', rows: [['P', 0, 10], ['P', 10, 0, 'R'], ['S', 0, 4], ['S', 4, 0, 'R', 4]], verified: 4, mismatch: ['tcp.fin_rst', 4] },
  { name: 'primary resends different bytes still buffered', rows: [['P', 0, 10], ['P', 5, 'XXXXX']], verified: 0, mismatch: ['tcp.retransmit_inconsistent', 5] },
  { name: 'secondary resends different bytes still buffered', rows: [['S', 10, 10], ['S', 12, 'mZ']], verified: 0, mismatch: ['tcp.retransmit_inconsistent', 13] },
  { name: 'inconsistent resend overlapping two buffered chunks', rows: [['P', 0, 5], ['P', 10, 5], ['S', 20, 1], ['P', 3, 'defghijkZm']], verified: 0, mismatch: ['tcp.retransmit_inconsistent', 11] },
  { name: 'data past its own FIN', rows: [['P', 0, 10, 'F'], ['P', 10, 5]], verified: 0, mismatch: ['tcp.length', 10] },
  { name: 'FIN below data already sent', rows: [['S', 0, 10], ['S', 0, 5, 'F']], verified: 0, mismatch: ['tcp.length', 5] },
  { name: 'a second FIN elsewhere', rows: [['S', 0, 10, 'F'], ['S', 0, 8, 'F']], verified: 0, mismatch: ['tcp.fin_rst', 8] },
  { name: 'data after its own RST', rows: [['P', 0, 10], ['P', 10, 0, 'R'], ['P', 10, 5]], verified: 0, mismatch: ['tcp.fin_rst', 10] },
  { name: 'nothing is compared after a mismatch', rows: [['P', 0, 'aXc'], ['S', 0, 'abc', '', 1], ['P', 3, 10], ['S', 3, 10, '', 1]], verified: 1, mismatch: ['tcp.payload', 1] },
];

/** The mismatch, typed afresh (an earlier `assert.equal(m.mismatch, null)` narrows the field to null). */
function found(m: TcpStreamMatch): Mismatch | null {
  return m.mismatch;
}

function payloadOf(row: Row): Uint8Array {
  return typeof row[2] === 'number' ? stream(row[1], row[2]) : new TextEncoder().encode(row[2]);
}

function runCase(c: Case, isn: number): TcpStreamMatch {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(isn);
  for (const [i, row] of c.rows.entries()) {
    const [side, at, , flags = '', verified] = row;
    const payload = payloadOf(row);
    const fin = flags.includes('F');
    const rst = flags.includes('R');
    const seq = seqAdd(isn, 1 + at);
    const end = side === 'P' ? m.addPrimary(seq, payload, fin, rst) : m.addSecondary(seq, payload, fin, rst);
    if (!rst) assert.equal(end, at + payload.length + (fin ? 1 : 0), `row ${i}: returned end`);
    if (verified !== undefined) assert.equal(m.verified, verified, `row ${i}: verified`);
  }
  return m;
}

for (const c of CASES) {
  test(`tcp-stream table: ${c.name}`, () => {
    for (const isn of ISNS) {
      const m = runCase(c, isn);
      const where = `isn ${isn}`;
      assert.equal(m.verified, c.verified, `${where}: verified`);
      if (c.mismatch === undefined) {
        assert.equal(m.mismatch, null, `${where}: ${m.mismatch?.detail}`);
        continue;
      }
      const [reason, offset] = c.mismatch;
      assert.ok(m.mismatch !== null, `${where}: mismatch expected`);
      assert.equal(m.mismatch.reason, reason, `${where}: ${m.mismatch.detail}`);
      assert.equal(m.mismatch.offset, offset, `${where}: offset`);
      assert.equal(m.mismatch.position, seqAdd(isn, 1 + offset), `${where}: position`);
      assert.ok(m.mismatch.detail.length > 0);
      // The secondary's bytes stay (a resynchronisation compares them with the primary's next ones).
      assert.equal(m.primaryBytesHeld, 0, 'nothing of the primary stays buffered after a mismatch');
    }
  });
}

test('tcp-stream: the table wraps through zero for the last two ISNs', () => {
  // Guards the table runner itself: the streams really cross 2^32 at these ISNs.
  assert.equal(seqAdd(2 ** 32 - 11, 1 + 65160) < 2 ** 32 - 11, true);
  assert.equal(seqAdd(2 ** 32 - 1, 1), 0);
});

test('tcp-stream: mismatch explanation carries both hex windows', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(1000);
  m.addPrimary(1001, new TextEncoder().encode('0123456789abcdefghijXklmnop'), false, false);
  m.addSecondary(1001, new TextEncoder().encode('0123456789abcdefghijYklmnop'), false, false);
  const x = m.mismatch!;
  assert.equal(x.reason, 'tcp.payload');
  assert.equal(x.offset, 20);
  assert.equal(x.position, 1021);
  // 16 bytes before the difference and 16 from it (or up to the end).
  assert.equal(x.primaryHex, Buffer.from('456789abcdefghijXklmnop').toString('hex'));
  assert.equal(x.secondaryHex, Buffer.from('456789abcdefghijYklmnop').toString('hex'));
  assert.match(x.detail, /offset 20/);
});

test('tcp-stream: FIN against data shows the data side only', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(0);
  m.addPrimary(1, stream(0, 4), true, false);
  m.addSecondary(1, stream(0, 6), false, false);
  assert.equal(m.mismatch?.reason, 'tcp.length');
  assert.equal(m.mismatch.primaryHex, '');
  assert.equal(m.mismatch.secondaryHex, Buffer.from('abcdef').toString('hex'));
});

test('tcp-stream: a FIN segment is releasable only after the secondary FIN', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(2 ** 32 - 3);
  const end = m.addPrimary(2 ** 32 - 2, stream(0, 5), true, false);
  assert.equal(end, 6);
  m.addSecondary(2 ** 32 - 2, stream(0, 5), false, false);
  assert.ok(m.verified < end);
  m.addSecondary(3, new Uint8Array(0), true, false);
  assert.ok(m.verified >= end);
});

test('tcp-stream: an RST end is its point plus one, released only after the secondary RST', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(100);
  m.addPrimary(101, stream(0, 8), false, false);
  const end = m.addPrimary(101, new Uint8Array(0), false, true); // seq below snd_nxt: counts at 8
  assert.equal(end, 9);
  assert.equal(m.addPrimary(150, new Uint8Array(0), false, true), 9, 'later RSTs of the same side are duplicates');
  m.addSecondary(101, stream(0, 8), false, false);
  assert.equal(m.verified, 8);
  assert.equal(m.addSecondary(109, new Uint8Array(0), false, true), 9);
  assert.equal(m.verified, 9);
  assert.equal(m.mismatch, null);
});

test('tcp-stream: Ethernet padding after the payload view is never read', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(7);
  // A 60-byte frame whose 6-byte payload is followed by 6 bytes of non-zero padding.
  const frame = new Uint8Array(60).fill(0xee);
  frame.set(stream(0, 6), 48);
  m.addPrimary(8, frame.subarray(48, 54), false, false);
  m.addSecondary(8, stream(0, 9), false, false);
  assert.equal(m.verified, 6);
  assert.equal(m.mismatch, null);
  m.addPrimary(14, stream(6, 3), false, false);
  assert.equal(m.verified, 9);
  assert.equal(m.mismatch, null);
});

test('tcp-stream: relative offsets across the wrap', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  assert.equal(m.relative(123), 0, 'no base yet');
  m.startAt(2 ** 32 - 11);
  assert.equal(m.relative(2 ** 32 - 10), 0);
  assert.equal(m.relative(0), 10);
  assert.equal(m.relative(2 ** 32 - 11), -1, 'the SYN itself');
  // Sequence numbers wrap after 10 bytes; offsets keep growing.
  const chunk = stream(0, 26 * 2000);
  let seq = 2 ** 32 - 10;
  let rel = 0;
  for (let i = 0; i < 90; i++) {
    m.addPrimary(seq, chunk, false, false);
    m.addSecondary(seq, chunk, false, false);
    seq = seqAdd(seq, chunk.length);
    rel += chunk.length;
  }
  assert.equal(m.verified, rel);
  assert.equal(m.relative(seq), rel);
  assert.equal(m.mismatch, null);
});

test('tcp-stream: after more than 2^32 bytes, offsets pass 2^32 and a bad byte is found at its sequence number', () => {
  const bufferEqual: BytesEqual = (a, aAt, b, bAt, n) => Buffer.prototype.compare.call(a, b, bAt, bAt + n, aAt, aAt + n) === 0;
  const m = new TcpStreamMatch({ bytesEqual: bufferEqual, maxBytesPerSide: 1 << 25 });
  const isn = 2 ** 32 - 11;
  m.startAt(isn);
  const chunk = new Uint8Array(1 << 24);
  let seq = seqAdd(isn, 1);
  for (let i = 0; i < 257; i++) {
    m.addPrimary(seq, chunk, false, false);
    m.addSecondary(seq, chunk, false, false);
    seq = seqAdd(seq, chunk.length);
  }
  const bad = new Uint8Array(10);
  bad[7] = 1;
  m.addSecondary(seq, bad, false, false);
  m.addPrimary(seq, new Uint8Array(10), false, false);
  assert.equal(m.mismatch?.reason, 'tcp.payload');
  assert.equal(m.mismatch.offset, 257 * (1 << 24) + 7);
  assert.equal(m.mismatch.position, seqAdd(seq, 7));
});

// Mid-stream pickup.

test('tcp-stream mid-stream: same start on both sides compares everything', () => {
  for (const base of ISNS) {
    const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
    assert.equal(m.addPrimary(base, stream(0, 100), false, false), 100);
    assert.equal(m.verified, 0, 'nothing verified before the secondary is seen');
    assert.equal(m.started, false);
    m.addSecondary(base, stream(0, 100), false, false);
    assert.equal(m.started, true);
    assert.equal(m.verified, 100);
    assert.equal(m.unverifiedBytes, 0);
  }
});

test('tcp-stream mid-stream: the secondary starts later, primary bytes below count as unverified', () => {
  for (const base of ISNS) {
    const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
    m.addPrimary(base, stream(0, 100), false, false);
    m.addPrimary(seqAdd(base, 100), stream(100, 100), false, false);
    m.addSecondary(seqAdd(base, 150), stream(150, 60), false, false);
    assert.equal(m.verified, 200);
    assert.equal(m.unverifiedBytes, 150);
    assert.equal(m.secondaryBytesHeld, 10);
    assert.equal(m.primaryBytesHeld, 0);
    m.addPrimary(seqAdd(base, 200), stream(200, 5), false, false);
    m.addPrimary(seqAdd(base, 205), new TextEncoder().encode('X'), false, false);
    assert.equal(m.mismatch?.reason, 'tcp.payload');
    assert.equal(m.mismatch.offset, 205);
    assert.equal(m.mismatch.position, seqAdd(base, 205));
  }
});

test('tcp-stream mid-stream: the secondary starts earlier, its bytes below the primary start are dropped', () => {
  for (const base of ISNS) {
    const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
    m.addSecondary(base, stream(0, 50), false, false);
    assert.equal(m.secondaryBytesHeld, 50);
    const end = m.addPrimary(seqAdd(base, 30), stream(30, 40), false, false);
    assert.equal(end, 70, 'offsets are relative to the first segment seen (the secondary here)');
    assert.equal(m.verified, 50);
    assert.equal(m.secondaryBytesHeld, 0);
    assert.equal(m.unverifiedBytes, 0);
    m.addSecondary(seqAdd(base, 50), stream(50, 20), true, false);
    m.addPrimary(seqAdd(base, 70), new Uint8Array(0), true, false);
    assert.equal(m.verified, 71);
    assert.equal(m.mismatch, null);
  }
});

test('tcp-stream mid-stream: the primary below the secondary start is released at once', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.addSecondary(5000, stream(0, 10), false, false);
  const end = m.addPrimary(4990, stream(0, 10), false, false);
  assert.equal(end, 0);
  assert.ok(end <= m.verified);
  assert.equal(m.unverifiedBytes, 10);
  assert.equal(m.relative(4990), -10);
});

test('tcp-stream mid-stream: differences right at the start are still caught', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.addPrimary(77, new TextEncoder().encode('hello'), false, false);
  m.addSecondary(77, new TextEncoder().encode('jello'), false, false);
  assert.equal(m.mismatch?.reason, 'tcp.payload');
  assert.equal(m.mismatch.position, 77);
});

// Reset after a checkpoint.

test('tcp-stream reset: buffered bytes and the mismatch are forgotten, comparison continues from the primary end', () => {
  for (const isn of ISNS) {
    const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
    m.startAt(isn);
    const at = (rel: number): number => seqAdd(isn, 1 + rel);
    m.addPrimary(at(0), stream(0, 100), false, false);
    m.addSecondary(at(0), new TextEncoder().encode('X'), false, false);
    assert.equal(m.mismatch?.reason, 'tcp.payload');
    m.addPrimary(at(100), stream(100, 50), false, false);
    m.addSecondary(at(300), stream(300, 50), false, false);
    m.resetAfterCheckpoint();
    assert.equal(m.mismatch, null);
    assert.equal(m.verified, 150);
    assert.equal(m.primaryBytesHeld + m.secondaryBytesHeld, 0);
    // The old secondary's bytes are gone: a retransmission below 150 is ignored.
    m.addSecondary(at(120), new TextEncoder().encode('garbage!'), false, false);
    assert.equal(m.mismatch, null);
    m.addPrimary(at(150), stream(150, 20), false, false);
    m.addSecondary(at(150), stream(150, 20), false, false);
    assert.equal(m.verified, 170);
    m.addSecondary(at(170), new TextEncoder().encode('vwxyz'), false, false);
    m.addPrimary(at(170), new TextEncoder().encode('vwQyz'), false, false);
    const x = found(m);
    assert.equal(x?.reason, 'tcp.payload');
    assert.equal(x.offset, 172);
    assert.equal(x.position, at(172));
  }
});

test('tcp-stream reset: a primary FIN carries over to the secondary', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(9);
  m.addPrimary(10, stream(0, 10), true, false);
  m.resetAfterCheckpoint();
  assert.equal(m.verified, 11);
  m.addSecondary(10, stream(0, 10), true, false);
  assert.equal(m.mismatch, null, 'the secondary retransmitting the same FIN is fine');
  m.addSecondary(21, stream(11, 3), false, false);
  assert.equal(found(m)?.reason, 'tcp.length', 'data past the inherited FIN');
});

test('tcp-stream reset: with no primary seen the matcher starts over', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.addSecondary(500, stream(0, 10), false, false);
  m.resetAfterCheckpoint();
  assert.equal(m.secondaryBytesHeld, 0);
  assert.equal(m.started, false);
  m.addPrimary(9000, stream(0, 10), false, false);
  m.addSecondary(9000, stream(0, 10), false, false);
  assert.equal(m.verified, 10);
  assert.equal(m.mismatch, null);
});

test('tcp-stream reset: the secondary behind when the checkpoint happened', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(0);
  m.addPrimary(1, stream(0, 1000), false, false);
  m.addSecondary(1, stream(0, 200), false, false);
  assert.equal(m.verified, 200);
  m.resetAfterCheckpoint();
  assert.equal(m.verified, 1000);
  assert.equal(m.started, true);
  m.addSecondary(1001, stream(1000, 10), false, false);
  m.addPrimary(1001, stream(1000, 10), false, false);
  assert.equal(m.verified, 1010);
});

// Limits and ownership.

test('tcp-stream limit: over maxBytesPerSide is reported, not thrown, and bounded', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual, maxBytesPerSide: 3000 });
  m.startAt(0);
  m.addPrimary(1, stream(0, 1448), false, false);
  m.addPrimary(1449, stream(1448, 1448), false, false);
  assert.equal(m.overLimit, false);
  m.addPrimary(2897, stream(2896, 1448), false, false);
  assert.equal(m.overLimit, true);
  assert.ok(m.primaryBytesHeld <= 3000);
  m.resetAfterCheckpoint();
  assert.equal(m.overLimit, false);
  const s = new TcpStreamMatch({ bytesEqual: jsBytesEqual, maxBytesPerSide: 100 });
  s.startAt(0);
  s.addSecondary(1, stream(0, 101), false, false);
  assert.equal(s.overLimit, true);
  assert.equal(s.secondaryBytesHeld, 0);
});

test('tcp-stream limit: bytes compared on arrival do not count', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual, maxBytesPerSide: 2000 });
  m.startAt(0);
  for (let i = 0; i < 100; i++) {
    m.addSecondary(1 + i * 1448, stream(i * 1448, 1448), false, false);
    m.addPrimary(1 + i * 1448, stream(i * 1448, 1448), false, false);
  }
  assert.equal(m.overLimit, false);
  assert.equal(m.verified, 144800);
});

test('tcp-stream: bad settings throw at construction', () => {
  assert.throws(() => new TcpStreamMatch({ bytesEqual: jsBytesEqual, maxBytesPerSide: 0 }), RangeError);
  assert.throws(() => new TcpStreamMatch({ bytesEqual: jsBytesEqual, maxBytesPerSide: 1.5 }), RangeError);
});

test('tcp-stream: startAt after a segment is ignored', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.addPrimary(1000, stream(0, 10), false, false);
  m.startAt(5);
  assert.equal(m.relative(1000), 0);
  assert.equal(m.started, false);
});

test('tcp-stream ownership: secondary bytes are copied, primary bytes are viewed', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(0);
  const s = stream(0, 10);
  m.addSecondary(1, s, false, false);
  s.fill(0); // the caller reuses its buffer at once
  m.addPrimary(1, stream(0, 10), false, false);
  assert.equal(m.mismatch, null);
  assert.equal(m.verified, 10);

  const p = stream(10, 10);
  m.addPrimary(11, p, false, false);
  assert.equal(m.primaryBytesHeld, 10);
  p[3] = 0; // breaks the caller's promise: the matcher sees the change, proving it kept a view
  m.addSecondary(11, stream(10, 10), false, false);
  assert.equal(found(m)?.offset, 13);
});

test('tcp-stream ownership: secondaryCovers', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  assert.equal(m.secondaryCovers(1, 10, false), false, 'not comparing yet');
  m.startAt(2 ** 32 - 1);
  m.addSecondary(0, stream(0, 100), true, false);
  assert.equal(m.secondaryCovers(0, 100, false), true);
  assert.equal(m.secondaryCovers(0, 100, true), true, 'the FIN is covered too');
  assert.equal(m.secondaryCovers(0, 101, false), false);
  assert.equal(m.secondaryCovers(10, 20, false), false, 'would leave a gap on the primary');
  m.addPrimary(0, stream(0, 40), false, false);
  assert.equal(m.primaryBytesHeld, 0, 'compared on arrival, nothing kept');
  assert.equal(m.secondaryCovers(30, 20, false), true, 'straddling the verified point');
  assert.equal(m.secondaryCovers(0, 40, false), true, 'fully verified');
  assert.equal(m.secondaryCovers(40, 61, false), false);
  const p = stream(40, 60);
  m.addPrimary(40, p, true, false);
  p.fill(0);
  assert.equal(m.verified, 101);
  assert.equal(m.primaryBytesHeld, 0);
});

test('tcp-stream ownership: no covered primary byte stays referenced even when the primary has later chunks', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(0);
  m.addPrimary(51, stream(50, 10), false, false); // out of order, kept as a view
  m.addSecondary(1, stream(0, 80), false, false);
  assert.equal(m.verified, 0);
  assert.equal(m.secondaryCovers(1, 70, false), true);
  m.addPrimary(1, stream(0, 70), false, false);
  assert.equal(m.verified, 70);
  assert.equal(m.primaryBytesHeld, 0);
  assert.equal(m.secondaryBytesHeld, 10);
});

test('tcp-stream: counters', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(0);
  m.addPrimary(1, stream(0, 30), false, false);
  m.addSecondary(1, stream(0, 10), false, false);
  m.addSecondary(21, stream(20, 5), false, false);
  assert.equal(m.comparedBytes, 10);
  assert.equal(m.primaryBytesHeld, 20);
  assert.equal(m.secondaryBytesHeld, 5);
  assert.equal(m.primaryEnd, 30);
  m.addSecondary(11, stream(10, 10), false, false);
  assert.equal(m.comparedBytes, 25);
  assert.equal(m.primaryBytesHeld, 5);
  assert.equal(m.secondaryBytesHeld, 0);
});

test('tcp-stream: trimMemory keeps buffered bytes and frees only an empty arena', () => {
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(0);
  m.addSecondary(1, stream(0, 10), false, false);
  m.trimMemory();
  assert.equal(m.secondaryBytesHeld, 10);
  m.addPrimary(1, stream(0, 10), false, false);
  assert.equal(m.verified, 10);
  m.trimMemory();
  m.addSecondary(11, stream(10, 10), false, false);
  m.addPrimary(11, stream(10, 9), false, false);
  m.addPrimary(20, new TextEncoder().encode('X'), false, false);
  assert.equal(found(m)?.offset, 19);
});

test('tcp-stream: hex windows show stream bytes only, never the headers in front of a payload', () => {
  // Payloads given as ranges of whole frames (as the comparator does): the window before the
  // difference must stop at the payload's start, on the side held in the store and on the other.
  const frame = (header: string, payload: string): Uint8Array => new TextEncoder().encode(header + payload);
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(1000);
  m.addPrimary(1001, frame('HEADERBYTES-', 'Xbcdef'), false, false, 12, 6);
  m.addSecondary(1001, frame('OTHERHEADER-', 'Ybcdef'), false, false, 12, 6);
  const x = m.mismatch!;
  assert.equal(x.reason, 'tcp.payload');
  assert.equal(x.primaryHex, Buffer.from('Xbcdef').toString('hex'));
  assert.equal(x.secondaryHex, Buffer.from('Ybcdef').toString('hex'));
});
