// Properties of one TCP connection seen whole, from the guests' handshakes on: the two guests'
// SYN-ACKs (a connection the guest accepts, "passive") or SYNs (one the guest opens, "active")
// in any order with the data after them, TCP Fast Open data on the SYN or SYN-ACK, urgent data,
// and initial sequence numbers at 0, 1 and just below 2^32, in both sequence modes:
// - pre-translated (the default): the SVM's SYN or SYN-ACK carries its own ISN, every later SVM
//   segment the PVM's sequence numbers;
// - translate: every SVM segment in its own sequence space (and, opening a connection, possibly
//   from another port), the offset learned from the two handshakes.
//
// What each guest sends is generated from its stream (Fast Open data, then the rest) by one
// fast-check integer (`seed`, xorshift32) and a few shrinkable parameters, so a counterexample
// prints as a short record that replays exactly.
//
// Realistic schedules. Each guest's own segments keep their order (one tap per guest, on the same
// host): its handshake segment first, retransmissions after what they resend. Across guests:
// - Passive open: the client's SYN comes first (the guests answer it); then the two guests'
//   segments in ANY merge of their own orders, data included: either guest's data may precede the
//   other's SYN-ACK. Live, a guest sends data before the client's ACK of its SYN-ACK only when
//   the client's SYN carried Fast Open data (RFC 7413 §3: the server may answer at once from the
//   SYN-RECV socket), which the generator does in about half the cases; the comparator does not
//   and must not depend on that (captures replayed apart do the same). So an SVM segment may come
//   before the PVM's SYN-ACK (it waits in `early`), and a PVM segment before the SVM's SYN-ACK
//   (it is held), in either mode.
// - Active open: both guests' SYNs (and their retransmissions) first, in either order; then the
//   client's SYN-ACK; then the guests' ACK and data in any merge. A guest sends nothing after its
//   SYN but resends of it until it has the client's SYN-ACK (Fast Open data rides on the SYN
//   itself), and the client answers the PVM's SYN only once the comparator released it, which
//   it does only once both guests' SYNs are in and agree. (Translate mode needs that order for a
//   second reason: the client's SYN-ACK reaches the SVM only once the offset is known.)
// - Acknowledgement numbers: every guest segment acknowledges the client's SYN (and its Fast Open
//   data); the client sends nothing else, so the ACK gate never holds a frame for long.
// - Urgent data (RFC 6093, Linux): a segment carrying an urgent byte has URG set and points past
//   the last urgent byte it carries, or past a later one (a later urgent write overtook it before
//   it was sent); a segment before an urgent byte may point ahead at it. Retransmissions follow
//   the same rule (Linux keeps URG until the mark is acknowledged).
// - Both guests send the same handshake options (MSS, SACK-permitted, window scale, timestamps
//   on both or neither); their TSvals differ in translate mode only.
//
// Properties: identical output gives zero mismatches and releases every PVM frame exactly once
// in the PVM's order; a single difference (a byte flipped anywhere, Fast Open data on one side
// only, an urgent mark on one side only, a different MSS) is a mismatch, and no PVM frame
// carrying the affected byte is released before it (nor before the checkpoint is done), after
// which every PVM frame is released exactly once in order.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TCP_ACK, TCP_PSH, TCP_SYN, seqAdd, toHex, type ComparatorConfig, type MismatchReason } from '../../compare/index.js';
import { Twins } from '../support/twins.js';
import { merge, pick, rng, type Rng } from '../support/xorshift.js';

const TCP_URG = 0x20;
/** Limits no generated schedule trips: these properties are about comparing. */
const ROOMY: Partial<ComparatorConfig> = { maxQueueFrames: 1 << 20 };
const ACTIVE_PORT = 33000;
const REMOTE_PORT = 5432;
const CLIENT_TS = 424242;

// --- parameters ------------------------------------------------------------------------------

const isnArb = fc.oneof(
  fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32 - 2),
  fc.integer({ min: 2 ** 32 - 600, max: 2 ** 32 - 1 }),
  fc.integer({ min: 0, max: 2 ** 32 - 1 }),
);

interface Params {
  translate: boolean;
  /** The guest opens the connection (SYNs) rather than accepts it (SYN-ACKs). */
  active: boolean;
  pIsn: number;
  sIsn: number;
  clientIsn: number;
  /** Fast Open data on both guests' SYN (SYN-ACK), bytes. */
  tfo: number;
  /** Bytes after it. */
  body: number;
  /** Passive open: Fast Open data on the client's SYN. */
  clientTfo: number;
  /** Stream offsets of urgent bytes, taken modulo the body length (after the Fast Open data). */
  urgent: number[];
  timestamps: boolean;
  /** Translate mode, active open: the SVM opens from another port. */
  svmOtherPort: boolean;
  seed: number;
}

const paramsArb: fc.Arbitrary<Params> = fc.record({
  translate: fc.boolean(),
  active: fc.boolean(),
  pIsn: isnArb,
  sIsn: isnArb,
  clientIsn: isnArb,
  tfo: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
  body: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 300 }) }, { weight: 1, arbitrary: fc.integer({ min: 300, max: 4000 }) }),
  clientTfo: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 })),
  urgent: fc.array(fc.nat(), { maxLength: 3 }),
  timestamps: fc.boolean(),
  svmOtherPort: fc.boolean(),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
});

// --- one guest's output ----------------------------------------------------------------------

/** What one guest sends: its stream (stream offset 0 = ISN + 1) and how it numbers it. */
interface Guest {
  primary: boolean;
  isn: number;
  /** The sequence number its data is numbered from: its own ISN, or the PVM's (pre-translated SVM). */
  dataIsn: number;
  port: number;
  /** Fast Open data on its SYN (SYN-ACK), or null. */
  tfo: Uint8Array | null;
  /** The whole stream: the Fast Open data, then the rest. */
  stream: Uint8Array;
  /** Stream offsets of its urgent bytes, ascending, all past the Fast Open data. */
  urgent: number[];
  mss: number;
  tsBase: number;
}

/** One segment: the handshake segment, a pure ACK, or stream range [from, to) with its urgent pointer (-1: no URG). */
interface Seg {
  kind: 'syn' | 'ack' | 'data';
  from: number;
  to: number;
  urgentPointer: number;
}

interface Conn {
  p: Params;
  clientAck: number;
}

/** The urgent pointer of a segment over [from, to) (see the header), or -1. */
function urgentPointerOf(g: Guest, from: number, to: number, r: Rng): number {
  const inside = g.urgent.filter((u) => u >= from && u < to);
  const ahead = g.urgent.filter((u) => u >= to && u + 1 - from < 0xffff);
  let target = -1;
  if (inside.length > 0) {
    target = inside[inside.length - 1]!;
    const later = g.urgent.filter((u) => u > target && u + 1 - from < 0xffff);
    if (later.length > 0 && r(4) === 0) target = pick(r, later);
  } else if (ahead.length > 0 && r(3) === 0) {
    target = pick(r, ahead);
  }
  return target === -1 ? -1 : target + 1 - from;
}

/**
 * One guest's segments in its own order: the handshake segment (resent now and then), in active
 * open a pure ACK of the client's SYN-ACK, the rest of the stream cut at random, with resends
 * (other boundaries) and exact duplicates after what they resend. `hs` and `data` are the two
 * phases (active open: nothing of `data` before the client's SYN-ACK).
 */
function segmentsOf(g: Guest, active: boolean, r: Rng): { hs: Seg[]; data: Seg[] } {
  const start = g.tfo?.length ?? 0;
  const end = g.stream.length;
  const syn: Seg = { kind: 'syn', from: 0, to: start, urgentPointer: -1 };
  const hs: Seg[] = [syn];
  const data: Seg[] = [];
  if (active) data.push({ kind: 'ack', from: start, to: start, urgentPointer: -1 });
  const maxCut = pick(r, [1, 2, 5, 40, 536, 1448]);
  const exact = r(2) === 0;
  for (let at = start; at < end;) {
    const n = Math.min(end - at, exact ? maxCut : 1 + r(maxCut));
    data.push({ kind: 'data', from: at, to: at + n, urgentPointer: urgentPointerOf(g, at, at + n, r) });
    at += n;
  }
  const extras = r(3) === 0 ? 1 + r(3) : 0;
  for (let i = 0; i < extras; i++) {
    if (end > start && r(3) !== 0) {
      const from = start + r(end - start);
      const to = from + 1 + r(Math.min(end - from, 2 * maxCut));
      const resend: Seg = { kind: 'data', from, to, urgentPointer: urgentPointerOf(g, from, to, r) };
      // After the original segment carrying its last byte, anywhere later.
      const last = data.findIndex((s) => s.kind === 'data' && s.to >= to);
      data.splice(last + 1 + r(data.length - last), 0, resend);
    } else if (active) {
      hs.push(syn);
    } else {
      data.splice(r(data.length + 1), 0, syn);
    }
  }
  return { hs, data };
}

/** The frame for one segment of `g`. */
function frameOf(t: Twins, k: Conn, g: Guest, s: Seg, index: number): Uint8Array {
  const p = k.p;
  const ports = p.active ? { srcPort: g.port, dstPort: REMOTE_PORT } : {};
  const tsecr = p.active ? 0 : CLIENT_TS;
  if (s.kind === 'syn') {
    return t.out({
      ...ports,
      seq: g.isn,
      ack: p.active ? 0 : k.clientAck,
      flags: p.active ? TCP_SYN : TCP_SYN | TCP_ACK,
      options: { mss: g.mss, sackPermitted: true, windowScale: 7, ...(p.timestamps ? { timestamp: [g.tsBase, tsecr] as [number, number] } : {}) },
      ...(g.tfo !== null ? { payload: g.tfo } : {}),
    });
  }
  const payload = g.stream.subarray(s.from, s.to);
  let flags = TCP_ACK | (payload.length > 0 ? TCP_PSH : 0);
  if (s.urgentPointer !== -1) flags |= TCP_URG;
  return t.out({
    ...ports,
    seq: seqAdd(g.dataIsn, 1 + s.from),
    ack: k.clientAck,
    flags,
    payload,
    ...(s.urgentPointer !== -1 ? { urgentPointer: s.urgentPointer } : {}),
    ...(p.timestamps ? { options: { timestamp: [(g.tsBase + 1 + index) >>> 0, CLIENT_TS] as [number, number] } } : {}),
  });
}

// --- cases -----------------------------------------------------------------------------------

type Mutation =
  | { kind: 'none' }
  /** Flip one byte of one guest's stream at `at` (taken modulo the stream length). */
  | { kind: 'flip'; primary: boolean; at: number; xor: number }
  /** One guest sends the Fast Open data as ordinary data after its handshake (`moved`) or not at all. */
  | { kind: 'tfoOneSide'; primary: boolean; moved: boolean }
  /** One guest's last urgent byte is an ordinary byte (there is one: added if the case had none). */
  | { kind: 'urgentOneSide'; primary: boolean; at: number }
  /** One guest's SYN (SYN-ACK) announces MSS 536 instead of 1460. */
  | { kind: 'mss'; primary: boolean };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), primary: fc.boolean(), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('tfoOneSide' as const), primary: fc.boolean(), moved: fc.boolean() }),
  fc.record({ kind: fc.constant('urgentOneSide' as const), primary: fc.boolean(), at: fc.nat() }),
  fc.record({ kind: fc.constant('mss' as const), primary: fc.boolean() }),
);

interface Run {
  t: Twins;
  /** The PVM's frames in ingest order. */
  sent: Uint8Array[];
  /** Hex of every PVM frame carrying the affected byte (and the PVM's handshake when the difference is in it). */
  affected: Set<string>;
  /** The schedule, readable, for failure messages. */
  schedule: string[];
  expected: MismatchReason | null;
}

function hex(b: Uint8Array): string {
  return toHex(b, 0, b.length);
}

/** Builds both guests from `p` (and `m`), the schedule, and runs it on a fresh comparator. */
function run(p: Params, m: Mutation): Run {
  const r = rng(p.seed);
  const t = new Twins({ ...ROOMY, ...(p.translate ? { mode: 'translate' as const } : {}) });
  const clientTfo = p.active ? 0 : p.clientTfo;
  const clientAck = seqAdd(p.clientIsn, 1 + clientTfo);
  const k: Conn = { p, clientAck };
  const streamBytes = new Uint8Array(p.tfo + p.body);
  for (let i = 0; i < streamBytes.length; i++) streamBytes[i] = 0x61 + r(4);
  let urgent = [...new Set(p.body > 0 ? p.urgent.map((u) => p.tfo + (u % p.body)) : [])].sort((a, b) => a - b);
  if (m.kind === 'urgentOneSide' && urgent.length === 0) {
    if (p.body === 0) return skip();
    urgent = [p.tfo + (m.at % p.body)];
  }
  const mk = (primary: boolean): Guest => ({
    primary,
    isn: primary ? p.pIsn : p.sIsn,
    dataIsn: primary || !p.translate ? p.pIsn : p.sIsn,
    port: !primary && p.translate && p.active && p.svmOtherPort ? ACTIVE_PORT + 7 : ACTIVE_PORT,
    tfo: p.tfo > 0 ? streamBytes.slice(0, p.tfo) : null,
    stream: streamBytes.slice(),
    urgent: [...urgent],
    mss: 1460,
    tsBase: primary || !p.translate ? 1_000_000 : (p.seed * 7919) >>> 0,
  });
  const pg = mk(true);
  const sg = mk(false);
  let expected: MismatchReason | null = null;
  /** The affected stream offset (-1: the handshake itself). */
  let affectedAt = -2;
  if (m.kind === 'flip') {
    const g = m.primary ? pg : sg;
    if (g.stream.length === 0) return skip();
    const at = m.at % g.stream.length;
    g.stream[at]! ^= m.xor;
    if (g.tfo !== null && at < g.tfo.length) g.tfo[at]! ^= m.xor;
    expected = 'tcp.payload';
    affectedAt = at;
  } else if (m.kind === 'tfoOneSide') {
    const g = m.primary ? pg : sg;
    if (g.tfo === null) return skip();
    if (!m.moved) {
      g.stream = g.stream.slice(g.tfo.length);
      g.urgent = g.urgent.map((u) => u - g.tfo!.length);
    }
    g.tfo = null;
    expected = 'tcp.payload';
    affectedAt = 0;
  } else if (m.kind === 'urgentOneSide') {
    const g = m.primary ? pg : sg;
    affectedAt = g.urgent.pop()!;
    expected = 'tcp.urgent';
  } else if (m.kind === 'mss') {
    (m.primary ? pg : sg).mss = 536;
    expected = 'tcp.syn_options';
    affectedAt = -1;
  }

  const ps = segmentsOf(pg, p.active, r);
  const ss = segmentsOf(sg, p.active, r);
  type Ev = { g: Guest; s: Seg } | { client: Uint8Array; what: string };
  const ev = (g: Guest) => (s: Seg): Ev => ({ g, s });
  const q = pick(r, [0.1, 0.3, 0.5, 0.5, 0.7, 0.9]);
  let events: Ev[];
  const opts = { mss: 1460, sackPermitted: true, windowScale: 7, ...(p.timestamps ? { timestamp: [CLIENT_TS, 0] as [number, number] } : {}) };
  if (p.active) {
    const synAck = t.in({ srcPort: REMOTE_PORT, dstPort: ACTIVE_PORT, seq: p.clientIsn, ack: seqAdd(p.pIsn, 1 + (pg.tfo?.length ?? 0)), flags: TCP_SYN | TCP_ACK, options: { ...opts, ...(p.timestamps ? { timestamp: [CLIENT_TS, pg.tsBase] as [number, number] } : {}) } });
    events = [
      ...merge(ps.hs.map(ev(pg)), ss.hs.map(ev(sg)), q, r),
      { client: synAck, what: 'client SYN-ACK' },
      ...merge(ps.data.map(ev(pg)), ss.data.map(ev(sg)), q, r),
    ];
  } else {
    const syn = t.in({ seq: p.clientIsn, ack: 0, flags: TCP_SYN, options: opts, ...(clientTfo > 0 ? { payload: 'q'.repeat(clientTfo) } : {}) });
    events = [{ client: syn, what: `client SYN${clientTfo > 0 ? ` +${clientTfo} Fast Open bytes` : ''}` }, ...merge([...ps.hs, ...ps.data].map(ev(pg)), [...ss.hs, ...ss.data].map(ev(sg)), q, r)];
  }

  const sent: Uint8Array[] = [];
  const affected = new Set<string>();
  const schedule: string[] = [];
  const index = { p: 0, s: 0 };
  for (const e of events) {
    if ('client' in e) {
      schedule.push(e.what);
      t.client(e.client);
      continue;
    }
    const { g, s } = e;
    const frame = frameOf(t, k, g, s, g.primary ? index.p++ : index.s++);
    const name = `${g.primary ? 'P' : 'S'} ${s.kind === 'syn' ? (p.active ? 'SYN' : 'SYN-ACK') : s.kind === 'ack' ? 'ACK' : 'data'} [${s.from},${s.to})${s.urgentPointer !== -1 ? ` URG ${s.urgentPointer}` : ''}`;
    schedule.push(name);
    if (g.primary) {
      sent.push(frame);
      const carries = affectedAt >= 0 && s.from <= affectedAt && affectedAt < s.to;
      if (carries || (affectedAt === -1 && s.kind === 'syn') || (m.kind === 'tfoOneSide' && s.kind === 'syn')) affected.add(hex(frame));
      t.primary(frame);
    } else {
      t.secondary(frame);
    }
  }
  return { t, sent, affected, schedule, expected };
}

/** A mutation that does not apply to the parameters (fast-check is told to discard the case). */
class Skip extends Error {}
function skip(): never {
  throw new Skip();
}

function describeRun(p: Params, m: Mutation, x: Run): string {
  const mode = p.translate ? 'translate' : 'pre-translated';
  const acts = x.t.actions.filter((a) => a.kind !== 'drop' && a.kind !== 'deliver').map((a) =>
    a.kind === 'release' ? `release #${x.sent.findIndex((f) => hex(f) === hex(a.frame))}` : a.kind === 'mismatch' ? `mismatch ${a.mismatch.reason} @${a.mismatch.offset} ${a.mismatch.detail}` : `${a.kind} ${'reason' in a ? a.reason : ''}${'code' in a ? a.code : ''}`,
  );
  return `${mode} ${p.active ? 'active' : 'passive'} open, ${JSON.stringify(m)}\nschedule:\n  ${x.schedule.join('\n  ')}\nactions:\n  ${acts.join('\n  ')}`;
}

function releasedHex(t: Twins): string[] {
  return t.released().map(hex);
}

/** Runs `check` on a run of `p`, `m`; a mutation that does not apply is discarded. */
function property(p: Params, m: Mutation, check: (x: Run) => void): boolean {
  let x: Run;
  try {
    x = run(p, m);
  } catch (e) {
    if (e instanceof Skip) fc.pre(false);
    throw e;
  }
  try {
    check(x);
  } catch (e) {
    if (e instanceof assert.AssertionError) e.message += `\n${describeRun(p, m, x)}`;
    throw e;
  }
  return true;
}

const RUNS = { numRuns: 400, includeErrorInReport: true };

describe('TCP handshakes, Fast Open and urgent data in any interleaving', () => {
  test('identical output, however cut and interleaved: zero mismatches, every PVM frame released exactly once, in the PVM\'s order', () => {
    fc.assert(
      fc.property(paramsArb, (p) =>
        property(p, { kind: 'none' }, (x) => {
          assert.deepEqual(x.t.mismatchReasons(), [], 'no mismatch');
          assert.deepEqual(x.t.checkpoints(), [], 'no checkpoint');
          assert.deepEqual(releasedHex(x.t), x.sent.map(hex), 'every PVM frame released once, in order');
        })),
      RUNS,
    );
  });

  test('a single difference (a flipped byte, Fast Open data on one side, an urgent mark on one side, another MSS) is a mismatch; nothing carrying it is released before it or before the checkpoint', () => {
    fc.assert(
      fc.property(paramsArb, mutationArb, (p, m) =>
        property(p, m, (x) => {
          const actions = x.t.actions;
          const first = actions.findIndex((a) => a.kind === 'mismatch');
          assert.ok(first !== -1, 'the difference is reported');
          const fm = actions[first]!;
          assert.ok(fm.kind === 'mismatch');
          assert.equal(fm.mismatch.reason, x.expected, 'the first mismatch names the difference');
          assert.deepEqual(x.t.checkpoints(), [x.expected], 'one checkpoint requested');
          const early = actions.slice(0, first).flatMap((a) => (a.kind === 'release' ? [hex(a.frame)] : []));
          assert.ok(!early.some((h) => x.affected.has(h)), 'no frame carrying the affected byte released before the mismatch');
          const before = releasedHex(x.t);
          assert.ok(!before.some((h) => x.affected.has(h)), 'nor before the checkpoint is done');
          assert.deepEqual(before, x.sent.slice(0, before.length).map(hex), 'what was released is a prefix of the PVM\'s frames');
          x.t.checkpointDone();
          assert.deepEqual(releasedHex(x.t), x.sent.map(hex), 'after the checkpoint every PVM frame has been released exactly once, in order');
        })),
      RUNS,
    );
  });
});
