// Translate mode: a guest's ICMP error quotes the client packet as that guest received it, and the
// SVM received it rewritten by the core (its own port, ACK, SACK, timestamp echo, checksums). The
// two guests' errors are the same output when they differ only there, and still differ when the
// guests chose another error or quoted another packet.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_SYN } from '../../compare/index.js';
import { writeU16 } from '../../compare/wire/bytes.js';
import { fillIpv4HeaderChecksum, internetChecksum } from '../../compare/wire/checksum.js';
import { emitUdp, parseIpv4 } from '../../compare/wire/emit.js';
import { CLIENT, GUEST, Twins } from '../support/twins.js';

const SERVER = '192.0.2.53';

/** An ICMPv4 error of `type`/`code` from the guest to `dst`, quoting the first `quote` bytes of `received`'s IP packet. */
function icmpError(dst: string, type: number, code: number, received: Uint8Array, quote: number): Uint8Array {
  const quoted = received.subarray(14, 14 + quote);
  const icmpLength = 8 + quoted.length;
  const b = new Uint8Array(14 + 20 + icmpLength);
  b.set(received.subarray(0, 6), 6);
  b.set(received.subarray(6, 12), 0);
  writeU16(b, 12, 0x0800);
  b[14] = 0x45;
  writeU16(b, 16, 20 + icmpLength);
  b[22] = 64;
  b[23] = 1;
  const v = new DataView(b.buffer);
  v.setUint32(26, parseIpv4(GUEST));
  v.setUint32(30, parseIpv4(dst));
  fillIpv4HeaderChecksum(b, 14);
  b[34] = type;
  b[35] = code;
  b.set(quoted, 42);
  writeU16(b, 36, internetChecksum(b, 34, icmpLength));
  return b;
}

/** A guest-opened UDP flow to SERVER:53, the PVM from port 33000 and the SVM from 44000, and a late answer delivered to both. */
function pairedLateAnswer(t: Twins): { toPvm: Uint8Array; toSvm: Uint8Array } {
  t.primary(emitUdp({ src: GUEST, dst: SERVER, srcPort: 33000, dstPort: 53, payload: 'q' }));
  t.secondary(emitUdp({ src: GUEST, dst: SERVER, srcPort: 44000, dstPort: 53, payload: 'q' }));
  t.client(emitUdp({ src: SERVER, dst: GUEST, srcPort: 53, dstPort: 33000, payload: 'late answer' }));
  return { toPvm: t.delivered('primary').at(-1)!, toSvm: t.delivered('secondary').at(-1)! };
}

describe('translate mode: guests\' ICMP errors quoting client packets the core rewrote for the SVM', () => {
  test('port unreachable for a late answer to a paired UDP flow: the same output', () => {
    for (const quote of [28, 20 + 8 + 11]) {
      const t = new Twins({ mode: 'translate' });
      const { toPvm, toSvm } = pairedLateAnswer(t);
      t.primary(icmpError(SERVER, 3, 3, toPvm, quote));
      t.secondary(icmpError(SERVER, 3, 3, toSvm, quote));
      assert.deepEqual(t.mismatchReasons(), [], `quote of ${quote} bytes`);
      assert.equal(t.released().length, 2);
    }
  });

  test('an error quoting a client TCP segment whose ACK, timestamps and checksum were translated: the same output', () => {
    const t = new Twins({ mode: 'translate' });
    const opts = { mss: 1460, timestamp: [1, 0] as [number, number] };
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: opts }));
    t.primary(t.out({ seq: 1000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, timestamp: [100, 1] } }));
    t.secondary(t.out({ seq: 900_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, timestamp: [70_000, 1] } }));
    t.client(t.in({ seq: 5000, ack: 1001, flags: TCP_ACK, options: { timestamp: [2, 100] }, payload: 'GET /' }));
    const toPvm = t.delivered('primary').at(-1)!, toSvm = t.delivered('secondary').at(-1)!;
    assert.notDeepEqual(toPvm, toSvm, 'the SVM got the segment translated');
    t.primary(icmpError(CLIENT, 3, 13, toPvm, 60));
    t.secondary(icmpError(CLIENT, 3, 13, toSvm, 60));
    assert.deepEqual(t.mismatchReasons(), []);
  });

  test('another error, or another packet quoted, is still an icmp.payload mismatch', () => {
    const code = new Twins({ mode: 'translate' });
    const a = pairedLateAnswer(code);
    code.primary(icmpError(SERVER, 3, 3, a.toPvm, 28));
    code.secondary(icmpError(SERVER, 3, 1, a.toSvm, 28));
    assert.deepEqual(code.mismatchReasons(), ['icmp.payload'], 'port against host unreachable');

    const packet = new Twins({ mode: 'translate' });
    const b = pairedLateAnswer(packet);
    const other = emitUdp({ src: SERVER, dst: GUEST, srcPort: 53, dstPort: 44000, payload: 'other answer' });
    packet.primary(icmpError(SERVER, 3, 3, b.toPvm, 20 + 8 + 11));
    packet.secondary(icmpError(SERVER, 3, 3, other, 20 + 8 + 11));
    assert.deepEqual(packet.mismatchReasons(), ['icmp.payload'], 'a different datagram quoted');
  });
});
