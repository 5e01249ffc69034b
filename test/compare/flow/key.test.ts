import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Frame, FrameDecoder, decodeFrame, emitArp, emitIcmpEcho, emitTcp, emitUdp, TCP_ACK } from '../../../compare/index.js';
import { FlowKeys, SECONDARY_APART_PREFIX, describeKey, flowKey, framesFlowName, tupleOfKey } from '../../../compare/flow/key.js';

function frame(bytes: Uint8Array): Frame {
  const f = decodeFrame(bytes);
  assert.ok(f instanceof Frame, String(f));
  return f;
}

// Guest output (guest is the source) and the matching client frame (guest is the destination).
const pairs: [string, Uint8Array, Uint8Array][] = [
  ['tcp4', emitTcp({ src: '10.0.0.2', dst: '192.168.7.1', srcPort: 80, dstPort: 40000, seq: 1, ack: 1, flags: TCP_ACK }), emitTcp({ src: '192.168.7.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80, seq: 1, ack: 1, flags: TCP_ACK })],
  ['udp6', emitUdp({ src: 'fd00::2', dst: 'fd00::1:7', srcPort: 53, dstPort: 5353, payload: 'x' }), emitUdp({ src: 'fd00::1:7', dst: 'fd00::2', srcPort: 5353, dstPort: 53 })],
  ['icmp4 echo', emitIcmpEcho({ src: '10.0.0.2', dst: '10.0.0.1', id: 77, sequence: 1, reply: true }), emitIcmpEcho({ src: '10.0.0.1', dst: '10.0.0.2', id: 77, sequence: 1 })],
  ['icmpv6 echo', emitIcmpEcho({ src: 'fd00::2', dst: 'fd00::1', id: 9, sequence: 1, reply: true }), emitIcmpEcho({ src: 'fd00::1', dst: 'fd00::2', id: 9, sequence: 1 })],
];

test('both directions of a flow meet under one key', () => {
  for (const [name, out, into] of pairs) assert.equal(flowKey(frame(out), true), flowKey(frame(into), false), name);
});

test('different flows get different keys', () => {
  const keys = pairs.map(([, out]) => flowKey(frame(out), true));
  assert.equal(new Set(keys).size, keys.length);
  const other = emitTcp({ src: '10.0.0.2', dst: '192.168.7.1', srcPort: 80, dstPort: 40001, seq: 1, ack: 1, flags: TCP_ACK });
  assert.notEqual(flowKey(frame(other), true), keys[0]);
});

test('describeKey names the flow, guest first, from either direction\'s key', () => {
  const expected = ['tcp 10.0.0.2:80 <> 192.168.7.1:40000', 'udp [fd00::2]:53 <> [fd00::1:7]:5353', 'icmp id 77 10.0.0.2 <> 10.0.0.1', 'icmpv6 id 9 [fd00::2] <> [fd00::1]'];
  pairs.forEach(([name, out, into], i) => {
    assert.equal(describeKey(flowKey(frame(out), true)), expected[i], name);
    assert.equal(describeKey(flowKey(frame(into), false)), expected[i], `${name} (client side)`);
  });
});

test('describeKey names a flow the SVM opened keyed apart (translate mode, crossed ports); framesFlowName gives the name its frames have', () => {
  pairs.slice(0, 3).forEach(([name, out]) => {
    const plain = describeKey(flowKey(frame(out), true));
    const apart = describeKey(SECONDARY_APART_PREFIX + flowKey(frame(out), true));
    assert.equal(apart, `${plain} (the SVM's new flow on this port, not paired yet)`, name);
    assert.equal(framesFlowName(apart), plain, name);
    assert.equal(framesFlowName(plain), plain, name);
  });
});

test('ARP is keyed by operation and target address (guest output only: client ARP is delivered, never compared)', () => {
  const key = (operation: number, targetIp: string) => flowKey(frame(emitArp({ senderIp: '10.0.0.2', targetIp, operation })), true);
  assert.equal(key(1, '10.0.0.5'), key(1, '10.0.0.5'));
  assert.equal(new Set([key(1, '10.0.0.5'), key(1, '10.0.0.6'), key(2, '10.0.0.5')]).size, 3);
  assert.deepEqual([key(1, '10.0.0.5'), key(2, '10.0.0.1'), key(3, '10.0.0.9')].map(describeKey), ['arp request for 10.0.0.5', 'arp reply to 10.0.0.1', 'arp op 3 target 10.0.0.9']);
});

test('a guest port override keys the SVM under the PVM\'s port', () => {
  const svm = frame(emitTcp({ src: '10.0.0.2', dst: '192.168.7.1', srcPort: 44000, dstPort: 443, seq: 1, ack: 1, flags: TCP_ACK }));
  const pvm = frame(emitTcp({ src: '10.0.0.2', dst: '192.168.7.1', srcPort: 33000, dstPort: 443, seq: 1, ack: 1, flags: TCP_ACK }));
  assert.equal(flowKey(svm, true, 33000), flowKey(pvm, true));
});

test('FlowKeys gives flowKey\'s key, and for IPv4 the tuple it encodes, for every frame of a mixed sequence, repeated or not', () => {
  const hosts = ['10.0.0.2', '10.0.0.1', '192.168.7.1', '255.255.255.254'];
  const hosts6 = ['fd00::2', 'fd00::1'];
  const frameArb = fc.record({
    kind: fc.constantFrom('tcp', 'udp', 'icmp', 'icmpv6', 'udp6', 'arp'),
    a: fc.nat(3), b: fc.nat(3), p: fc.constantFrom(0, 1, 80, 40000, 65535), q: fc.constantFrom(0, 80, 65535),
    guestIsSource: fc.boolean(), guestPort: fc.constantFrom(-1, 0, 33000, 65535), repeat: fc.nat(2),
  });
  const build = (x: { kind: string; a: number; b: number; p: number; q: number }): Uint8Array => {
    const src = hosts[x.a]!;
    const dst = hosts[x.b]!;
    if (x.kind === 'tcp') return emitTcp({ src, dst, srcPort: x.p, dstPort: x.q, seq: 1, ack: 1, flags: TCP_ACK });
    if (x.kind === 'udp') return emitUdp({ src, dst, srcPort: x.p, dstPort: x.q });
    if (x.kind === 'icmp') return emitIcmpEcho({ src, dst, id: x.p, sequence: 1 });
    if (x.kind === 'icmpv6') return emitIcmpEcho({ src: hosts6[x.a & 1]!, dst: hosts6[x.b & 1]!, id: x.p, sequence: 1 });
    if (x.kind === 'udp6') return emitUdp({ src: hosts6[x.a & 1]!, dst: hosts6[x.b & 1]!, srcPort: x.p, dstPort: x.q });
    return emitArp({ senderIp: src, targetIp: dst });
  };
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 30 }), (xs) => {
      const keys = new FlowKeys();
      const decoder = new FrameDecoder();
      for (const x of xs) {
        const bytes = build(x);
        for (let i = 0; i <= x.repeat; i++) {
          const f = decoder.decode(bytes);
          assert.ok(f instanceof Frame);
          const key = flowKey(frame(bytes), x.guestIsSource, x.guestPort);
          assert.equal(keys.of(f, x.guestIsSource, x.guestPort), key);
          // The tuple (IPv4 only) is the one the key encodes, so the table's tuple index and key agree.
          const isIpv4 = keys.tuple(f, x.guestIsSource, x.guestPort);
          assert.deepEqual(isIpv4 ? [keys.tupleProtocol, keys.tupleGuest, keys.tupleRemote, keys.tuplePorts] : undefined, tupleOfKey(key));
        }
      }
    }),
    { numRuns: 300 },
  );
});
