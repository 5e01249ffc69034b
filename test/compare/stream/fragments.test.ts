// FragmentReassembler: IPv4 and IPv6 fragments cut from emitUdp frames, fed in any order, must
// give back exactly the unfragmented frame, and every fragment frame exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AfterCheckpoint, FragmentReassembler, Reassembled, Rejected, type FragmentOutcome } from '../../../compare/stream/fragments.js';
import { readU16, writeU16 } from '../../../compare/wire/bytes.js';
import { pseudoSumV4, pseudoSumV6 } from '../../../compare/wire/checksum.js';
import { emitTcp, emitUdp } from '../../../compare/wire/emit.js';
import { Frame, decodeFrame } from '../../../compare/wire/frame.js';
import { Ipv4View } from '../../../compare/wire/ipv4.js';
import { Ipv6View } from '../../../compare/wire/ipv6.js';
import { UdpView } from '../../../compare/wire/udp.js';
import { fragment, layout, split } from '../../support/fragments.js';
import { decoded } from '../../support/decoded.js';

const HOP_BY_HOP = 0;
const ROUTING = 43;
const DEST_OPTS = 60;

function bytesOf(n: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
}

interface Whole {
  /** Default 4. */
  version?: 4 | 6;
  ipId?: number;
  vlan?: number[];
  /** IPv6 only: 8-byte extension headers between the fixed header and UDP. */
  extensions?: number[];
}

/** An unfragmented UDP frame (IPv4 with DF clear, so its header is exactly what reassembly must rebuild). */
function udp(payload: Uint8Array, w: Whole = {}): Uint8Array {
  const v6 = w.version === 6;
  const plain = emitUdp({
    src: v6 ? 'fd00::1' : '10.0.0.1',
    dst: v6 ? 'fd00::2' : '10.0.0.2',
    srcPort: 5353,
    dstPort: 53,
    ipId: w.ipId ?? 0x1234,
    dontFragment: false,
    payload,
    vlan: w.vlan ?? [],
  });
  const types = w.extensions ?? [];
  if (types.length === 0) return plain;
  const ipAt = 14 + 4 * (w.vlan?.length ?? 0);
  const out = new Uint8Array(plain.length + 8 * types.length);
  out.set(plain.subarray(0, ipAt + 40));
  out.set(plain.subarray(ipAt + 40), ipAt + 40 + 8 * types.length);
  let field = ipAt + 6;
  types.forEach((type, i) => {
    out[field] = type;
    field = ipAt + 40 + 8 * i;
    // Hop-by-Hop and Destination Options: one PadN option; Routing: type 0, segments left 0.
    if (type !== ROUTING) out.set([1, 4], field + 2);
  });
  out[field] = 17;
  writeU16(out, ipAt + 4, readU16(plain, ipAt + 4) + 8 * types.length);
  return out;
}

/** The payload bytes [from, to) of `whole` (after the headers every fragment repeats). */
function slice(whole: Uint8Array, from: number, to: number, unfragmentable = 0): Uint8Array {
  const l = layout(whole, unfragmentable);
  return whole.slice(l.keep + from, l.keep + to);
}

/**
 * A fragment as the comparator would hand it over. decodeFrame (compare/wire/frame.ts) refuses
 * the first fragment of a UDP datagram: it checks the UDP length field, which counts the whole
 * datagram, against this fragment's share (`decode.udp.length_exceeds_ip_payload`). For that
 * case only, the Frame is built from its views, without a transport layer.
 */
function asFrame(bytes: Uint8Array): Frame {
  const f = decodeFrame(bytes);
  assert.ok(f instanceof Frame, String(f));
  return f;
}

/** Adds every frame at `now`; returns the outcomes of the last add, asserting the others gave none. */
function feed(r: FragmentReassembler, frames: Uint8Array[], now = 0): readonly FragmentOutcome[] {
  frames.slice(0, -1).forEach((b, i) => assert.deepEqual(r.add(asFrame(b), now), [], `fragment ${i}`));
  return r.add(asFrame(frames[frames.length - 1]!), now);
}

function only<T>(outcomes: readonly FragmentOutcome[], type: new (...args: never[]) => T): T {
  assert.equal(outcomes.length, 1, `one outcome expected, got ${outcomes.length}`);
  assert.ok(outcomes[0] instanceof type, `a ${type.name} expected, got ${outcomes[0]!.constructor.name}`);
  return outcomes[0];
}

/** Identity, not content: the frames must be the very objects passed in. */
function assertSameFrames(actual: Uint8Array[], expected: Uint8Array[]): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => assert.ok(a === expected[i], `frame ${i} is not the object passed in`));
}

/** The reassembled frame decodes to an unfragmented UDP datagram carrying `payload`, with valid checksums. */
function assertUdp(bytes: Uint8Array, payload: Uint8Array): void {
  const f = decoded(bytes);
  assert.equal(f.isFragment, false);
  assert.ok(f.transport instanceof UdpView);
  assert.deepEqual(bytes.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength), payload);
  const ip = f.network;
  const length = f.transport.length;
  if (ip instanceof Ipv4View) {
    assert.ok(ip.verifyChecksum(), 'IPv4 header checksum');
    assert.ok(f.transport.verifyChecksum(pseudoSumV4(bytes, ip.offset, 17, length)), 'UDP checksum');
  } else {
    assert.ok(ip instanceof Ipv6View);
    assert.ok(f.transport.verifyChecksum(pseudoSumV6(bytes, ip.offset, 17, length)), 'UDP checksum');
  }
}

test('fragments: IPv4 in order', () => {
  const payload = bytesOf(100);
  const whole = udp(payload);
  const frames = split(whole, [32, 64]);
  const r = new FragmentReassembler();
  const done = only(feed(r, frames), Reassembled);
  assert.deepEqual(done.bytes, whole);
  assertSameFrames(done.fragments, frames);
  assert.equal(done.key, '4 167772161 167772162 17 4660');
  assertUdp(done.bytes, payload);
  assert.equal(r.pendingDatagrams, 0);
  assert.equal(r.pendingBytes, 0);
});

test('fragments: IPv4 in reverse, the pending counts follow', () => {
  const whole = udp(bytesOf(100));
  const frames = split(whole, [32, 64]).reverse();
  const r = new FragmentReassembler();
  assert.deepEqual(r.add(asFrame(frames[0]!), 0), []);
  assert.deepEqual(r.add(asFrame(frames[1]!), 0), []);
  assert.equal(r.pendingDatagrams, 1);
  assert.equal(r.pendingBytes, frames[0]!.length + frames[1]!.length);
  const done = only(r.add(asFrame(frames[2]!), 0), Reassembled);
  assert.deepEqual(done.bytes, whole);
  assertSameFrames(done.fragments, frames);
  assert.equal(r.pendingBytes, 0);
});

test('fragments: IPv6 with the Fragment header after Hop-by-Hop and Routing, Destination Options fragmentable', () => {
  const payload = bytesOf(90);
  const whole = udp(payload, { version: 6, extensions: [HOP_BY_HOP, ROUTING, DEST_OPTS] });
  const frames = split(whole, [16, 56], { unfragmentable: 2 });
  const first = asFrame(frames[0]!).network;
  assert.ok(first instanceof Ipv6View && first.fragmentHeaderOffset === 14 + 40 + 16);
  const r = new FragmentReassembler();
  const done = only(feed(r, [frames[1]!, frames[2]!, frames[0]!]), Reassembled);
  assert.deepEqual(done.bytes, whole, 'Fragment header removed, Routing next header back to Destination Options');
  const ip = decoded(done.bytes).network;
  assert.ok(ip instanceof Ipv6View && !ip.hasFragmentHeader && ip.extensionCount === 3);
  assertUdp(done.bytes, payload);
});

test('fragments: IPv6 with the Fragment header right after the fixed header', () => {
  const payload = bytesOf(50, 3);
  const whole = udp(payload, { version: 6 });
  const frames = split(whole, [24]);
  const r = new FragmentReassembler();
  const done = only(feed(r, frames), Reassembled);
  assert.deepEqual(done.bytes, whole);
  assert.equal(done.key, '6 4244635648 0 0 1 4244635648 0 0 2 912559');
  assertUdp(done.bytes, payload);
});

test('fragments: Ethernet padding on short fragments is never payload', () => {
  const payload = bytesOf(20);
  for (const version of [4, 6] as const) {
    const whole = udp(payload, { version });
    // IPv4: the last fragment carries 12 bytes, a 46-byte frame padded to 60 (and so does the first).
    const frames = split(whole, [16], { padTo: version === 4 ? 60 : 90 });
    assert.ok(frames.every((f) => f.at(-1) === 0xee), 'every fragment is padded');
    const r = new FragmentReassembler();
    const done = only(feed(r, frames.reverse()), Reassembled);
    assert.deepEqual(done.bytes, whole, `IPv${version}`);
    assertUdp(done.bytes, payload);
  }
});

test('fragments: VLAN tags are kept', () => {
  const payload = bytesOf(64);
  for (const version of [4, 6] as const) {
    const whole = udp(payload, { version, vlan: [42, 7] });
    const r = new FragmentReassembler();
    const done = only(feed(r, split(whole, [8, 40]).reverse()), Reassembled);
    assert.deepEqual(done.bytes, whole);
    const f = decoded(done.bytes);
    assert.equal(f.link?.tagCount, 2);
    assert.equal(f.link?.vlanId(0), 42);
    assertUdp(done.bytes, payload);
  }
});

test('fragments: identical IPv4 duplicates and overlaps reassemble; all frames come back', () => {
  const whole = udp(bytesOf(40));
  const a = fragment(whole, 0, slice(whole, 0, 16), true);
  const b = fragment(whole, 8, slice(whole, 8, 24), true);
  const c = fragment(whole, 16, slice(whole, 16, 48), false);
  const frames = [b, a, a.slice(), c];
  const r = new FragmentReassembler();
  const done = only(feed(r, frames), Reassembled);
  assert.deepEqual(done.bytes, whole);
  assertSameFrames(done.fragments, frames);
});

test('fragments: an IPv4 overlap carrying different bytes rejects the datagram', () => {
  const whole = udp(bytesOf(40));
  const a = fragment(whole, 0, slice(whole, 0, 16), true);
  const changedInOverlap = slice(whole, 8, 24);
  changedInOverlap[2]! ^= 1;
  const b = fragment(whole, 8, changedInOverlap, true);
  const r = new FragmentReassembler();
  r.add(asFrame(a), 0);
  const rejected = only(r.add(asFrame(b), 0), Rejected);
  assert.equal(rejected.code, 'fragment.overlap_inconsistent');
  assertSameFrames(rejected.fragments, [a, b]);
  assert.equal(r.pendingDatagrams, 0);
  assert.equal(r.pendingBytes, 0);

  // A changed byte where nothing is stored yet is kept; the later overlap is compared with it.
  const changedLater = slice(whole, 8, 24);
  changedLater[12]! ^= 1;
  const b2 = fragment(whole, 8, changedLater, true);
  const c = fragment(whole, 16, slice(whole, 16, 48), false);
  assert.deepEqual(r.add(asFrame(a), 0), []);
  assert.deepEqual(r.add(asFrame(b2), 0), []);
  const late = only(r.add(asFrame(c), 0), Rejected);
  assert.equal(late.code, 'fragment.overlap_inconsistent');
  assertSameFrames(late.fragments, [a, b2, c]);
});

test('fragments: any IPv6 overlap rejects the datagram (RFC 5722), an exact duplicate does not', () => {
  const whole = udp(bytesOf(40), { version: 6 });
  const a = fragment(whole, 0, slice(whole, 0, 16), true);
  const identicalOverlap = fragment(whole, 8, slice(whole, 8, 24), true);
  const r = new FragmentReassembler();
  r.add(asFrame(a), 0);
  const rejected = only(r.add(asFrame(identicalOverlap), 0), Rejected);
  assert.equal(rejected.code, 'fragment.overlap_ipv6');
  assertSameFrames(rejected.fragments, [a, identicalOverlap]);

  const changed = slice(whole, 0, 16);
  changed[15]! ^= 0x80;
  r.add(asFrame(a), 0);
  assert.equal(only(r.add(asFrame(fragment(whole, 0, changed, true)), 0), Rejected).code, 'fragment.overlap_ipv6', 'same range, other bytes');

  const rest = fragment(whole, 16, slice(whole, 16, 48), false);
  const duplicate = a.slice();
  const done = only(feed(r, [a, duplicate, rest]), Reassembled);
  assert.deepEqual(done.bytes, whole);
  assertSameFrames(done.fragments, [a, duplicate, rest]);
});

test('fragments: final fragments that disagree on the end, or bytes beyond it', () => {
  const whole = udp(bytesOf(40));
  const last = fragment(whole, 16, slice(whole, 16, 48), false);
  const cases: [string, Uint8Array][] = [
    ['another end', fragment(whole, 16, bytesOf(40), false)],
    ['bytes beyond the end', fragment(whole, 48, bytesOf(8), true)],
  ];
  for (const [name, other] of cases) {
    for (const order of [[last, other], [other, last]]) {
      const r = new FragmentReassembler();
      const rejected = only(feed(r, order), Rejected);
      assert.equal(rejected.code, 'fragment.end_inconsistent', name);
      assertSameFrames(rejected.fragments, order);
    }
  }
});

test('fragments: empty fragments and non-final lengths that are not a multiple of 8', () => {
  const whole = udp(bytesOf(40));
  for (const bad of [fragment(whole, 8, slice(whole, 8, 20), true), fragment(whole, 16, new Uint8Array(0), true)]) {
    const r = new FragmentReassembler();
    const alone = only(r.add(asFrame(bad), 0), Rejected);
    assert.equal(alone.code, 'fragment.bad_length');
    assertSameFrames(alone.fragments, [bad]);
    assert.equal(r.pendingDatagrams, 0);
    const first = fragment(whole, 0, slice(whole, 0, 8), true);
    const withPending = only(feed(r, [first, bad]), Rejected);
    assert.equal(withPending.code, 'fragment.bad_length');
    assertSameFrames(withPending.fragments, [first, bad]);
    assert.equal(r.pendingBytes, 0);
  }
});

test('fragments: a datagram over 65535 bytes is rejected, per fragment and at completion', () => {
  const whole = udp(bytesOf(40));
  const r = new FragmentReassembler();
  const first = fragment(whole, 0, slice(whole, 0, 8), true);
  // 20 header bytes + offset 65528 + 16 = 65564: the "ping of death".
  const deadly = fragment(whole, 65528, bytesOf(16), false);
  assert.equal(only(r.add(asFrame(deadly), 0), Rejected).code, 'fragment.too_big');
  const rejected = only(feed(r, [first, deadly]), Rejected);
  assert.equal(rejected.code, 'fragment.too_big');
  assertSameFrames(rejected.fragments, [first, deadly]);

  // IPv6: each fragment fits, but the first one's Hop-by-Hop header makes the whole 65536 bytes.
  const withHop = udp(bytesOf(8), { version: 6, extensions: [HOP_BY_HOP] });
  const head = new Uint8Array(65512);
  writeU16(head, 4, 8);
  const big = fragment(withHop, 0, head, true, { unfragmentable: 1 });
  const tail = fragment(udp(bytesOf(8), { version: 6 }), 65512, bytesOf(16), false);
  const tooBig = only(feed(r, [big, tail]), Rejected);
  assert.equal(tooBig.code, 'fragment.too_big');
  assertSameFrames(tooBig.fragments, [big, tail]);
  assert.equal(r.pendingDatagrams, 0);
});

test('fragments: datagram identity is (src, dst, protocol, id) for IPv4 and (src, dst, id) for IPv6', () => {
  const udpWhole = udp(bytesOf(40), { ipId: 7 });
  const tcpWhole = emitTcp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, seq: 1, ack: 0, flags: 0x18, ipId: 7, dontFragment: false, payload: bytesOf(40, 9) });
  const otherId = udp(bytesOf(40, 5), { ipId: 8 });
  const v6 = udp(bytesOf(40, 6), { version: 6 });
  const [u0, u1] = split(udpWhole, [16]);
  const [t0, t1] = split(tcpWhole, [24]);
  const [o0, o1] = split(otherId, [16]);
  const [s0, s1] = split(v6, [16], { id: 1 });
  const [x0, x1] = split(v6, [16], { id: 2 });
  const r = new FragmentReassembler();
  for (const f of [u0, t0, o0, s0, x1]) assert.deepEqual(r.add(asFrame(f!), 0), []);
  assert.equal(r.pendingDatagrams, 5);
  assert.deepEqual(only(r.add(asFrame(t1!), 0), Reassembled).bytes, tcpWhole);
  assert.deepEqual(only(r.add(asFrame(x0!), 0), Reassembled).bytes, v6);
  assert.deepEqual(only(r.add(asFrame(u1!), 0), Reassembled).bytes, udpWhole);
  assert.deepEqual(only(r.add(asFrame(s1!), 0), Reassembled).bytes, v6);
  assert.deepEqual(only(r.add(asFrame(o1!), 0), Reassembled).bytes, otherId);
  assert.equal(r.pendingDatagrams, 0);
});

test('fragments: expire rejects datagrams incomplete for longer than timeoutMs, by caller time', () => {
  const a = split(udp(bytesOf(40), { ipId: 1 }), [16]);
  const b = split(udp(bytesOf(40), { ipId: 2 }), [16]);
  const r = new FragmentReassembler({ timeoutMs: 3000 });
  r.add(asFrame(a[0]!), 1000);
  r.add(asFrame(b[0]!), 2500);
  r.add(asFrame(a[0]!.slice()), 3900);
  assert.deepEqual(r.expire(4000), [], 'exactly timeoutMs is not longer');
  const expired = r.expire(4001);
  assert.equal(expired.length, 1);
  assert.equal(expired[0]!.code, 'fragment.timeout');
  assert.equal(expired[0]!.key, '4 167772161 167772162 17 1');
  assert.equal(expired[0]!.fragments.length, 2, 'the later duplicate did not restart the clock');
  assert.equal(r.pendingDatagrams, 1);
  assert.equal(r.pendingBytes, b[0]!.length);
  assert.deepEqual(only(r.add(asFrame(b[1]!), 5000), Reassembled).fragments, b);
  // A fragment of the expired datagram starts a new one.
  assert.deepEqual(r.add(asFrame(a[1]!), 6000), []);
  assert.deepEqual(r.expire(9000), []);
  assertSameFrames(r.expire(9001)[0]!.fragments, [a[1]!]);
  assert.equal(r.pendingBytes, 0);
});

test('fragments: maxDatagrams evicts the oldest datagram from the add that needs room', () => {
  const d = [1, 2, 3].map((ipId) => split(udp(bytesOf(40), { ipId }), [16]));
  const r = new FragmentReassembler({ maxDatagrams: 2 });
  assert.deepEqual(r.add(asFrame(d[0]![0]!), 0), []);
  assert.deepEqual(r.add(asFrame(d[1]![0]!), 0), []);
  const evicted = only(r.add(asFrame(d[2]![0]!), 0), Rejected);
  assert.equal(evicted.code, 'fragment.limit');
  assert.equal(evicted.key, '4 167772161 167772162 17 1');
  assertSameFrames(evicted.fragments, [d[0]![0]!]);
  assert.equal(r.pendingDatagrams, 2);
  assert.ok(only(r.add(asFrame(d[1]![1]!), 0), Reassembled));
  assert.ok(only(r.add(asFrame(d[2]![1]!), 0), Reassembled));
});

test('fragments: maxBytes evicts oldest first, the datagram being added included', () => {
  const d1 = split(udp(bytesOf(40), { ipId: 1 }), [16]);
  const d2 = split(udp(bytesOf(80), { ipId: 2 }), [16, 40]);
  const r = new FragmentReassembler({ maxBytes: d1[0]!.length + d2[0]!.length + d2[1]!.length - 1 });
  r.add(asFrame(d1[0]!), 0);
  r.add(asFrame(d2[0]!), 0);
  const evicted = only(r.add(asFrame(d2[1]!), 0), Rejected);
  assert.equal(evicted.code, 'fragment.limit');
  assertSameFrames(evicted.fragments, [d1[0]!]);
  assert.equal(r.pendingBytes, d2[0]!.length + d2[1]!.length);
  assert.ok(only(r.add(asFrame(d2[2]!), 0), Reassembled), 'completion frees the bytes instead');

  const small = new FragmentReassembler({ maxBytes: d2[0]!.length });
  assert.deepEqual(small.add(asFrame(d2[0]!), 0), []);
  const self = only(small.add(asFrame(d2[1]!), 0), Rejected);
  assert.equal(self.code, 'fragment.limit');
  assertSameFrames(self.fragments, [d2[0]!, d2[1]!]);
  assert.equal(small.pendingBytes, 0);

  // One add, two evictions in the order they happened: room for a new datagram, then the bytes.
  const both = new FragmentReassembler({ maxDatagrams: 1, maxBytes: d1[0]!.length });
  both.add(asFrame(d1[0]!), 0);
  const bigger = split(udp(bytesOf(80), { ipId: 2 }), [40])[0]!;
  const outcomes = both.add(asFrame(bigger), 0);
  assert.deepEqual(outcomes.map((o) => [o.key, (o as Rejected).code]), [
    ['4 167772161 167772162 17 1', 'fragment.limit'],
    ['4 167772161 167772162 17 2', 'fragment.limit'],
  ]);
  assert.equal(both.pendingDatagrams, 0);
});

test('fragments: clear hands back every pending frame in arrival order', () => {
  const a = split(udp(bytesOf(80), { ipId: 1 }), [16, 40]);
  const b = split(udp(bytesOf(80), { ipId: 2 }), [16, 40]);
  const r = new FragmentReassembler();
  const order = [a[2]!, b[0]!, a[0]!, b[2]!];
  for (const f of order) r.add(asFrame(f), 0);
  assertSameFrames(r.clear(0), order);
  assert.equal(r.pendingDatagrams, 0);
  assert.equal(r.pendingBytes, 0);
  assert.deepEqual(r.clear(0), []);
});

test('fragments: the rest of a datagram cut by clear comes straight back, until it is whole', () => {
  for (const version of [4, 6] as const) {
    const a = split(udp(bytesOf(80), { version, ipId: 1 }), [16, 40], { id: 1 });
    const r = new FragmentReassembler();
    r.add(asFrame(a[0]!), 0);
    assertSameFrames(r.clear(5), [a[0]!]);
    assert.equal(r.cutDatagrams, 1);
    assertSameFrames(only(r.add(asFrame(a[2]!), 6), AfterCheckpoint).fragments, [a[2]!]);
    assertSameFrames(only(r.add(asFrame(a[1]!), 7), AfterCheckpoint).fragments, [a[1]!]);
    assert.equal(r.cutDatagrams, 0, `IPv${version}: whole, so forgotten`);
    assert.deepEqual(r.add(asFrame(a[0]!), 8), [], 'the identification again: a new datagram');
    assert.equal(r.pendingDatagrams, 1);
  }
});

test('fragments: a fragment overlapping a cut datagram, or past its end, starts a new one', () => {
  const a = split(udp(bytesOf(80), { ipId: 1 }), [16, 40]);
  const r = new FragmentReassembler();
  r.add(asFrame(a[0]!), 0);
  r.add(asFrame(a[2]!), 0);
  r.clear(0);
  const longer = split(udp(bytesOf(120), { ipId: 1 }), [16, 40, 88, 96]);
  assert.deepEqual(r.add(asFrame(longer[3]!), 1), [], 'past the cut datagram\'s end: another datagram');
  assert.equal(r.cutDatagrams, 0);
  assert.equal(r.pendingDatagrams, 1);
  assertSameFrames(r.clear(2), [longer[3]!]);
  assert.deepEqual(r.add(asFrame(longer[3]!.slice()), 3), [], 'the very same range again: the identification was reused');
  assert.equal(r.cutDatagrams, 0);
  assert.equal(r.pendingDatagrams, 1);
});

test('fragments: a cut datagram is forgotten after timeoutMs, and at most maxDatagrams are kept', () => {
  const frames = [1, 2, 3].map((id) => split(udp(bytesOf(80), { ipId: id }), [16, 40]));
  const r = new FragmentReassembler({ timeoutMs: 100, maxDatagrams: 2 });
  r.add(asFrame(frames[0]![0]!), 0);
  r.clear(0);
  r.add(asFrame(frames[1]![0]!), 50);
  r.add(asFrame(frames[2]![0]!), 50);
  r.clear(50);
  assert.equal(r.cutDatagrams, 2, 'the oldest of three went');
  assert.deepEqual(r.add(asFrame(frames[0]![1]!), 60), [], 'no longer known as cut');
  assert.deepEqual(r.expire(151), []);
  assert.equal(r.cutDatagrams, 0);
  assert.deepEqual(r.add(asFrame(frames[1]![1]!), 160), []);
});

test('fragments: incorrect use throws', () => {
  const r = new FragmentReassembler();
  assert.throws(() => r.add(decoded(udp(bytesOf(8))), 0), TypeError);
  assert.throws(() => new FragmentReassembler({ maxDatagrams: 0 }), /maxDatagrams must be an integer >= 1/);
  assert.throws(() => new FragmentReassembler({ maxBytes: 1.5 }), RangeError);
  assert.throws(() => new FragmentReassembler({ timeoutMs: -1 }), /timeoutMs/);
});

/**
 * Ascending cut offsets from `seeds`, leaving the first fragment the whole header chain: the
 * `fragmentable` extension headers and the UDP header (RFC 8200 §4.5 as updated by RFC 7112).
 */
function cutsOf(whole: Uint8Array, seeds: number[], unfragmentable: number, fragmentable: number): number[] {
  const l = layout(whole, unfragmentable);
  const lowest = fragmentable + 1;
  const choices = ((l.end - l.keep - 1) >> 3) - lowest + 1;
  return [...new Set(seeds.map((s) => 8 * (lowest + (s % choices))))].sort((a, b) => a - b);
}

/** A random datagram and the fragments it is cut into. */
const datagram = fc.record({
  version: fc.constantFrom(4 as const, 6 as const),
  payload: fc.uint8Array({ minLength: 1, maxLength: 400 }),
  vlan: fc.constantFrom<number[]>([], [5]),
  extensions: fc.constantFrom<number[]>([], [HOP_BY_HOP], [HOP_BY_HOP, DEST_OPTS], [ROUTING, DEST_OPTS]),
  unfragmentable: fc.nat({ max: 2 }),
  cutSeeds: fc.uniqueArray(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 8 }),
  padTo: fc.constantFrom(0, 60, 128),
}).map((d) => {
  const v6 = d.version === 6;
  const extensions = v6 ? d.extensions : [];
  // Hop-by-Hop and Routing belong to the unfragmentable part (RFC 8200 §4.5).
  const unfragmentable = Math.min(Math.max(d.unfragmentable, extensions.length > 0 ? 1 : 0), extensions.length);
  const whole = udp(d.payload, { version: d.version, vlan: d.vlan, extensions });
  const cuts = cutsOf(whole, d.cutSeeds, unfragmentable, extensions.length - unfragmentable);
  return { whole, payload: d.payload, fragments: split(whole, cuts, { unfragmentable, padTo: d.padTo }) };
});

test('fragments: any order and duplication reassembles to exactly the unfragmented frame (property)', () => {
  fc.assert(fc.property(
    datagram,
    fc.array(fc.nat(), { minLength: 9, maxLength: 9 }),
    fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 6 }),
    ({ whole, payload, fragments }, sortKeys, duplicates) => {
      const n = fragments.length;
      const sequence = fragments.map((_, i) => i).sort((i, j) => sortKeys[i]! - sortKeys[j]! || i - j);
      for (const [which, where] of duplicates) sequence.splice(where % (sequence.length + 1), 0, which % n);
      const r = new FragmentReassembler();
      // Model: a datagram completes when every distinct fragment has been seen since the last completion.
      let seen = new Set<number>();
      let since: Uint8Array[] = [];
      for (const i of sequence) {
        const frame = fragments[i]!.slice();
        seen.add(i);
        since.push(frame);
        const outcomes = r.add(asFrame(frame), 0);
        if (seen.size < n) {
          assert.deepEqual(outcomes, []);
          continue;
        }
        const done = only(outcomes, Reassembled);
        assert.deepEqual(done.bytes, whole);
        assertSameFrames(done.fragments, since);
        assertUdp(done.bytes, payload);
        seen = new Set();
        since = [];
      }
      assertSameFrames(r.clear(0), since);
    },
  ));
});

test('fragments: overlapping cuts against a coverage model: IPv4 completes, IPv6 rejects (property)', () => {
  fc.assert(fc.property(
    fc.constantFrom(4 as const, 6 as const),
    fc.uint8Array({ minLength: 1, maxLength: 300 }),
    fc.array(fc.uniqueArray(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 3 }),
    fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
    (version, payload, cutSets, picks) => {
      const whole = udp(payload, { version });
      const l = layout(whole, 0);
      const length = l.end - l.keep;
      const pool = cutSets.flatMap((seeds) => {
        const cuts = cutsOf(whole, seeds, 0, 0);
        const bounds = [0, ...cuts, length];
        return split(whole, cuts).map((bytes, i) => ({ bytes, start: bounds[i]!, end: bounds[i + 1]! }));
      });
      const r = new FragmentReassembler();
      let covered = new Uint8Array(length);
      let ranges: [number, number][] = [];
      let since: Uint8Array[] = [];
      for (const pick of picks) {
        const { bytes, start, end } = pool[pick % pool.length]!;
        const frame = bytes.slice();
        since.push(frame);
        const outcomes = r.add(asFrame(frame), 0);
        const overlaps = ranges.some(([a, b]) => a < end && start < b && !(a === start && b === end));
        if (version === 6 && overlaps) {
          const rejected = only(outcomes, Rejected);
          assert.equal(rejected.code, 'fragment.overlap_ipv6');
          assertSameFrames(rejected.fragments, since);
        } else {
          ranges.push([start, end]);
          covered.fill(1, start, end);
          if (!covered.every((c) => c === 1)) {
            assert.deepEqual(outcomes, []);
            continue;
          }
          const done = only(outcomes, Reassembled);
          assert.deepEqual(done.bytes, whole);
          assertSameFrames(done.fragments, since);
        }
        covered = new Uint8Array(length);
        ranges = [];
        since = [];
      }
      assertSameFrames(r.clear(0), since);
    },
  ));
});

test('fragments: every frame comes back exactly once, within the limits (property)', () => {
  const datagrams = fc.array(fc.record({
    version: fc.constantFrom(4 as const, 6 as const),
    payload: fc.uint8Array({ minLength: 1, maxLength: 200 }),
    cutSeeds: fc.uniqueArray(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 4 }),
  }), { minLength: 1, maxLength: 4 });
  const step = fc.record({ pick: fc.nat(), corrupt: fc.option(fc.nat(), { freq: 4 }), dt: fc.nat({ max: 1500 }), expire: fc.boolean(), clear: fc.nat({ max: 7 }) });
  const limits = fc.record({ timeoutMs: fc.nat({ max: 3000 }), maxDatagrams: fc.integer({ min: 1, max: 4 }), maxBytes: fc.integer({ min: 60, max: 3000 }) });
  fc.assert(fc.property(datagrams, fc.array(step, { minLength: 1, maxLength: 60 }), limits, (ds, steps, options) => {
    // Each datagram cut two ways, so fragments overlap; the index is the IP id.
    const pool: { bytes: Uint8Array; dataAt: number }[] = [];
    ds.forEach((d, id) => {
      const whole = udp(d.payload, { version: d.version, ipId: id });
      const l = layout(whole, 0);
      for (const bytes of [...split(whole, cutsOf(whole, d.cutSeeds, 0, 0), { id }), ...split(whole, cutsOf(whole, [0], 0, 0), { id })]) {
        pool.push({ bytes, dataAt: l.keep + (l.v6 ? 8 : 0) });
      }
    });
    const r = new FragmentReassembler(options);
    const outstanding = new Map<Uint8Array, number>();
    const giveBack = (frames: Uint8Array[]): void => {
      for (const f of frames) {
        assert.ok(outstanding.has(f), 'a frame came back that was not outstanding');
        outstanding.delete(f);
      }
    };
    let now = 0;
    for (const s of steps) {
      now += s.dt;
      const { bytes, dataAt } = pool[s.pick % pool.length]!;
      const frame = bytes.slice();
      // Corrupt a data byte past any UDP header, so a frame still decodes but may now overlap inconsistently.
      const room = frame.length - dataAt - 8;
      if (s.corrupt !== null && room > 0) frame[dataAt + 8 + (s.corrupt % room)]! ^= 0x5a;
      outstanding.set(frame, frame.length);
      for (const o of r.add(asFrame(frame), now)) {
        giveBack(o.fragments);
        if (o instanceof Reassembled) assert.equal(decoded(o.bytes).isFragment, false);
      }
      if (s.expire) for (const o of r.expire(now)) giveBack(o.fragments);
      if (s.clear === 0) giveBack(r.clear(now));
      assert.ok(r.pendingDatagrams <= options.maxDatagrams);
      assert.ok(r.cutDatagrams <= options.maxDatagrams);
      assert.ok(r.pendingBytes <= options.maxBytes);
      assert.equal(r.pendingBytes, [...outstanding.values()].reduce((a, b) => a + b, 0));
    }
    giveBack(r.clear(now));
    assert.equal(outstanding.size, 0, 'frames never handed back');
  }));
});
