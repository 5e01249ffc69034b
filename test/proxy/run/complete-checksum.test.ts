/**
 * ChecksumCompleter: a TCP or UDP frame whose checksum field holds only the pseudo-header sum
 * (what a sender with checksum offload hands its tap) gets its full checksum; a complete one,
 * a fragment-free frame without a transport checksum and a non-IP frame are left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emitArp, emitTcp, emitUdp, pseudoSumV4, pseudoSumV6, readU16, writeU16, TCP_ACK, TCP_PSH } from '../../../compare/index.js';
import { ChecksumCompleter } from '../../../proxy/engine/complete-checksum.js';

const ETH = 14;

/** Replaces the frame's transport checksum with the pseudo-header sum, as Linux's CHECKSUM_PARTIAL leaves it. */
function partial(frame: Uint8Array, v6: boolean, tcp: boolean): Uint8Array {
  const copy = frame.slice();
  const ipLen = v6 ? 40 : 20;
  const at = ETH + ipLen;
  const length = copy.length - at;
  const pseudo = v6 ? pseudoSumV6(copy, ETH, tcp ? 6 : 17, length) : pseudoSumV4(copy, ETH, tcp ? 6 : 17, length);
  writeU16(copy, at + (tcp ? 16 : 6), pseudo);
  return copy;
}

for (const v6 of [false, true]) {
  const [src, dst] = v6 ? ['fd77::2', 'fd77::1'] : ['10.77.0.2', '10.77.0.1'];
  test(`TCP and UDP over IPv${v6 ? 6 : 4}: partial checksums completed, complete ones untouched`, () => {
    const c = new ChecksumCompleter();
    const tcp = emitTcp({ src, dst, srcPort: 8080, dstPort: 40000, seq: 1, ack: 2, flags: TCP_ACK | TCP_PSH, payload: 'hello, twin' });
    const udp = emitUdp({ src, dst, srcPort: 7, dstPort: 5353, payload: 'echo echo' });
    for (const [frame, isTcp] of [[tcp, true], [udp, false]] as const) {
      const p = partial(frame, v6, isTcp);
      assert.notDeepEqual(p, frame);
      assert.equal(c.complete(p), true);
      assert.deepEqual(p, frame, 'the completed checksum is the one the emitter computed');
      const again = frame.slice();
      assert.equal(c.complete(again), false);
      assert.deepEqual(again, frame);
    }
    assert.equal(c.completed, 2);
  });
}

test('UDP over IPv4 without a checksum and non-IP frames are left alone', () => {
  const c = new ChecksumCompleter();
  const udp = emitUdp({ src: '10.77.0.2', dst: '10.77.0.1', srcPort: 7, dstPort: 5353, payload: 'x' });
  writeU16(udp, ETH + 20 + 6, 0);
  assert.equal(c.complete(udp), false);
  assert.equal(readU16(udp, ETH + 20 + 6), 0);
  const arp = emitArp({ senderIp: '10.77.0.2', targetIp: '10.77.0.1' });
  assert.equal(c.complete(arp), false);
});
