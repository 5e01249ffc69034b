/**
 * Active-open pairing: the PVM's and the SVM's SYNs (or first UDP datagrams) to one destination
 * paired in arrival order (same port first), port lookups for later frames, expiry by the
 * caller's time, bounds, and the whole path from pairing to translated frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pseudoSumV4 } from '../../../compare/wire/checksum.js';
import { emitIcmpEcho, emitTcp, emitUdp } from '../../../compare/wire/emit.js';
import { Frame } from '../../../compare/wire/frame.js';
import { TCP_ACK, TCP_SYN, TcpView } from '../../../compare/wire/tcp.js';
import { ActiveOpenPairing, PairedOpen, learnFromPairedOpen } from '../../../compare/rewrite/pairing.js';
import { SequenceTranslation, mapSecondaryToPrimary, translateClientToSecondary } from '../../../compare/rewrite/translation.js';
import { decoded } from '../../support/decoded.js';

const GUEST = '10.0.0.1';
const REMOTE = '192.0.2.7';

/** A guest SYN from `port` to REMOTE:`remotePort` with ISN `isn` and TSval `tsVal` (-1: no timestamps). */
function syn(port: number, isn: number, tsVal = -1, remotePort = 443, remote = REMOTE, guest = GUEST): Frame {
  const timestamp: [number, number] | undefined = tsVal < 0 ? undefined : [tsVal, 0];
  return decoded(emitTcp({ src: guest, dst: remote, srcPort: port, dstPort: remotePort, seq: isn, ack: 0, flags: TCP_SYN, options: { mss: 1460, sackPermitted: true, timestamp, windowScale: 7 } }));
}

/** A later guest frame (guest -> remote). */
function fromGuest(port: number, remotePort = 443, remote = REMOTE): Frame {
  return decoded(emitTcp({ src: GUEST, dst: remote, srcPort: port, dstPort: remotePort, seq: 1, ack: 1, flags: TCP_ACK }));
}

/** A client frame (remote -> guest). */
function toGuest(port: number, remotePort = 443, remote = REMOTE): Frame {
  return decoded(emitTcp({ src: remote, dst: GUEST, srcPort: remotePort, dstPort: port, seq: 1, ack: 1, flags: TCP_ACK }));
}

function pair(p: PairedOpen | null): PairedOpen {
  assert.ok(p instanceof PairedOpen, 'expected a pairing');
  return p;
}

test('pairing: same ports on both sides pair with no mapping, lookups are the identity', () => {
  const a = new ActiveOpenPairing();
  assert.equal(a.offerPrimarySyn(syn(40000, 1000, 500), 0), null);
  assert.equal(a.pendingCount, 1);
  const p = pair(a.offerSecondarySyn(syn(40000, 7000, 90), 1));
  assert.deepEqual(
    [p.ipVersion, p.remotePort, p.primaryPort, p.secondaryPort, p.primaryIsn, p.secondaryIsn, p.primaryTsVal, p.secondaryTsVal],
    [4, 443, 40000, 40000, 1000, 7000, 500, 90],
  );
  assert.deepEqual(Array.from(p.guestAddress), [10, 0, 0, 1]);
  assert.deepEqual(Array.from(p.remoteAddress), [192, 0, 2, 7]);
  assert.equal(a.pendingCount, 0);
  assert.equal(a.mappingCount, 0);
  assert.equal(a.primaryPortOf(fromGuest(40000)), 40000);
  assert.equal(a.secondaryPortOf(toGuest(40000)), 40000);
  const t = new SequenceTranslation();
  learnFromPairedOpen(t, p);
  assert.deepEqual([t.known, t.seqOffset, t.tsOffset, t.primaryPort, t.secondaryPort], [true, 6000, 2 ** 32 - 410, -1, -1]);
});

test('pairing: different ports give a mapping used by both lookups, and the translation end to end', () => {
  const a = new ActiveOpenPairing();
  assert.equal(a.offerSecondarySyn(syn(50000, 0xfffffff0, 100), 0), null);
  const p = pair(a.offerPrimarySyn(syn(40000, 0x10, 5000), 2));
  assert.deepEqual([p.primaryPort, p.secondaryPort, p.primaryIsn, p.secondaryIsn], [40000, 50000, 0x10, 0xfffffff0]);
  assert.equal(a.mappingCount, 1);
  assert.equal(a.primaryPortOf(fromGuest(50000)), 40000);
  assert.equal(a.secondaryPortOf(toGuest(40000)), 50000);
  // Other flows keep their ports: another remote port, another remote address, the other direction.
  assert.equal(a.primaryPortOf(fromGuest(50000, 444)), 50000);
  assert.equal(a.primaryPortOf(fromGuest(50000, 443, '192.0.2.8')), 50000);
  assert.equal(a.secondaryPortOf(toGuest(50000)), 50000);
  // A mapping is per protocol: UDP between the same ports is another flow.
  assert.equal(a.primaryPortOf(decoded(emitUdp({ src: GUEST, dst: REMOTE, srcPort: 50000, dstPort: 443 }))), 50000);

  const t = new SequenceTranslation();
  learnFromPairedOpen(t, p);
  assert.deepEqual([t.seqOffset, t.tsOffset, t.primaryPort, t.secondaryPort], [0xffffffe0, 2 ** 32 - 4900, 40000, 50000]);
  // The remote's SYN-ACK to the PVM's SYN, as mirrored to the SVM.
  const synAck = decoded(emitTcp({ src: REMOTE, dst: GUEST, srcPort: 443, dstPort: 40000, seq: 77, ack: 0x11, flags: TCP_SYN | TCP_ACK, options: { timestamp: [3, 5000] } }));
  assert.equal(translateClientToSecondary(synAck, t), true);
  const c = synAck.transport as TcpView;
  assert.deepEqual([c.dstPort, c.ack, c.tsEcr], [50000, 0xfffffff1, 100]);
  assert.ok(c.verifyChecksum(pseudoSumV4(synAck.bytes, 14, 6, c.segmentLength)));
  // The SVM's next segment, mapped for comparison.
  const out = decoded(emitTcp({ src: GUEST, dst: REMOTE, srcPort: 50000, dstPort: 443, seq: 0xfffffff1, ack: 78, flags: TCP_ACK, options: { timestamp: [101, 3] } }));
  assert.equal(mapSecondaryToPrimary(out, t), true);
  const s = out.transport as TcpView;
  assert.deepEqual([s.srcPort, s.seq, s.ack, s.tsVal, s.tsEcr], [40000, 0x11, 78, 5001, 3]);
  assert.ok(s.verifyChecksum(pseudoSumV4(out.bytes, 14, 6, s.segmentLength)));

  assert.equal(a.forget(p), true);
  assert.equal(a.forget(p), false);
  assert.equal(a.mappingCount, 0);
  assert.equal(a.primaryPortOf(fromGuest(50000)), 50000);
});

test('pairing: two concurrent opens to one destination pair in arrival order', () => {
  const a = new ActiveOpenPairing();
  assert.equal(a.offerPrimarySyn(syn(40000, 1), 0), null);
  assert.equal(a.offerPrimarySyn(syn(40001, 2), 0), null);
  const first = pair(a.offerSecondarySyn(syn(50007, 11), 1));
  const second = pair(a.offerSecondarySyn(syn(50003, 12), 1));
  assert.deepEqual([first.primaryPort, first.secondaryPort, first.primaryIsn, first.secondaryIsn], [40000, 50007, 1, 11]);
  assert.deepEqual([second.primaryPort, second.secondaryPort, second.primaryIsn, second.secondaryIsn], [40001, 50003, 2, 12]);
  assert.equal(a.primaryPortOf(fromGuest(50007)), 40000);
  assert.equal(a.primaryPortOf(fromGuest(50003)), 40001);
  assert.equal(a.secondaryPortOf(toGuest(40001)), 50003);
  // Interleaved, SVM first.
  const b = new ActiveOpenPairing();
  assert.equal(b.offerSecondarySyn(syn(50000, 21), 0), null);
  assert.equal(b.offerSecondarySyn(syn(50001, 22), 0), null);
  assert.equal(pair(b.offerPrimarySyn(syn(40000, 31), 0)).secondaryPort, 50000);
  assert.equal(b.offerSecondarySyn(syn(50002, 23), 0), null);
  assert.equal(pair(b.offerPrimarySyn(syn(40001, 32), 0)).secondaryPort, 50001);
  assert.equal(pair(b.offerPrimarySyn(syn(40002, 33), 0)).secondaryPort, 50002);
  assert.equal(b.pendingCount, 0);
});

test('pairing: a waiting SYN with the same port is taken before older ones', () => {
  const a = new ActiveOpenPairing();
  a.offerPrimarySyn(syn(40000, 1), 0);
  a.offerPrimarySyn(syn(40001, 2), 0);
  const p = pair(a.offerSecondarySyn(syn(40001, 12), 1));
  assert.deepEqual([p.primaryPort, p.secondaryPort, p.primaryIsn], [40001, 40001, 2]);
  assert.equal(a.mappingCount, 0);
  assert.equal(pair(a.offerSecondarySyn(syn(50000, 11), 1)).primaryPort, 40000);
});

test('pairing: only SYNs to the same destination, guest and IP version pair', () => {
  const a = new ActiveOpenPairing();
  a.offerPrimarySyn(syn(40000, 1, -1, 443), 0);
  assert.equal(a.offerSecondarySyn(syn(40000, 2, -1, 80), 0), null);
  assert.equal(a.offerSecondarySyn(syn(40000, 3, -1, 443, '192.0.2.8'), 0), null);
  assert.equal(a.offerSecondarySyn(syn(40000, 4, -1, 443, REMOTE, '10.0.0.2'), 0), null);
  const v6 = (isn: number): Frame => decoded(emitTcp({ src: '::ffff:10.0.0.1', dst: '::ffff:192.0.2.7', srcPort: 40000, dstPort: 443, seq: isn, ack: 0, flags: TCP_SYN }));
  assert.equal(a.offerSecondarySyn(v6(5), 0), null);
  assert.equal(a.pendingCount, 5);
  const p = pair(a.offerPrimarySyn(v6(6), 0));
  assert.deepEqual([p.ipVersion, p.primaryIsn, p.secondaryIsn, p.guestAddress.length], [6, 6, 5, 16]);
  assert.equal(pair(a.offerSecondarySyn(syn(40000, 7, -1, 443), 0)).primaryIsn, 1);
});

test('pairing: IPv6 mappings are looked up by address', () => {
  const a = new ActiveOpenPairing();
  const frame = (src: string, dst: string, srcPort: number, dstPort: number, flags: number): Frame =>
    decoded(emitTcp({ src, dst, srcPort, dstPort, seq: 1, ack: 0, flags }));
  a.offerPrimarySyn(frame('fd00::1', 'fd00::9', 40000, 443, TCP_SYN), 0);
  pair(a.offerSecondarySyn(frame('fd00::1', 'fd00::9', 50000, 443, TCP_SYN), 0));
  assert.equal(a.primaryPortOf(frame('fd00::1', 'fd00::9', 50000, 443, TCP_ACK)), 40000);
  assert.equal(a.secondaryPortOf(frame('fd00::9', 'fd00::1', 443, 40000, TCP_ACK)), 50000);
  assert.equal(a.primaryPortOf(frame('fd00::1', 'fd00::8', 50000, 443, TCP_ACK)), 50000);
  assert.equal(a.primaryPortOf(frame('10.0.0.1', '10.0.0.9', 50000, 443, TCP_ACK)), 50000);
});

test('pairing: unpaired SYNs expire by the caller time', () => {
  const a = new ActiveOpenPairing({ pendingTimeout: 100 });
  a.offerPrimarySyn(syn(40000, 1), 0);
  a.offerPrimarySyn(syn(40001, 2), 50);
  assert.equal(a.expire(100), 0);
  assert.equal(a.pendingCount, 2);
  // At 101 the first has waited longer than 100; the SVM's SYN pairs with the second.
  const p = pair(a.offerSecondarySyn(syn(50000, 3), 101));
  assert.equal(p.primaryPort, 40001);
  assert.equal(a.expiredSyns, 1);
  a.offerSecondarySyn(syn(50001, 4), 200);
  assert.equal(a.expire(300), 0);
  assert.equal(a.expire(301), 1);
  assert.equal(a.pendingCount, 0);
  assert.equal(a.offerPrimarySyn(syn(40002, 5), 302), null);
  assert.equal(a.expiredSyns, 2);
});

test('pairing: retransmitted SYNs replace the waiting one or are ignored once mapped', () => {
  const a = new ActiveOpenPairing();
  a.offerPrimarySyn(syn(40000, 1, 10), 0);
  a.offerPrimarySyn(syn(40000, 2, 20), 1000);
  assert.equal(a.pendingCount, 1);
  const p = pair(a.offerSecondarySyn(syn(50000, 9), 1001));
  assert.deepEqual([p.primaryIsn, p.primaryTsVal], [2, 20]);
  assert.equal(a.offerPrimarySyn(syn(40000, 2, 20), 2000), null);
  assert.equal(a.offerSecondarySyn(syn(50000, 9), 2000), null);
  assert.equal(a.pendingCount, 0);
  assert.equal(a.mappingCount, 1);
  // Not SYNs: ignored.
  assert.equal(a.offerPrimarySyn(fromGuest(40005), 0), null);
  assert.equal(a.offerPrimarySyn(decoded(emitTcp({ src: GUEST, dst: REMOTE, srcPort: 40006, dstPort: 443, seq: 1, ack: 1, flags: TCP_SYN | TCP_ACK })), 0), null);
  assert.equal(a.pendingCount, 0);
});

test('pairing: bounds on waiting SYNs and mappings drop the oldest; clear forgets everything', () => {
  const a = new ActiveOpenPairing({ maxPending: 2, maxMappings: 2 });
  a.offerPrimarySyn(syn(40000, 1), 0);
  a.offerPrimarySyn(syn(40001, 2), 0);
  a.offerPrimarySyn(syn(40002, 3), 0);
  assert.equal(a.pendingCount, 2);
  assert.equal(a.evictedSyns, 1);
  assert.equal(pair(a.offerSecondarySyn(syn(50001, 4), 0)).primaryPort, 40001);
  assert.equal(pair(a.offerSecondarySyn(syn(50002, 5), 0)).primaryPort, 40002);
  a.offerPrimarySyn(syn(40003, 6), 0);
  pair(a.offerSecondarySyn(syn(50003, 7), 0));
  assert.equal(a.mappingCount, 2);
  assert.equal(a.evictedMappings, 1);
  assert.equal(a.primaryPortOf(fromGuest(50001)), 50001);
  assert.equal(a.primaryPortOf(fromGuest(50003)), 40003);
  a.offerPrimarySyn(syn(40009, 8), 0);
  a.clear();
  assert.deepEqual([a.pendingCount, a.mappingCount], [0, 0]);
  assert.equal(a.primaryPortOf(fromGuest(50003)), 50003);
  assert.throws(() => new ActiveOpenPairing({ maxPending: 0 }), RangeError);
  assert.throws(() => new ActiveOpenPairing({ maxMappings: 1.5 }), RangeError);
  assert.throws(() => new ActiveOpenPairing({ pendingTimeout: Number.NaN }), RangeError);
  assert.doesNotThrow(() => new ActiveOpenPairing({ pendingTimeout: 0.25 }));
});

/** A guest UDP datagram from `port` to REMOTE:53, or the reply to it. */
function datagram(port: number, reply = false, remote = REMOTE): Frame {
  return decoded(reply
    ? emitUdp({ src: remote, dst: GUEST, srcPort: 53, dstPort: port, payload: new Uint8Array(8) })
    : emitUdp({ src: GUEST, dst: remote, srcPort: port, dstPort: 53, payload: new Uint8Array(8) }));
}

test('pairing: first UDP datagrams pair like SYNs, and their mapping is UDP only', () => {
  const a = new ActiveOpenPairing();
  assert.equal(a.offerPrimaryDatagram(datagram(33000), 0), null);
  assert.equal(a.offerPrimaryDatagram(datagram(33001), 0), null);
  // A TCP SYN to the same destination port does not take a waiting datagram.
  assert.equal(a.offerSecondarySyn(syn(44000, 1, -1, 53), 0), null);
  const first = pair(a.offerSecondaryDatagram(datagram(44001), 1));
  const second = pair(a.offerSecondaryDatagram(datagram(44002), 1));
  assert.deepEqual([first.protocol, first.primaryPort, first.secondaryPort, first.primaryIsn, first.primaryTsVal], [17, 33000, 44001, 0, -1]);
  assert.deepEqual([second.primaryPort, second.secondaryPort], [33001, 44002]);
  assert.equal(a.primaryPortOf(datagram(44001)), 33000);
  assert.equal(a.secondaryPortOf(datagram(33001, true)), 44002);
  // The same ports over TCP, or to another remote, keep their own.
  assert.equal(a.primaryPortOf(fromGuest(44001, 53)), 44001);
  assert.equal(a.primaryPortOf(datagram(44001, false, '192.0.2.8')), 44001);
  // Offers of anything else are refused.
  assert.equal(a.offerPrimaryDatagram(fromGuest(33005, 53), 2), null);
  assert.equal(a.offerSecondarySyn(datagram(44005), 2), null);
});

test('pairing: a flow both guests send on from the same port pairs with no mapping', () => {
  const a = new ActiveOpenPairing();
  assert.equal(a.offerSecondaryDatagram(datagram(53000), 0), null);
  const p = pair(a.offerPrimaryDatagram(datagram(53000), 0));
  assert.equal(p.primaryPort, p.secondaryPort);
  assert.equal(a.mappingCount, 0);
  assert.equal(a.pendingCount, 0);
});

test('pairing: a datagram offered as resumed passes its port\'s mapping, and its pairing replaces the mappings of both ports', () => {
  const a = new ActiveOpenPairing();
  a.offerPrimaryDatagram(datagram(33000), 0);
  assert.equal(pair(a.offerSecondaryDatagram(datagram(44000), 0)).replaced, false);
  a.offerPrimaryDatagram(datagram(33001), 0);
  pair(a.offerSecondaryDatagram(datagram(44001), 0));
  // Mapped ports are not offered again, unless as resumed.
  assert.equal(a.offerPrimaryDatagram(datagram(33000), 10), null);
  assert.equal(a.pendingCount, 0);
  assert.equal(a.offerPrimaryDatagram(datagram(33000), 10, 'tag p'), null);
  assert.equal(a.resumedWaiting, 1);
  assert.equal(a.waitingResumed(true, datagram(44009), 33000, 10), true, 'asked with either guest\'s frame to the destination');
  assert.equal(a.waitingResumed(false, datagram(44009), 33000, 10), false, 'the other side');
  assert.equal(a.waitingResumed(true, datagram(33001), 33001, 10), false, 'another port');
  // The SVM's port of the other flow, drawn again for the new one.
  const p = pair(a.offerSecondaryDatagram(datagram(44001), 10, 'tag s'));
  assert.deepEqual([p.primaryPort, p.secondaryPort, p.replaced], [33000, 44001, true]);
  assert.equal(a.waitingResumed(true, datagram(44009), 33000, 10), false, 'paired');
  assert.equal(a.resumedWaiting, 0);
  assert.equal(a.mappingCount, 1, 'both old mappings gone, the new one kept');
  assert.equal(a.primaryPortOf(datagram(44001)), 33000);
  assert.equal(a.primaryPortOf(datagram(44000)), 44000, 'the SVM\'s old port of 33000 is mapped no more');
  assert.equal(a.secondaryPortOf(datagram(33001, true)), 33001, 'nor is the PVM\'s port of the other old flow');
  assert.equal(a.secondaryPortOf(datagram(33000, true)), 44001);
  // A first datagram pairs with a waiting resumed one like any two; the pairing says it replaced.
  assert.equal(a.offerSecondaryDatagram(datagram(44000), 20, 'tag s2'), null);
  assert.equal(a.waitingResumed(false, datagram(33009), 44000, 20), true);
  const q = pair(a.offerPrimaryDatagram(datagram(33002), 20));
  assert.deepEqual([q.primaryPort, q.secondaryPort, q.replaced], [33002, 44000, true]);
  assert.equal(a.primaryPortOf(datagram(44001)), 33000, 'mappings of other ports stay');
  assert.deepEqual(a.droppedResumed, [], 'nothing dropped: every resumed offer paired');
});

test('pairing: a resumed offer takes the oldest waiting twin, never one for having its port; dropped ones leave their tags, resumed ones dropped first', () => {
  const a = new ActiveOpenPairing({ maxPending: 3 });
  // The SVM's first datagrams of two new flows; then the PVM's resumed one from 44001, the port of the second.
  a.offerSecondaryDatagram(datagram(44000), 0);
  a.offerSecondaryDatagram(datagram(44001), 0);
  const p = pair(a.offerPrimaryDatagram(datagram(44001), 0, 'resumed'));
  assert.deepEqual([p.primaryPort, p.secondaryPort], [44001, 44000], 'in order, not by port');
  // Between first datagrams the same port is still taken first.
  a.offerSecondaryDatagram(datagram(46000), 0);
  a.offerSecondaryDatagram(datagram(46001), 0);
  const q = pair(a.offerPrimaryDatagram(datagram(46001), 0));
  assert.deepEqual([q.primaryPort, q.secondaryPort], [46001, 46001]);
  assert.deepEqual([pair(a.offerPrimaryDatagram(datagram(46002), 0)).secondaryPort, pair(a.offerPrimaryDatagram(datagram(46003), 0)).secondaryPort], [44001, 46000]);
  // Expired and evicted resumed offers leave their tags, in the order dropped; first ones none.
  a.offerSecondaryDatagram(datagram(45000), 0, 'expired');
  a.offerSecondaryDatagram(datagram(45001), 5000);
  a.offerSecondaryDatagram(datagram(45002), 5000, 'evicted');
  a.offerSecondaryDatagram(datagram(45003), 5000);
  a.offerSecondaryDatagram(datagram(45004), 5000);
  assert.deepEqual(a.droppedResumed, ['expired', 'evicted'], 'past maxPending, the resumed offer before the older first one');
  a.offerSecondaryDatagram(datagram(45005), 5000);
  assert.deepEqual(a.droppedResumed, ['expired', 'evicted']);
  assert.equal(a.resumedWaiting, 0);
  a.clear();
  assert.deepEqual(a.droppedResumed, []);
});

test('pairing: echo messages pair by identifier, which both lookups then map', () => {
  const a = new ActiveOpenPairing();
  const request = (id: number): Frame => decoded(emitIcmpEcho({ src: GUEST, dst: REMOTE, id, sequence: 1 }));
  assert.equal(a.offerPrimaryDatagram(request(1111), 0), null);
  const p = pair(a.offerSecondaryDatagram(request(2222), 0));
  assert.deepEqual([p.protocol, p.primaryPort, p.secondaryPort, p.remotePort], [1, 1111, 2222, 0]);
  assert.equal(a.primaryPortOf(request(2222)), 1111);
  assert.equal(a.secondaryPortOf(decoded(emitIcmpEcho({ src: REMOTE, dst: GUEST, id: 1111, sequence: 1, reply: true }))), 2222);
  // Not an echo: no port to map.
  assert.equal(a.primaryPortOf(decoded(emitIcmpEcho({ src: GUEST, dst: REMOTE, id: 2222, sequence: 1 }).map((b, i) => (i === 34 ? 3 : b)))), -1);
});

test('pairing keeps its own copy of the addresses: frames that arrive in one reused receive buffer (as live capture hands them) cannot change a mapping', () => {
  const a = new ActiveOpenPairing();
  const receive = Buffer.alloc(2048);
  const received = (f: Frame): Frame => {
    receive.set(f.bytes);
    return decoded(receive.subarray(0, f.bytes.length));
  };
  assert.equal(a.offerPrimarySyn(received(syn(40000, 1000)), 0), null);
  const p = pair(a.offerSecondarySyn(received(syn(50000, 7000)), 1));
  assert.deepEqual([p.primaryPort, p.secondaryPort], [40000, 50000]);
  // The SVM's port 50000 talking to another server is another flow: no mapping applies to it.
  assert.equal(a.primaryPortOf(received(fromGuest(50000, 443, '198.51.100.9'))), 50000);
  assert.equal(a.primaryPortOf(received(fromGuest(50000))), 40000);
  assert.deepEqual(Array.from(p.remoteAddress), [192, 0, 2, 7]);
});
