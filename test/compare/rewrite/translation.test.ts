/**
 * Sequence-space translation: client frames moved into the SVM's spaces, SVM output mapped back
 * into the PVM's, checked field by field and by full checksum recomputation, at ordinary and
 * wrapping offsets, over IPv4 and IPv6; and, for random frames and offsets, each function
 * followed by its inverse restoring the original bytes exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toHex } from '../../../compare/wire/bytes.js';
import { pseudoSumV4, pseudoSumV6 } from '../../../compare/wire/checksum.js';
import { emitTcp, emitUdp } from '../../../compare/wire/emit.js';
import type { TcpFields } from '../../../compare/wire/emit.js';
import { Frame } from '../../../compare/wire/frame.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TcpView } from '../../../compare/wire/tcp.js';
import {
  SequenceTranslation, learnFromHandshake, learnFromSegments, mapPrimaryToSecondary, mapSecondaryToPrimary,
  translateClientToSecondary, translateSecondaryToClient,
} from '../../../compare/rewrite/translation.js';
import { decoded } from '../../support/decoded.js';

function tcpOf(f: Frame): TcpView {
  assert.ok(f.transport instanceof TcpView);
  return f.transport;
}

/** Full recomputation: the IPv4 header checksum (if any) and the TCP checksum verify. */
function checksumsVerify(f: Frame): boolean {
  const ip = f.network;
  assert.ok(ip !== null && ip.kind !== 'arp');
  const t = tcpOf(f);
  if (ip.kind === 'ipv4' && !ip.verifyChecksum()) return false;
  const ps = ip.kind === 'ipv4' ? pseudoSumV4(f.bytes, ip.offset, 6, ip.payloadLength) : pseudoSumV6(f.bytes, ip.offset, 6, ip.upperLength);
  return t.verifyChecksum(ps);
}

function translation(seqOffset: number, tsOffset: number, primaryPort = -1, secondaryPort = -1): SequenceTranslation {
  const t = new SequenceTranslation();
  t.seqOffset = seqOffset;
  t.tsOffset = tsOffset;
  t.known = true;
  t.primaryPort = primaryPort;
  t.secondaryPort = secondaryPort;
  return t;
}

/** Byte offsets at which `a` and `b` differ. */
function differingBytes(a: Uint8Array, b: Uint8Array): number[] {
  assert.equal(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

// Client 10.0.0.9:51000 -> guest 10.0.0.1:80 (its frames go to the PVM as is and to the SVM translated).
const CLIENT = { src: '10.0.0.9', dst: '10.0.0.1', srcPort: 51000, dstPort: 80 };
// Guest 10.0.0.1:80 -> client 10.0.0.9:51000.
const GUEST = { src: '10.0.0.1', dst: '10.0.0.9', srcPort: 80, dstPort: 51000 };
const CLIENT6 = { src: 'fd00::9', dst: 'fd00::1', srcPort: 51000, dstPort: 80 };
const GUEST6 = { src: 'fd00::1', dst: 'fd00::9', srcPort: 80, dstPort: 51000 };

test('rewrite: a new translation is unknown and the identity; reset makes it known', () => {
  const t = new SequenceTranslation();
  assert.deepEqual([t.seqOffset, t.tsOffset, t.known, t.primaryPort, t.secondaryPort], [0, 0, false, -1, -1]);
  const bytes = emitTcp({ ...CLIENT, seq: 1, ack: 2, flags: TCP_ACK, options: { timestamp: [3, 4], sack: [[5, 6]] } });
  const f = decoded(bytes.slice());
  assert.equal(translateClientToSecondary(f, t), false);
  assert.equal(mapSecondaryToPrimary(f, t), false);
  assert.deepEqual(f.bytes, bytes);
  const learned = translation(5, 6, 80, 81);
  learned.reset();
  assert.deepEqual([learned.seqOffset, learned.tsOffset, learned.known, learned.primaryPort, learned.secondaryPort], [0, 0, true, -1, -1]);
});

test('rewrite: learning from the two SYN-ACKs (passive open), the TS offset only when both carry timestamps', () => {
  const pvm = tcpOf(decoded(emitTcp({ ...GUEST, seq: 1000, ack: 501, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, timestamp: [70000, 9] } })));
  const svm = tcpOf(decoded(emitTcp({ ...GUEST, seq: 250, ack: 501, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, timestamp: [10, 9] } })));
  const t = new SequenceTranslation();
  learnFromSegments(t, pvm, svm);
  assert.equal(t.known, true);
  assert.equal(t.seqOffset, 2 ** 32 - 750);
  assert.equal(t.tsOffset, 2 ** 32 - 69990);
  const noTs = tcpOf(decoded(emitTcp({ ...GUEST, seq: 2000, ack: 501, flags: TCP_SYN | TCP_ACK })));
  const u = new SequenceTranslation();
  u.tsOffset = 77;
  learnFromSegments(u, pvm, noTs);
  assert.equal(u.seqOffset, 1000);
  assert.equal(u.tsOffset, 0);
  learnFromHandshake(u, 0xfffffff0, 0x10);
  assert.deepEqual([u.seqOffset, u.tsOffset], [0x20, 0]);
});

test('rewrite: client ACK with timestamps and SACK: ack, every edge and TSecr move, nothing else', () => {
  const t = translation(0x1000, 0x20);
  for (let blocks = 1; blocks <= 4; blocks++) {
    const sack: [number, number][] = [[100, 200], [300, 400], [500, 600], [700, 800]].slice(0, blocks) as [number, number][];
    // Four SACK blocks do not fit beside timestamps (as in Linux, which then sends three).
    const timestamp: [number, number] | undefined = blocks < 4 ? [777, 5000] : undefined;
    const original = emitTcp({ ...CLIENT, seq: 42, ack: 1, flags: TCP_ACK, window: 9, options: { sack, timestamp }, padTo: 60 });
    const f = decoded(original.slice());
    assert.equal(translateClientToSecondary(f, t), true);
    const c = tcpOf(f);
    assert.equal(c.ack, 0x1001);
    assert.deepEqual(Array.from({ length: c.sackBlockCount }, (_, i) => [c.sackLeft(i), c.sackRight(i)]), sack.map(([l, r]) => [l + 0x1000, r + 0x1000]));
    assert.equal(c.tsVal, timestamp === undefined ? -1 : 777);
    assert.equal(c.tsEcr, timestamp === undefined ? -1 : 5000 + 0x20);
    assert.deepEqual([c.seq, c.srcPort, c.dstPort, c.window], [42, 51000, 80, 9]);
    assert.ok(checksumsVerify(f), `${blocks} blocks`);
    // The bytes that changed lie in the ack, the SACK edges, TSecr and the TCP checksum only.
    const at = c.offset;
    const allowed = new Set<number>([at + 8, at + 9, at + 10, at + 11, at + 16, at + 17]);
    for (let i = 0; i < 8 * blocks; i++) allowed.add(c.sackOffset + i);
    if (timestamp !== undefined) for (let i = 4; i < 8; i++) allowed.add(c.timestampOffset + i);
    for (const i of differingBytes(original, f.bytes)) assert.ok(allowed.has(i), `byte ${i} changed`);
    // And back again.
    assert.equal(translateSecondaryToClient(f, t), true);
    assert.deepEqual(f.bytes, original);
  }
});

test('rewrite: a client frame without options changes only in ack (and checksum)', () => {
  const t = translation(123456, 999);
  const original = emitTcp({ ...CLIENT, seq: 7, ack: 8, flags: TCP_ACK | TCP_PSH, payload: 'GET / HTTP/1.0\r\n\r\n' });
  const f = decoded(original.slice());
  assert.equal(translateClientToSecondary(f, t), true);
  const c = tcpOf(f);
  assert.equal(c.ack, 8 + 123456);
  const ackOrChecksum = [8, 9, 10, 11, 16, 17].map((i) => c.offset + i);
  for (const i of differingBytes(original, f.bytes)) assert.ok(ackOrChecksum.includes(i), `byte ${i} changed`);
  assert.ok(checksumsVerify(f));
  // With only a TS offset, a frame without timestamps is untouched.
  const g = decoded(original.slice());
  assert.equal(translateClientToSecondary(g, translation(0, 999)), false);
  assert.deepEqual(g.bytes, original);
});

test('rewrite: ACK flag clear (client SYN, bare RST) is never translated; the client SYN-ACK of an active open is', () => {
  const t = translation(0x10000, 0x300);
  for (const flags of [TCP_SYN, TCP_RST, TCP_FIN]) {
    const original = emitTcp({ ...CLIENT, seq: 5, ack: 0, flags, options: { mss: 1460, sackPermitted: true, timestamp: [1234, 0], windowScale: 7 } });
    const f = decoded(original.slice());
    assert.equal(translateClientToSecondary(f, t), false, `flags ${flags}`);
    assert.deepEqual(f.bytes, original);
  }
  // Guest 10.0.0.1:40000 opened to the client's port 443; the client's SYN-ACK acknowledges the
  // PVM's ISN and echoes the PVM's SYN TSval, both of which the SVM knows by its own values.
  const synAck = decoded(emitTcp({ src: '10.0.0.9', dst: '10.0.0.1', srcPort: 443, dstPort: 40000, seq: 900, ack: 0xfffffff1, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, timestamp: [55, 0xfffffe00], windowScale: 7 } }));
  assert.equal(translateClientToSecondary(synAck, t), true);
  const c = tcpOf(synAck);
  assert.deepEqual([c.seq, c.ack, c.tsVal, c.tsEcr], [900, 0x0000fff1, 55, 0x100]);
  assert.ok(checksumsVerify(synAck));
});

test('rewrite: SVM output mapped into the PVM spaces: seq and TSval move, ack, SACK and TSecr stay', () => {
  // PVM ISN 1000, SVM ISN 250; PVM TS clock 70000, SVM 10.
  const t = new SequenceTranslation();
  learnFromHandshake(t, 1000, 250, 70000, 10);
  const synAck = decoded(emitTcp({ ...GUEST, seq: 250, ack: 501, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, timestamp: [10, 9], windowScale: 7 } }));
  assert.equal(mapSecondaryToPrimary(synAck, t), true);
  assert.deepEqual([tcpOf(synAck).seq, tcpOf(synAck).ack, tcpOf(synAck).tsVal, tcpOf(synAck).tsEcr], [1000, 501, 70000, 9]);
  assert.ok(checksumsVerify(synAck));

  const original = emitTcp({ ...GUEST, seq: 251, ack: 601, flags: TCP_ACK | TCP_PSH, options: { timestamp: [15, 44], sack: [[700, 800], [900, 1000]] }, payload: 'HTTP/1.0 200 OK\r\n' });
  const f = decoded(original.slice());
  assert.equal(mapSecondaryToPrimary(f, t), true);
  const c = tcpOf(f);
  assert.deepEqual([c.seq, c.ack, c.tsVal, c.tsEcr], [1001, 601, 70005, 44]);
  assert.deepEqual([c.sackLeft(0), c.sackRight(0), c.sackLeft(1), c.sackRight(1)], [700, 800, 900, 1000]);
  assert.ok(checksumsVerify(f));
  // The result is exactly what the PVM would have sent.
  const pvm = emitTcp({ ...GUEST, seq: 1001, ack: 601, flags: TCP_ACK | TCP_PSH, options: { timestamp: [70005, 44], sack: [[700, 800], [900, 1000]] }, payload: 'HTTP/1.0 200 OK\r\n' });
  assert.equal(toHex(f.bytes), toHex(pvm));
  assert.equal(mapPrimaryToSecondary(f, t), true);
  assert.deepEqual(f.bytes, original);
});

test('rewrite: offsets and fields wrapping around 2^32', () => {
  const cases: [number, number, number][] = [
    // [PVM ISN, SVM ISN, client ack in the PVM's space]
    [0xfffffff0, 0x00000010, 0xfffffffa],
    [0x00000010, 0xfffffff0, 0x00000012],
    [0xffffffff, 0x00000000, 0x00000005],
    [0x7fffffff, 0xfffffff5, 0x80000010],
  ];
  for (const [pIsn, sIsn, ack] of cases) {
    const t = new SequenceTranslation();
    learnFromHandshake(t, pIsn, sIsn, 0xffffff00, 0x100);
    const expectedAck = (ack - pIsn + sIsn + 2 ** 32 * 2) % 2 ** 32;
    const f = decoded(emitTcp({ ...CLIENT, seq: 1, ack, flags: TCP_ACK, options: { timestamp: [1, 0xffffff80], sack: [[ack, (ack + 5) % 2 ** 32]] } }));
    translateClientToSecondary(f, t);
    const c = tcpOf(f);
    assert.equal(c.ack, expectedAck);
    assert.equal(c.sackLeft(0), expectedAck);
    assert.equal(c.sackRight(0), (expectedAck + 5) % 2 ** 32);
    assert.equal(c.tsEcr, 0x180);
    assert.ok(checksumsVerify(f));
    const g = decoded(emitTcp({ ...GUEST, seq: sIsn, ack: 1, flags: TCP_SYN | TCP_ACK, options: { timestamp: [0x100, 1] } }));
    mapSecondaryToPrimary(g, t);
    assert.deepEqual([tcpOf(g).seq, tcpOf(g).tsVal], [pIsn, 0xffffff00]);
    assert.ok(checksumsVerify(g));
  }
});

test('rewrite: IPv6 frames, with a VLAN tag and padding', () => {
  const t = translation(0x80000000, 0xffffffff);
  const original = emitTcp({ ...CLIENT6, vlan: [7], seq: 3, ack: 0x80000001, flags: TCP_ACK, options: { timestamp: [9, 0], sack: [[0x80000001, 0x80000100]] } });
  const f = decoded(original.slice());
  assert.equal(translateClientToSecondary(f, t), true);
  assert.deepEqual([tcpOf(f).ack, tcpOf(f).sackLeft(0), tcpOf(f).sackRight(0), tcpOf(f).tsEcr], [1, 1, 0x100, 0xffffffff]);
  assert.ok(checksumsVerify(f));
  const g = decoded(emitTcp({ ...GUEST6, seq: 0, ack: 3, flags: TCP_ACK, options: { timestamp: [0, 0] }, padTo: 128 }));
  assert.equal(mapSecondaryToPrimary(g, t), true);
  assert.deepEqual([tcpOf(g).seq, tcpOf(g).tsVal], [0x80000000, 1]);
  assert.ok(checksumsVerify(g));
});

test('rewrite: active open with different ports: destination port to the SVM, source port back to the PVM', () => {
  // The PVM opened from port 40000, the SVM from 50000, both to 10.0.0.9:443.
  const t = translation(100, 0, 40000, 50000);
  const toGuest = { src: '10.0.0.9', dst: '10.0.0.1', srcPort: 443 };
  const original = emitTcp({ ...toGuest, dstPort: 40000, seq: 1, ack: 2, flags: TCP_ACK });
  const f = decoded(original.slice());
  assert.equal(translateClientToSecondary(f, t), true);
  assert.deepEqual([tcpOf(f).srcPort, tcpOf(f).dstPort, tcpOf(f).ack], [443, 50000, 102]);
  assert.ok(checksumsVerify(f));
  assert.equal(translateSecondaryToClient(f, t), true);
  assert.deepEqual(f.bytes, original);
  // A bare RST (ACK clear) still has its port translated.
  const rst = decoded(emitTcp({ ...toGuest, dstPort: 40000, seq: 1, ack: 0, flags: TCP_RST }));
  assert.equal(translateClientToSecondary(rst, t), true);
  assert.deepEqual([tcpOf(rst).dstPort, tcpOf(rst).ack], [50000, 0]);
  assert.ok(checksumsVerify(rst));
  // Only the connection's own port is rewritten.
  const other = emitTcp({ ...toGuest, dstPort: 40001, seq: 1, ack: 2, flags: 0 });
  const o = decoded(other.slice());
  assert.equal(translateClientToSecondary(o, t), false);
  assert.deepEqual(o.bytes, other);

  const svm = decoded(emitTcp({ src: '10.0.0.1', dst: '10.0.0.9', srcPort: 50000, dstPort: 443, seq: 150, ack: 7, flags: TCP_ACK }));
  assert.equal(mapSecondaryToPrimary(svm, t), true);
  assert.deepEqual([tcpOf(svm).srcPort, tcpOf(svm).dstPort, tcpOf(svm).seq, tcpOf(svm).ack], [40000, 443, 50, 7]);
  assert.ok(checksumsVerify(svm));
});

test('rewrite: non-TCP frames are left alone', () => {
  const t = translation(1, 1, 53, 54);
  const original = emitUdp({ src: '10.0.0.9', dst: '10.0.0.1', srcPort: 1, dstPort: 53, payload: 'x' });
  const f = decoded(original.slice());
  assert.equal(translateClientToSecondary(f, t), false);
  assert.equal(mapSecondaryToPrimary(f, t), false);
  assert.deepEqual(f.bytes, original);
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
/** Random TCP frames in either direction, either IP version, with any option mix that fits. */
const frames: fc.Arbitrary<TcpFields> = fc.record({
  v6: fc.boolean(),
  srcPort: u16, dstPort: u16, seq: u32, ack: u32, flags: fc.nat(255),
  mss: fc.option(u16, { nil: undefined }),
  timestamp: fc.option(fc.tuple(u32, u32), { nil: undefined }),
  sack: fc.array(fc.tuple(u32, u32), { maxLength: 4 }),
  payload: fc.uint8Array({ maxLength: 64 }),
  padTo: fc.constantFrom(0, 60),
}).map(({ v6, mss, timestamp, sack, ...f }) => ({
  ...f,
  src: v6 ? 'fd00::9' : '10.0.0.9',
  dst: v6 ? 'fd00::1' : '10.0.0.1',
  // At most 40 option bytes: SACK blocks beside timestamps (and an MSS) are limited.
  options: { mss, timestamp, sack: sack.slice(0, timestamp === undefined ? 4 : mss === undefined ? 3 : 2) },
}));
const translations = fc.record({ seqOffset: u32, tsOffset: u32, remap: fc.boolean(), ports: fc.uniqueArray(u16, { minLength: 2, maxLength: 2 }) })
  .map(({ seqOffset, tsOffset, remap, ports }) => translation(seqOffset, tsOffset, remap ? ports[0]! : -1, remap ? ports[1]! : -1));

test('rewrite property: each translation followed by its inverse restores the bytes; checksums always verify', () => {
  fc.assert(fc.property(frames, translations, fc.boolean(), (fields, t, portMatches) => {
    // Frames of the connection carry its guest-side port; half the time use that port, else one
    // that is neither of the connection's (a frame carrying the other side's port is misuse).
    const remapped = t.primaryPort >= 0;
    if (remapped && !portMatches) fc.pre(![t.primaryPort, t.secondaryPort].includes(fields.dstPort) && ![t.primaryPort, t.secondaryPort].includes(fields.srcPort));
    const f0 = portMatches && remapped ? { ...fields, dstPort: t.primaryPort } : fields;
    const original = emitTcp(f0);
    const client = decoded(original.slice());
    const before = tcpOf(decoded(original));
    translateClientToSecondary(client, t);
    assert.ok(checksumsVerify(client));
    const c = tcpOf(client);
    const ackSet = before.isAck;
    assert.equal(c.ack, ackSet ? (before.ack + t.seqOffset) % 2 ** 32 : before.ack);
    assert.equal(c.tsEcr, ackSet && before.tsEcr >= 0 ? (before.tsEcr + t.tsOffset) % 2 ** 32 : before.tsEcr);
    assert.equal(c.tsVal, before.tsVal);
    assert.equal(c.seq, before.seq);
    for (let i = 0; i < before.sackBlockCount; i++) assert.equal(c.sackLeft(i), ackSet ? (before.sackLeft(i) + t.seqOffset) % 2 ** 32 : before.sackLeft(i));
    assert.equal(c.dstPort, t.primaryPort !== t.secondaryPort && before.dstPort === t.primaryPort ? t.secondaryPort : before.dstPort);
    translateSecondaryToClient(client, t);
    assert.equal(toHex(client.bytes), toHex(original));

    const svmOriginal = emitTcp(portMatches && remapped ? { ...fields, srcPort: t.secondaryPort } : fields);
    const svm = decoded(svmOriginal.slice());
    const s0 = tcpOf(decoded(svmOriginal));
    mapSecondaryToPrimary(svm, t);
    assert.ok(checksumsVerify(svm));
    const s = tcpOf(svm);
    assert.equal(s.seq, (s0.seq - t.seqOffset + 2 ** 32) % 2 ** 32);
    assert.equal(s.tsVal, s0.tsVal < 0 ? -1 : (s0.tsVal - t.tsOffset + 2 ** 32) % 2 ** 32);
    assert.deepEqual([s.ack, s.tsEcr, s.sackLeft(0), s.sackRight(0)], [s0.ack, s0.tsEcr, s0.sackLeft(0), s0.sackRight(0)]);
    mapPrimaryToSecondary(svm, t);
    assert.equal(toHex(svm.bytes), toHex(svmOriginal));
  }), { numRuns: 500 });
});
