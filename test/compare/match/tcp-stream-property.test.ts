// TcpStreamMatch against an obviously correct slow model: each side's whole stream as an array
// of units (bytes, then -1 for FIN), the first difference found by walking both arrays, and what
// each side has delivered so far tracked unit by unit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TcpStreamMatch } from '../../../compare/match/tcp-stream.js';
import { jsBytesEqual } from '../../../compare/match/bytes-equal.js';
import { seqAdd } from '../../../compare/wire/seq.js';

const FIN = -1;

interface Segment {
  primary: boolean;
  at: number;
  length: number;
  fin: boolean;
}

/** The units of a stream: its bytes, then FIN when it has one. */
function units(bytes: Uint8Array, fin: boolean): number[] {
  return fin ? [...bytes, FIN] : [...bytes];
}

/** The model's first difference: the first index where both have a unit and they differ, else -1. */
function firstDifference(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Longest prefix both sides have delivered and that is equal. */
function agreedPrefix(a: number[], b: number[], aSeen: boolean[], bSeen: boolean[]): number {
  let i = 0;
  while (i < a.length && i < b.length && aSeen[i] && bSeen[i] && a[i] === b[i]) i++;
  return i;
}

/** xorshift32, so one fast-check integer drives the whole schedule. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return (n) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

/**
 * One side's segments: a random cut of the whole stream (every unit delivered at least once),
 * plus random retransmissions of sub-ranges and pure ACKs, in an order that is sometimes in
 * sequence, sometimes lightly and sometimes fully shuffled.
 */
function segmentsOf(primary: boolean, length: number, fin: boolean, r: (n: number) => number): Segment[] {
  const out: Segment[] = [];
  const maxCut = 1 + r(40);
  for (let at = 0; at < length || (fin && at === length && out.length === 0); ) {
    const n = Math.min(length - at, 1 + r(maxCut));
    out.push({ primary, at, length: n, fin: fin && at + n === length });
    at += n;
    if (n === 0) break;
  }
  if (length > 0 && fin && r(3) === 0) {
    out[out.length - 1]!.fin = false;
    out.push({ primary, at: length, length: 0, fin: true });
  }
  const extras = r(6);
  for (let i = 0; i < extras; i++) {
    if (r(4) === 0) {
      out.splice(r(out.length + 1), 0, { primary, at: r(length + 1), length: 0, fin: false });
      continue;
    }
    const from = r(length + 1);
    const to = from + r(length - from + 1);
    out.splice(r(out.length + 1), 0, { primary, at: from, length: to - from, fin: fin && to === length && r(2) === 0 });
  }
  const mode = r(3);
  if (mode === 1) {
    for (let i = 0; i + 1 < out.length; i++) if (r(4) === 0) [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
  } else if (mode === 2) {
    for (let i = out.length - 1; i > 0; i--) {
      const j = r(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
  }
  return out;
}

/** Merges the two sides' segment lists, keeping each side's own order. */
function interleave(a: Segment[], b: Segment[], r: (n: number) => number): Segment[] {
  const out: Segment[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && r(2) === 0)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

interface Run {
  m: TcpStreamMatch;
  /** verified after each segment, and the model's agreed prefix at that moment. */
  steps: { verified: number; agreed: number }[];
}

function run(isn: number, p: Uint8Array, pFin: boolean, s: Uint8Array, sFin: boolean, seed: number): Run {
  const r = rng(seed);
  const schedule = interleave(segmentsOf(true, p.length, pFin, r), segmentsOf(false, s.length, sFin, r), r);
  const pu = units(p, pFin);
  const su = units(s, sFin);
  const pSeen = pu.map(() => false);
  const sSeen = su.map(() => false);
  const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
  m.startAt(isn);
  const steps: Run['steps'] = [];
  for (const g of schedule) {
    const bytes = g.primary ? p : s;
    const seq = seqAdd(isn, 1 + g.at);
    const payload = bytes.subarray(g.at, g.at + g.length);
    const end = g.primary ? m.addPrimary(seq, payload, g.fin, false) : m.addSecondary(seq, payload, g.fin, false);
    assert.equal(end, g.at + g.length + (g.fin ? 1 : 0));
    const seen = g.primary ? pSeen : sSeen;
    for (let i = g.at; i < g.at + g.length + (g.fin ? 1 : 0); i++) seen[i] = true;
    steps.push({ verified: m.verified, agreed: agreedPrefix(pu, su, pSeen, sSeen) });
  }
  return { m, steps };
}

const isnArb = fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32 - 11), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
/** Streams from a three-letter alphabet, so inserted and shifted bytes often equal their neighbours. */
const streamArb = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 300 }),
  fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 0, maxLength: 120 }).map((a) => Uint8Array.from(a)),
);
const seedArb = fc.integer({ min: 1, max: 2 ** 32 - 1 });

test('tcp-stream property: identical streams, any cuts, order, duplicates and retransmissions, match fully', () => {
  fc.assert(
    fc.property(isnArb, streamArb, fc.boolean(), seedArb, (isn, bytes, fin, seed) => {
      const { m, steps } = run(isn, bytes, fin, bytes, fin, seed);
      assert.equal(m.mismatch, null, m.mismatch?.detail);
      assert.equal(m.verified, bytes.length + (fin ? 1 : 0));
      assert.equal(m.primaryBytesHeld + m.secondaryBytesHeld, 0);
      for (const st of steps) assert.ok(st.verified <= st.agreed, `verified ${st.verified} beyond agreed ${st.agreed}`);
    }),
    { numRuns: 1500 },
  );
});

test('tcp-stream property: a flipped, inserted or deleted secondary byte is found at the first difference', () => {
  const edit = fc.record({ kind: fc.constantFrom('flip', 'insert', 'delete'), where: fc.nat(), value: fc.integer({ min: 0, max: 255 }) });
  fc.assert(
    fc.property(isnArb, streamArb, fc.boolean(), edit, seedArb, (isn, bytes, fin, e, seed) => {
      let s: Uint8Array;
      if (e.kind === 'insert') {
        const k = e.where % (bytes.length + 1);
        s = Uint8Array.from([...bytes.subarray(0, k), e.value % 3, ...bytes.subarray(k)]);
      } else {
        fc.pre(bytes.length > 0);
        const k = e.where % bytes.length;
        s = e.kind === 'flip' ? bytes.slice() : Uint8Array.from([...bytes.subarray(0, k), ...bytes.subarray(k + 1)]);
        if (e.kind === 'flip') s[k] = bytes[k]! ^ (1 + (e.value % 255));
      }
      const pu = units(bytes, fin);
      const su = units(s, fin);
      const diff = firstDifference(pu, su);
      const { m, steps } = run(isn, bytes, fin, s, fin, seed);
      for (const st of steps) {
        assert.ok(st.verified <= st.agreed, `verified ${st.verified} beyond agreed ${st.agreed}`);
        if (diff !== -1) assert.ok(st.verified <= diff, `verified ${st.verified} passed the difference at ${diff}`);
      }
      if (diff === -1) {
        // Without FIN an appended byte is no difference yet: the primary has simply not sent it.
        assert.ok(!fin && pu.length !== su.length);
        assert.equal(m.mismatch, null);
        assert.equal(m.verified, Math.min(pu.length, su.length));
        return;
      }
      assert.ok(m.mismatch !== null, `difference at ${diff} not found`);
      assert.equal(m.mismatch.offset, diff);
      assert.equal(m.mismatch.position, seqAdd(isn, 1 + diff));
      assert.equal(m.mismatch.reason, pu[diff] === FIN || su[diff] === FIN ? 'tcp.length' : 'tcp.payload', m.mismatch.detail);
      assert.equal(m.verified, diff);
    }),
    { numRuns: 3000 },
  );
});

test('tcp-stream property: mid-stream pickup of identical streams never mismatches', () => {
  fc.assert(
    fc.property(isnArb, fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.nat(), seedArb, (base, bytes, pCut, sCut, seed) => {
      // Each side's capture begins somewhere in the stream; what follows is delivered in order.
      const r = rng(seed);
      const pFrom = pCut % bytes.length;
      const sFrom = sCut % bytes.length;
      const m = new TcpStreamMatch({ bytesEqual: jsBytesEqual });
      const feed = (primary: boolean, from: number): Segment[] => {
        const out: Segment[] = [];
        for (let at = from; at < bytes.length; ) {
          const n = Math.min(bytes.length - at, 1 + r(30));
          out.push({ primary, at, length: n, fin: false });
          at += n;
        }
        return out;
      };
      for (const g of interleave(feed(true, pFrom), feed(false, sFrom), r)) {
        const seq = seqAdd(base, g.at);
        const payload = bytes.subarray(g.at, g.at + g.length);
        if (g.primary) m.addPrimary(seq, payload, false, false);
        else m.addSecondary(seq, payload, false, false);
      }
      assert.equal(m.mismatch, null, m.mismatch?.detail);
      const start = Math.max(pFrom, sFrom);
      assert.equal(m.verified, m.relative(seqAdd(base, bytes.length)));
      assert.equal(m.unverifiedBytes, start - pFrom);
      assert.equal(m.comparedBytes, bytes.length - start);
    }),
    { numRuns: 1000 },
  );
});
