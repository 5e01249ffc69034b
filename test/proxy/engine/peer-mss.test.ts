/**
 * The client's MSS, learned from its SYN or SYN-ACK, bounds the segments `run` cuts from a guest's
 * offload frames on that connection, less the TCP options each segment carries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_SYN, type TcpView } from '../../../compare/index.js';
import { emitTcp } from '../../../compare/wire/emit.js';
import { PeerMss } from '../../../proxy/engine/peer-mss.js';
import { decoded } from '../../support/decoded.js';

const GUEST = '10.0.0.2';
const CLIENT = '10.0.0.1';

function limitOf(m: PeerMss, bytes: Uint8Array): number {
  const f = decoded(bytes);
  assert.equal(f.transport?.kind, 'tcp');
  return m.limit(f, f.transport as TcpView);
}

const guestData = (clientPort: number, timestamps: boolean): Uint8Array => emitTcp({
  src: GUEST, dst: CLIENT, srcPort: 80, dstPort: clientPort, seq: 1, ack: 1, flags: TCP_ACK, payload: 'x',
  ...(timestamps ? { options: { timestamp: [1, 2] as [number, number] } } : {}),
});

test('peer MSS: the client SYN\'s MSS bounds its connection, less the options of the segment', () => {
  const m = new PeerMss();
  m.observe(decoded(emitTcp({ src: CLIENT, dst: GUEST, srcPort: 40000, dstPort: 80, seq: 5, ack: 0, flags: TCP_SYN, options: { mss: 1200, timestamp: [9, 0] } })));
  assert.equal(limitOf(m, guestData(40000, true)), 1188);
  assert.equal(limitOf(m, guestData(40000, false)), 1200);
  assert.equal(limitOf(m, guestData(40001, true)), Infinity, 'another connection: no limit known');
});

test('peer MSS: learned from a SYN-ACK too (the guest opened the connection); frames without an MSS teach nothing', () => {
  const m = new PeerMss();
  m.observe(decoded(emitTcp({ src: CLIENT, dst: GUEST, srcPort: 80, dstPort: 50000, seq: 5, ack: 2, flags: TCP_SYN | TCP_ACK, options: { mss: 1360 } })));
  m.observe(decoded(emitTcp({ src: CLIENT, dst: GUEST, srcPort: 40000, dstPort: 80, seq: 5, ack: 0, flags: TCP_SYN })));
  m.observe(decoded(emitTcp({ src: CLIENT, dst: GUEST, srcPort: 40001, dstPort: 80, seq: 5, ack: 1, flags: TCP_ACK, options: { mss: 100 } })));
  const fromGuest = emitTcp({ src: GUEST, dst: CLIENT, srcPort: 50000, dstPort: 80, seq: 1, ack: 1, flags: TCP_ACK, payload: 'x' });
  assert.equal(limitOf(m, fromGuest), 1360);
  assert.equal(limitOf(m, guestData(40000, false)), Infinity, 'a SYN without the option');
  assert.equal(limitOf(m, guestData(40001, false)), Infinity, 'an MSS option outside a SYN is not one');
});
