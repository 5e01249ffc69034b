// Translate mode and ICMP errors, both ways. A guest's error quotes the client packet as that guest
// received it, and the SVM received it rewritten by the core (its own port, ACK, SACK, timestamp
// echo, checksums): the two guests' errors are the same output when they differ only there, and
// still differ when the guests chose another error or quoted another packet. An error from the
// client's side about a guest's packet quotes the PVM's: the SVM must get it quoting its own port
// and sequence number, or its socket never learns of it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_SYN } from '../../compare/index.js';
import { readU16, readU32, writeU16 } from '../../compare/wire/bytes.js';
import { fillIpv4HeaderChecksum, internetChecksum, onesSum } from '../../compare/wire/checksum.js';
import { emitIcmpEcho, emitTcp, emitUdp, parseIpv4 } from '../../compare/wire/emit.js';
import { CLIENT, GUEST, Twins } from '../support/twins.js';

const SERVER = '192.0.2.53';

/** An ICMPv4 error of `type`/`code` from `src` to `dst`, quoting the first `quote` bytes of `about`'s IP packet. */
function icmpError(src: string, dst: string, type: number, code: number, about: Uint8Array, quote: number, rest = 0): Uint8Array {
  const quoted = about.subarray(14, 14 + quote);
  const icmpLength = 8 + quoted.length;
  const b = new Uint8Array(14 + 20 + icmpLength);
  b.set(about.subarray(0, 6), 6);
  b.set(about.subarray(6, 12), 0);
  writeU16(b, 12, 0x0800);
  b[14] = 0x45;
  writeU16(b, 16, 20 + icmpLength);
  b[22] = 64;
  b[23] = 1;
  const v = new DataView(b.buffer);
  v.setUint32(26, parseIpv4(src));
  v.setUint32(30, parseIpv4(dst));
  fillIpv4HeaderChecksum(b, 14);
  b[34] = type;
  b[35] = code;
  v.setUint32(38, rest);
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
      t.primary(icmpError(GUEST, SERVER, 3, 3, toPvm, quote));
      t.secondary(icmpError(GUEST, SERVER, 3, 3, toSvm, quote));
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
    t.primary(icmpError(GUEST, CLIENT, 3, 13, toPvm, 60));
    t.secondary(icmpError(GUEST, CLIENT, 3, 13, toSvm, 60));
    assert.deepEqual(t.mismatchReasons(), []);
  });

  test('another error, or another packet quoted, is still an icmp.payload mismatch', () => {
    const code = new Twins({ mode: 'translate' });
    const a = pairedLateAnswer(code);
    code.primary(icmpError(GUEST, SERVER, 3, 3, a.toPvm, 28));
    code.secondary(icmpError(GUEST, SERVER, 3, 1, a.toSvm, 28));
    assert.deepEqual(code.mismatchReasons(), ['icmp.payload'], 'port against host unreachable');

    const packet = new Twins({ mode: 'translate' });
    const b = pairedLateAnswer(packet);
    const other = emitUdp({ src: SERVER, dst: GUEST, srcPort: 53, dstPort: 44000, payload: 'other answer' });
    packet.primary(icmpError(GUEST, SERVER, 3, 3, b.toPvm, 20 + 8 + 11));
    packet.secondary(icmpError(GUEST, SERVER, 3, 3, other, 20 + 8 + 11));
    assert.deepEqual(packet.mismatchReasons(), ['icmp.payload'], 'a different datagram quoted');
  });
});

/** The quoted guest port and TCP sequence number of an ICMPv4 error (quoted IPv4 header without options). */
function quoted(frame: Uint8Array): { port: number; seq: number } {
  const at = 14 + 20 + 8 + 20;
  return { port: readU16(frame, at), seq: readU32(frame, at + 4) };
}

function icmpChecksumValid(frame: Uint8Array): boolean {
  return onesSum(frame, 34, frame.length - 34) === 0xffff;
}

describe('translate mode: ICMP errors from the client\'s side about guest packets reach the SVM in its own space', () => {
  test('time exceeded about a guest\'s ping, the guests\' identifiers different, quotes the SVM\'s identifier', () => {
    // Linux matches an error to its ping socket by the quoted identifier (ping_err).
    const t = new Twins({ mode: 'translate' });
    const ping = (id: number) => emitIcmpEcho({ src: GUEST, dst: SERVER, id, sequence: 1, payload: 'ping' });
    t.primary(ping(0x1111));
    t.secondary(ping(0x2222));
    const error = icmpError('198.51.100.1', GUEST, 11, 0, ping(0x1111), 28);
    t.client(error);
    assert.deepEqual(t.delivered('primary').at(-1), error, 'the PVM gets it as sent');
    const toSvm = t.delivered('secondary').at(-1)!;
    assert.equal(readU16(toSvm, 14 + 20 + 8 + 20 + 4), 0x2222);
    assert.ok(icmpChecksumValid(toSvm));
    // The same ping from the same identifier on both guests: nothing to map, the error as sent.
    const same = new Twins({ mode: 'translate' });
    same.primary(ping(0x3333));
    same.secondary(ping(0x3333));
    const sameError = icmpError('198.51.100.1', GUEST, 11, 0, ping(0x3333), 28);
    same.client(sameError);
    assert.deepEqual(same.delivered('secondary').at(-1), sameError);
  });

  test('port unreachable about a paired UDP flow quotes the SVM\'s port', () => {
    const t = new Twins({ mode: 'translate' });
    const query = emitUdp({ src: GUEST, dst: SERVER, srcPort: 33000, dstPort: 53, payload: 'q' });
    t.primary(query);
    t.secondary(emitUdp({ src: GUEST, dst: SERVER, srcPort: 44000, dstPort: 53, payload: 'q' }));
    const error = icmpError(SERVER, GUEST, 3, 3, query, 28);
    t.client(error);
    assert.deepEqual(t.delivered('primary').at(-1), error, 'the PVM gets it as sent');
    const toSvm = t.delivered('secondary').at(-1)!;
    assert.equal(quoted(toSvm).port, 44000);
    assert.ok(icmpChecksumValid(toSvm));
  });

  test('port unreachable answering a guest SYN (same ports, other ISNs) and fragmentation needed on a paired connection quote the SVM\'s sequence number and port', () => {
    const t = new Twins({ mode: 'translate' });
    const syn = (port: number, isn: number) => emitTcp({ src: GUEST, dst: SERVER, srcPort: port, dstPort: 8080, seq: isn, ack: 0, flags: TCP_SYN, options: { mss: 1460 } });
    const pvmSyn = syn(33000, 1000);
    t.primary(pvmSyn);
    t.secondary(syn(33000, 900_000));
    t.client(icmpError(SERVER, GUEST, 3, 3, pvmSyn, 28));
    const refused = t.delivered('secondary').at(-1)!;
    assert.deepEqual(quoted(refused), { port: 33000, seq: 900_000 });
    assert.ok(icmpChecksumValid(refused));

    const p = new Twins({ mode: 'translate' });
    const open = (port: number, isn: number) => emitTcp({ src: GUEST, dst: SERVER, srcPort: port, dstPort: 443, seq: isn, ack: 0, flags: TCP_SYN, options: { mss: 1460 } });
    p.primary(open(33000, 1000));
    p.secondary(open(44000, 900_000));
    p.client(emitTcp({ src: SERVER, dst: GUEST, srcPort: 443, dstPort: 33000, seq: 7000, ack: 1001, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } }));
    const data = emitTcp({ src: GUEST, dst: SERVER, srcPort: 33000, dstPort: 443, seq: 1001, ack: 7001, flags: TCP_ACK, payload: 'x'.repeat(1400) });
    p.primary(data);
    p.secondary(emitTcp({ src: GUEST, dst: SERVER, srcPort: 44000, dstPort: 443, seq: 900_001, ack: 7001, flags: TCP_ACK, payload: 'x'.repeat(1400) }));
    p.client(icmpError('192.0.2.1', GUEST, 3, 4, data, 28, 1280));
    const tooBig = p.delivered('secondary').at(-1)!;
    assert.deepEqual(quoted(tooBig), { port: 44000, seq: 900_001 });
    assert.ok(icmpChecksumValid(tooBig));
    assert.deepEqual(p.checkpoints(), []);
  });

  test('an error about a flow whose SVM side is the PVM\'s goes to the SVM as sent', () => {
    const t = new Twins({ mode: 'translate' });
    const query = emitUdp({ src: GUEST, dst: SERVER, srcPort: 33000, dstPort: 53, payload: 'q' });
    t.primary(query);
    t.secondary(query);
    const error = icmpError(SERVER, GUEST, 3, 3, query, 28);
    t.client(error);
    assert.equal(t.delivered('secondary').at(-1), error);
  });
});
