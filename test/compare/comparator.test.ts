// Comparator scenarios, one per situation in COLO-REFERENCE.md §9, written as specifications:
// what the PVM and the SVM send, and what must be released, held, or checkpointed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, createComparator, ConfigError, toHex, type Action, type ActionSink } from '../../compare/index.js';
import { emitArp, emitIcmpEcho, emitTcp, emitUdp, type TcpFields } from '../../compare/wire/emit.js';
import { CLIENT, GUEST, Twins, pattern, payloadText } from '../support/twins.js';
import { split } from '../support/fragments.js';

const ISN = 1_000_000;

describe('TCP: the same bytes, however they are cut, are released without a checkpoint', () => {
  test('identical segmentation, primary first', () => {
    const t = new Twins();
    t.primary(t.out({ seq: ISN, payload: 'hello ' }));
    t.primary(t.out({ seq: ISN + 6, payload: 'world' }));
    assert.deepEqual(t.released(), [], 'nothing is released before the SVM said the same');
    assert.equal(t.c.counters.heldFrames, 2);
    t.secondary(t.out({ seq: ISN, payload: 'hello ' }));
    assert.deepEqual(t.releasedPayloads(), ['hello ']);
    t.secondary(t.out({ seq: ISN + 6, payload: 'world' }));
    assert.deepEqual(t.releasedPayloads(), ['hello ', 'world']);
    assert.deepEqual(t.checkpoints(), []);
    assert.deepEqual([t.c.counters.heldFrames, t.c.counters.primaryFrames, t.c.counters.secondaryFrames, t.c.counters.releasedFrames, t.c.counters.comparedBytes], [0, 2, 2, 2, 11]);
  });

  test('secondary first: the primary is released as it arrives, uncopied', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.secondary(t.out({ seq: ISN, payload: 'abc' }));
    const frame = t.out({ seq: ISN, payload: 'abc' });
    const actions = t.primary(frame);
    const release = actions.find((a) => a.kind === 'release');
    assert.ok(release && release.kind === 'release');
    assert.equal(release.frame, frame, 'the very frame ingested, no copy');
  });

  test('a held primary frame is released as a copy, or with framesImmutable as the very frame ingested', () => {
    for (const framesImmutable of [false, true]) {
      const t = new Twins({ framesImmutable });
      t.established(ISN - 1);
      const frame = t.out({ seq: ISN, payload: 'abc' });
      assert.deepEqual(t.primary(frame), []);
      const release = t.secondary(t.out({ seq: ISN, payload: 'abc' })).find((a) => a.kind === 'release');
      assert.ok(release && release.kind === 'release');
      assert.deepEqual(release.frame, frame);
      assert.equal(release.frame === frame, framesImmutable);
    }
  });

  test('held bytes are copies even when the caller reuses a Node Buffer for every frame (live capture), up to 64 KiB GSO frames', () => {
    for (const size of [100, 9000, 65000]) {
      const t = new Twins();
      t.established(ISN - 1);
      const receive = Buffer.alloc(66000);
      const received = (frame: Uint8Array): Buffer => {
        receive.set(frame);
        return receive.subarray(0, frame.length);
      };
      const data = pattern(0, size);
      const frame = t.out({ seq: ISN, payload: data });
      assert.deepEqual(t.primary(received(frame)), []);
      receive.fill(0xa5); // the next capture overwrites the buffer
      t.secondary(received(t.out({ seq: ISN, payload: data.slice(0, 1448) })));
      t.secondary(received(t.out({ seq: ISN + 1448, payload: data.slice(1448) })));
      assert.deepEqual(t.checkpoints(), [], `${size} bytes`);
      assert.deepEqual(t.released().slice(1), [frame], `${size} bytes (after the SYN-ACK)`);
    }
  });

  test('1 x 1448 against 2 x 724, and the reverse', () => {
    const data = pattern(0, 1448);
    const t = new Twins();
    t.primary(t.out({ seq: ISN, payload: data }));
    t.secondary(t.out({ seq: ISN, payload: data.slice(0, 724) }));
    assert.deepEqual(t.released(), []);
    t.secondary(t.out({ seq: ISN + 724, payload: data.slice(724) }));
    assert.deepEqual(t.releasedPayloads(), [data]);

    const r = new Twins();
    r.primary(r.out({ seq: ISN, payload: data.slice(0, 724) }));
    r.primary(r.out({ seq: ISN + 724, payload: data.slice(724) }));
    r.secondary(r.out({ seq: ISN, payload: data }));
    assert.deepEqual(r.releasedPayloads(), [data.slice(0, 724), data.slice(724)]);
    assert.deepEqual([...t.checkpoints(), ...r.checkpoints()], []);
  });

  test('a 64 KB GSO frame against MSS-sized segments', () => {
    const data = pattern(0, 65000);
    const t = new Twins();
    t.primary(t.out({ seq: ISN, payload: data }));
    for (let at = 0; at < data.length; at += 1448) t.secondary(t.out({ seq: ISN + at, payload: data.slice(at, at + 1448) }));
    assert.deepEqual(t.releasedPayloads(), [data]);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('retransmission of verified bytes, with shifted boundaries straddling the verified point', () => {
    const data = pattern(0, 300);
    const t = new Twins();
    t.primary(t.out({ seq: ISN, payload: data.slice(0, 200) }));
    t.secondary(t.out({ seq: ISN, payload: data.slice(0, 200) }));
    t.primary(t.out({ seq: ISN, payload: data.slice(0, 100) }));
    assert.equal(t.released().length, 2, 'a retransmission of verified bytes goes straight out');
    t.primary(t.out({ seq: ISN + 150, payload: data.slice(150, 300) }));
    assert.equal(t.released().length, 2, 'the part beyond the verified point waits');
    t.secondary(t.out({ seq: ISN + 200, payload: data.slice(200, 300) }));
    assert.deepEqual(t.releasedPayloads().slice(2), [data.slice(150, 300)]);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('out-of-order arrival on both sides', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.primary(t.out({ seq: ISN + 5, payload: 'world' }));
    t.secondary(t.out({ seq: ISN + 5, payload: 'world' }));
    t.secondary(t.out({ seq: ISN, payload: 'hello' }));
    assert.deepEqual(t.releasedPayloads(), [''], 'after the SYN-ACK, the later primary segment waits for the earlier bytes');
    t.primary(t.out({ seq: ISN, payload: 'hello' }));
    assert.deepEqual(t.releasedPayloads(), ['', 'world', 'hello'], 'released in the primary\'s order once verified');
    assert.deepEqual(t.checkpoints(), []);
  });

  test('header noise never counts: IP ID, TTL, TOS, window, timestamps, SACK, padding', () => {
    const t = new Twins();
    t.primary(t.out({ seq: ISN, payload: 'x', ipId: 1, ttl: 64, tos: 0, window: 500, options: { timestamp: [100, 7] } }));
    t.secondary(t.out({ seq: ISN, payload: 'x', ipId: 999, ttl: 63, tos: 0x10, window: 29200, options: { timestamp: [987654, 7], sack: [[10, 20]] }, padTo: 60 }));
    assert.deepEqual(t.releasedPayloads(), ['x']);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('sequence wraparound at 2^32', () => {
    const isn = 2 ** 32 - 3;
    const t = new Twins();
    t.primary(t.out({ seq: isn, payload: 'abcdef' }));
    t.secondary(t.out({ seq: isn, payload: 'abc' }));
    t.secondary(t.out({ seq: 0, payload: 'def' }));
    assert.deepEqual(t.releasedPayloads(), ['abcdef']);
    assert.deepEqual(t.checkpoints(), []);
  });
});

describe('TCP: real differences are caught before the primary bytes are released', () => {
  test('one differing byte asks for a checkpoint and holds the segment', () => {
    const t = new Twins();
    t.primary(t.out({ seq: ISN, payload: 'hello world' }));
    t.secondary(t.out({ seq: ISN, payload: 'hello World' }));
    assert.deepEqual(t.released(), []);
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload']);
    assert.deepEqual(t.checkpoints(), ['tcp.payload']);
    const m = t.actions.find((a) => a.kind === 'mismatch');
    assert.ok(m && m.kind === 'mismatch');
    assert.equal(m.mismatch.position, ISN + 6);
    assert.equal(m.flow, `tcp ${GUEST}:80 <> ${CLIENT}:40000`);
  });

  test('extra bytes where the other side ended its stream', () => {
    const t = new Twins();
    t.primary(t.out({ seq: ISN, payload: 'abc', flags: TCP_ACK | TCP_FIN }));
    t.secondary(t.out({ seq: ISN, payload: 'abcdef' }));
    assert.deepEqual(t.released(), []);
    assert.equal(t.checkpoints().length, 1);
    assert.match(t.mismatchReasons()[0]!, /^tcp\.(length|fin_rst)$/);
  });

  test('FIN on one side, RST on the other', () => {
    const t = new Twins();
    t.primary(t.out({ seq: ISN, flags: TCP_ACK | TCP_FIN }));
    t.secondary(t.out({ seq: ISN, flags: TCP_ACK | TCP_RST }));
    assert.deepEqual(t.released(), []);
    assert.deepEqual(t.mismatchReasons(), ['tcp.fin_rst']);
  });

  test('matching FINs are released', () => {
    const t = new Twins();
    t.primary(t.out({ seq: ISN, payload: 'bye', flags: TCP_ACK | TCP_PSH | TCP_FIN }));
    t.secondary(t.out({ seq: ISN, payload: 'bye', flags: TCP_ACK | TCP_PSH | TCP_FIN }));
    assert.deepEqual(t.releasedPayloads(), ['bye']);
    assert.deepEqual(t.checkpoints(), []);
  });
});

describe('a request no checkpoint answers (resynchronize): only the connections that asked start afresh', () => {
  const synAck = (t: Twins, isn: number, mss: number) => t.out({ seq: isn, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss, sackPermitted: true, windowScale: 7 } });

  test('the SVM\'s output queued on other flows is kept: their primary copies are released on arrival, no timeout follows', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.established(ISN - 1);
    // The SVM ahead on a UDP flow and on a TCP connection, then a real difference on another flow.
    t.secondary(t.udp({ srcPort: 54, payload: 'y1' }), 0);
    t.secondary(t.out({ seq: ISN, payload: 'tcp' }), 0);
    t.primary(t.udp({ payload: 'x' }), 10);
    t.secondary(t.udp({ payload: 'X' }), 10);
    assert.deepEqual(t.checkpoints(), ['udp.payload']);
    t.resynchronize();
    assert.deepEqual(t.releasedPayloads().slice(-1), ['x'], 'the diverged flow\'s held frame');
    assert.equal(t.c.checkpointPending, false);
    t.primary(t.udp({ srcPort: 54, payload: 'y1' }), 20);
    t.primary(t.out({ seq: ISN, payload: 'tcp' }), 20);
    assert.deepEqual(t.releasedPayloads().slice(-2), ['y1', 'tcp'], 'matched against the SVM\'s copies that came before');
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), ['udp.payload'], 'nothing else');
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
  });

  test('the diverged flow is compared again from both sides\' next frames: a match is released, a difference caught', () => {
    const t = new Twins();
    t.primary(t.udp({ payload: 'a' }));
    t.secondary(t.udp({ payload: 'A' }));
    t.primary(t.udp({ payload: 'held while diverged' }));
    t.resynchronize();
    assert.deepEqual(t.releasedPayloads(), ['a', 'held while diverged']);
    t.secondary(t.udp({ payload: 'held while diverged' })); // its copy of the one released uncompared, late: skipped
    t.primary(t.udp({ payload: 'b' }));
    t.secondary(t.udp({ payload: 'b' }));
    assert.deepEqual(t.releasedPayloads().at(-1), 'b');
    t.primary(t.udp({ payload: 'c' }));
    t.secondary(t.udp({ payload: 'C' }));
    assert.deepEqual(t.mismatchReasons(), ['udp.payload', 'udp.payload']);
    assert.deepEqual(t.checkpoints(), ['udp.payload', 'udp.payload']);
    assert.equal(t.c.counters.comparedBytes, 1, 'only b compared equal (as for TCP, a difference is no compared byte)');
  });

  test('datagrams: the SVM\'s late copies of the messages a timeout released are skipped, and the pairs after them match', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const d = (i: number) => t.udp({ payload: `datagram ${i}` });
    for (let i = 1; i <= 3; i++) t.primary(d(i), 0);
    t.advanceTo(4000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
    t.resynchronize();
    for (let i = 1; i <= 3; i++) t.secondary(d(i), 4100); // the SVM, late
    for (let i = 4; i <= 8; i++) {
      t.primary(d(i), 4200 + i);
      t.secondary(d(i), 4200 + i);
    }
    assert.deepEqual(t.releasedPayloads().slice(-5), ['datagram 4', 'datagram 5', 'datagram 6', 'datagram 7', 'datagram 8']);
    t.advanceTo(20_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
  });

  test('datagrams: an SVM copy that never comes (lost in capture) ends what was owed; the pairs after it match', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const d = (i: number) => t.udp({ payload: `datagram ${i}` });
    t.primary(d(0), 0); // the SVM's copy of it is lost
    t.advanceResynchronizing(4000);
    for (let i = 1; i <= 10; i++) {
      t.primary(d(i), 5000 + i);
      t.secondary(d(i), 5000 + i);
    }
    t.advanceResynchronizing(20_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
    assert.equal(t.released().length, 11);
  });

  test('datagrams: the SVM\'s messages ahead of the PVM\'s wait on, timed afresh, for the primary ones they are copies of', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const d = (i: number) => t.udp({ payload: `datagram ${i}` });
    for (let i = 1; i <= 3; i++) t.secondary(d(i), 0);
    t.advanceTo(4000); // the PVM late past the timeout
    assert.deepEqual(t.checkpoints(), ['timeout']);
    t.resynchronize();
    t.advanceTo(6500);
    for (let i = 1; i <= 4; i++) t.primary(d(i), 6500);
    t.secondary(d(4), 6500);
    assert.deepEqual(t.releasedPayloads(), ['datagram 1', 'datagram 2', 'datagram 3', 'datagram 4'], 'each released on arrival, matched');
    t.advanceTo(20_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
  });

  test('TCP: a diverged connection is picked up where each guest is now, whatever it had sent', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.primary(t.out({ seq: ISN, payload: 'aaaa' }));
    t.secondary(t.out({ seq: ISN, payload: 'aaab' }));
    assert.deepEqual(t.checkpoints(), ['tcp.payload']);
    t.primary(t.out({ seq: ISN + 4, payload: 'pvm' })); // the PVM one segment further
    t.resynchronize();
    assert.deepEqual(t.releasedPayloads().slice(-2), ['aaaa', 'pvm']);
    // The SVM, not reset, sends its copy of the PVM's last segment, then both go on alike.
    t.secondary(t.out({ seq: ISN + 4, payload: 'pvm' }));
    t.primary(t.out({ seq: ISN + 7, payload: 'next' }));
    t.secondary(t.out({ seq: ISN + 7, payload: 'next' }));
    assert.deepEqual(t.releasedPayloads().at(-1), 'next');
    t.primary(t.out({ seq: ISN + 11, payload: 'diff' }));
    t.secondary(t.out({ seq: ISN + 11, payload: 'DIFF' }));
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload', 'tcp.payload']);
  });

  test('TCP: the SVM\'s bytes ahead of the PVM\'s are kept and wait a timeout afresh: the PVM\'s late copy matches them, one request in all', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.established(ISN - 1);
    t.secondary(t.out({ seq: ISN, payload: 'response' }), 0);
    t.advanceTo(4000); // the PVM late past the timeout
    assert.deepEqual(t.checkpoints(), ['timeout']);
    t.resynchronize();
    t.advanceTo(6500); // within a timeout of the resynchronisation: no second request
    t.primary(t.out({ seq: ISN, payload: 'response' }), 6500);
    assert.deepEqual(t.releasedPayloads().at(-1), 'response', 'released on arrival');
    t.advanceTo(20_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
  });

  test('TCP picked up mid-stream, the PVM silent so far: the SVM\'s bytes wait for the PVM\'s as they were', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.secondary(t.out({ seq: ISN, payload: 'response' }), 0);
    t.advanceTo(4000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
    t.resynchronize();
    t.primary(t.out({ seq: ISN, payload: 'response' }), 6500);
    assert.deepEqual(t.releasedPayloads(), ['response']);
    t.advanceTo(20_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
  });

  for (const kind of ['tcp', 'udp'] as const) {
    test(`${kind}: output of the SVM's alone (no primary counterpart coming) is kept one timeout more, then goes: two requests in all`, () => {
      const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      t.secondary(kind === 'tcp' ? t.out({ seq: ISN, payload: 'the SVM alone' }) : t.udp({ payload: 'the SVM alone' }), 0);
      t.advanceResynchronizing(600_000);
      assert.deepEqual(t.checkpoints(), ['timeout', 'timeout']);
      assert.equal(t.c.counters.secondaryWaitingFrames, 0);
    });
  }

  test('datagrams: after the PVM caught up with the SVM\'s kept messages, one real difference leaves the pairs aligned', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const d = (i: number, extra = '') => t.udp({ payload: `datagram ${i}${extra}` });
    t.secondary(d(1), 0);
    t.secondary(d(2), 0);
    t.advanceResynchronizing(4000); // the PVM late past the timeout
    t.primary(d(1), 4500);
    t.primary(d(2), 4500);
    t.primary(d(3), 4600);
    t.secondary(d(3, ' DIFFERENT'), 4600);
    t.resynchronize();
    for (let i = 4; i <= 13; i++) {
      t.primary(d(i), 5000 + i);
      t.secondary(d(i), 5000 + i);
    }
    t.advanceResynchronizing(20_000);
    assert.deepEqual(t.checkpoints(), ['timeout', 'udp.payload']);
  });

  test('TCP: the SVM\'s banner sent before the PVM\'s late SYN-ACK waits on for the handshake: one request in all', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const synAck = t.out({ seq: ISN - 1, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, windowScale: 7 } });
    const banner = t.out({ seq: ISN, payload: 'SSH-2.0-OpenSSH_9.6\r\n' });
    t.secondary(synAck, 0);
    t.secondary(banner, 1);
    t.advanceResynchronizing(4000); // the PVM late past the timeout
    t.primary(synAck, 4500);
    t.primary(banner, 4501);
    assert.deepEqual(t.releasedPayloads(), ['', 'SSH-2.0-OpenSSH_9.6\r\n'], 'both released on arrival');
    t.advanceResynchronizing(30_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
    // A PVM that never answers: the banner is kept once, then goes.
    const u = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    u.secondary(synAck, 0);
    u.secondary(banner, 1);
    u.advanceResynchronizing(600_000);
    assert.deepEqual(u.checkpoints(), ['timeout', 'timeout']);
    assert.equal(u.c.counters.secondaryWaitingFrames, 0);
  });

  for (const cut of ['in segments of its own', 'in one segment with the difference'] as const) {
    test(`TCP: the SVM's bytes past a real difference, sent ${cut}, are kept for the PVM's next ones: one request in all`, () => {
      const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      t.established(ISN - 1);
      if (cut === 'in segments of its own') {
        t.secondary(t.out({ seq: ISN, payload: 'aaaX' }), 0);
        t.secondary(t.out({ seq: ISN + 4, payload: 'next' }), 0);
      } else {
        t.secondary(t.out({ seq: ISN, payload: 'aaaXnext' }), 0);
      }
      t.primary(t.out({ seq: ISN, payload: 'aaaa' }), 1); // the difference, at byte 3
      t.resynchronize();
      t.primary(t.out({ seq: ISN + 4, payload: 'next' }), 5);
      assert.deepEqual(t.releasedPayloads(), ['', 'aaaa', 'next'], 'released on arrival');
      t.advanceResynchronizing(20_000);
      assert.deepEqual(t.checkpoints(), ['tcp.payload']);
      assert.equal(t.c.counters.secondaryWaitingFrames, 0);
    });
  }

  test('TCP: the SVM\'s late copy of bytes the resynchronisation released is ignored, not a new timeout', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.established(ISN - 1);
    t.primary(t.out({ seq: ISN, payload: 'late' }), 0);
    t.advanceTo(4000); // the SVM late past the timeout
    assert.deepEqual(t.checkpoints(), ['timeout']);
    t.resynchronize();
    assert.deepEqual(t.releasedPayloads().at(-1), 'late');
    t.secondary(t.out({ seq: ISN, payload: 'late' }), 4100);
    t.primary(t.out({ seq: ISN + 4, payload: 'on' }), 4200);
    t.secondary(t.out({ seq: ISN + 4, payload: 'on' }), 4200);
    assert.deepEqual(t.releasedPayloads().at(-1), 'on');
    t.advanceTo(20_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
  });

  test('translate mode: a connection blocked behind an old one on its ports learns the SVM\'s sequence space from the handshakes it held', () => {
    const t = new Twins({ mode: 'translate' });
    const synAck = (isn: number, ack: number) => t.out({ seq: isn, ack, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } });
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: { mss: 1460 } }));
    t.primary(synAck(ISN - 1, 5000));
    t.secondary(synAck(2_999_999_999, 5000));
    t.client(t.in({ seq: 5000, ack: ISN, payload: 'GET' }));
    t.primary(t.out({ seq: ISN, ack: 5003, payload: 'resp1' })); // held: the SVM's not in yet
    t.client(t.in({ seq: 5003, ack: ISN, flags: TCP_FIN | TCP_ACK }));
    // The client reuses its port while the old connection holds 'resp1': the new one is blocked.
    const p2 = 50_000;
    const s2 = 2_000_000_000;
    t.client(t.in({ seq: 90_000, flags: TCP_SYN, options: { mss: 1460 } }));
    t.primary(synAck(p2 - 1, 90_001));
    t.secondary(synAck(s2 - 1, 90_001));
    assert.deepEqual(t.checkpoints(), ['tcp.reused']);
    t.resynchronize();
    t.client(t.in({ seq: 90_001, ack: p2, payload: 'GET2' }));
    const toSvm = t.delivered('secondary').at(-1)!;
    assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint32(14 + 20 + 8), s2, 'the client\'s data reached the SVM, acknowledging its own ISN');
    t.primary(t.out({ seq: p2, ack: 90_005, payload: 'resp2' }));
    t.secondary(t.out({ seq: s2, ack: 90_005, payload: 'resp2' }));
    assert.deepEqual(t.releasedPayloads().at(-1), 'resp2');
    assert.deepEqual(t.checkpoints(), ['tcp.reused']);
  });

  test('translate mode: client frames for an SVM that never answered the handshake are bounded, and discarded past the bound', () => {
    const t = new Twins({ mode: 'translate', maxQueueFrames: 8 });
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: { mss: 1460 } }));
    t.primary(t.out({ seq: ISN - 1, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } }));
    for (let i = 0; i < 9; i++) t.client(t.in({ seq: 5000 + i, ack: ISN, payload: 'x' }));
    assert.deepEqual(t.checkpoints(), ['queue_full']);
    t.resynchronize();
    assert.equal(t.c.counters.events.get('client.discarded'), 1);
    assert.equal(t.delivered('secondary').length, 1, 'only the SYN reached the SVM');
  });

  test('translate mode: handshakes compared as different still teach the SVM\'s sequence space, and the client\'s data reaches it mapped', () => {
    const t = new Twins({ mode: 'translate' });
    const svmIsn = 3_000_000_000;
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: { mss: 1460 } }));
    t.primary(synAck(t, ISN, 1460));
    t.secondary(synAck(t, svmIsn, 1400));
    assert.deepEqual(t.checkpoints(), ['tcp.syn_options']);
    t.resynchronize();
    assert.equal(t.released().length, 1, 'the PVM\'s SYN-ACK');
    t.client(t.in({ seq: 5000, ack: ISN + 1, payload: 'GET' }));
    const toSvm = t.delivered('secondary').at(-1)!;
    assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint32(14 + 20 + 8), svmIsn + 1, 'the ACK in the SVM\'s own space');
    t.primary(t.out({ seq: ISN + 1, ack: 5003, payload: 'reply' }));
    t.secondary(t.out({ seq: svmIsn + 1, ack: 5003, payload: 'reply' }));
    assert.deepEqual(t.releasedPayloads().at(-1), 'reply');
    assert.deepEqual(t.checkpoints(), ['tcp.syn_options']);
  });

  for (const kind of ['udp', 'tcp'] as const) {
    test(`${kind}: the SVM's output waiting on an evicted diverged connection is counted out once`, () => {
      const t = new Twins({ maxConnections: 2 });
      if (kind === 'udp') {
        t.secondary(t.udp({ srcPort: 80, payload: 'a' }));
        t.secondary(t.udp({ srcPort: 80, payload: 'b' }));
        t.primary(t.udp({ srcPort: 80, payload: 'X' })); // against 'a': held, 'b' still waiting
      } else {
        t.established(ISN - 1);
        t.secondary(t.out({ seq: ISN, payload: 'abcd' }));
        t.secondary(t.out({ seq: ISN + 4, payload: 'efgh' }));
        t.primary(t.out({ seq: ISN, payload: 'abcX' }));
      }
      for (const port of [81, 82]) { // the table evicts the diverged connection
        t.primary(t.udp({ srcPort: port, payload: 'x' }));
        t.secondary(t.udp({ srcPort: port, payload: 'x' }));
      }
      t.resynchronize();
      assert.equal(t.c.counters.secondaryWaitingFrames, 0);
      assert.equal(t.c.counters.heldFrames, 0);
    });
  }

  test('a connection evicted with frames held, and the one waiting behind it on its key, are released in order', () => {
    const t = new Twins({ maxConnections: 2 });
    t.primary(t.udp({ srcPort: 80, payload: 'one' })); // held
    for (const port of [81, 82]) {
      t.primary(t.udp({ srcPort: port, payload: 'x' }));
      t.secondary(t.udp({ srcPort: port, payload: 'x' }));
    }
    t.primary(t.udp({ srcPort: 80, payload: 'two' })); // blocked behind 'one'
    assert.deepEqual(t.checkpoints(), ['table_full']);
    t.resynchronize();
    assert.deepEqual(t.releasedPayloads().filter((p) => p === 'one' || p === 'two'), ['one', 'two']);
    assert.equal(t.c.counters.heldFrames, 0);
    // The SVM's copies of what was released uncompared, the evicted flow's included: skipped.
    t.secondary(t.udp({ srcPort: 80, payload: 'one' }));
    t.secondary(t.udp({ srcPort: 80, payload: 'two' }));
    t.primary(t.udp({ srcPort: 80, payload: 'three' }));
    t.secondary(t.udp({ srcPort: 80, payload: 'three' }));
    assert.deepEqual(t.releasedPayloads().at(-1), 'three', 'compared again, no longer blocked');
  });
});

describe('TCP: the handshake', () => {
  const synAck = (t: Twins, isn: number, mss = 1460) => t.out({ seq: isn, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss, sackPermitted: true, windowScale: 7, timestamp: [isn % 1000, 1] } });

  test('SYN-ACKs with different ISNs (pre-translated mode) are released once both arrived', () => {
    const t = new Twins();
    t.primary(synAck(t, ISN));
    assert.deepEqual(t.released(), []);
    t.secondary(synAck(t, 777));
    assert.equal(t.released().length, 1);
    t.primary(t.out({ seq: ISN + 1, payload: 'data' }));
    t.secondary(t.out({ seq: ISN + 1, payload: 'data' }));
    assert.deepEqual(t.releasedPayloads(), ['', 'data']);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('different MSS in the SYN-ACKs is a syn_options mismatch', () => {
    const t = new Twins();
    t.primary(synAck(t, ISN, 1460));
    t.secondary(synAck(t, ISN, 1400));
    assert.deepEqual(t.released(), []);
    assert.deepEqual(t.mismatchReasons(), ['tcp.syn_options']);
  });

  test('translate mode: the SVM\'s own ISN is learned and its data mapped into the PVM\'s space', () => {
    const t = new Twins({ mode: 'translate' });
    const svmIsn = 3_000_000_000;
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: { mss: 1460 } }));
    t.primary(synAck(t, ISN));
    t.secondary(synAck(t, svmIsn));
    t.client(t.in({ seq: 5000, ack: ISN + 1 }));
    const toSvm = t.delivered('secondary');
    assert.equal(toSvm.length, 2, 'SYN and the handshake ACK reached the SVM');
    const ack = new DataView(toSvm[1]!.buffer, toSvm[1]!.byteOffset).getUint32(14 + 20 + 8);
    assert.equal(ack, svmIsn + 1, 'the client\'s ACK is translated into the SVM\'s space');
    t.primary(t.out({ seq: ISN + 1, payload: 'same' }));
    t.secondary(t.out({ seq: svmIsn + 1, payload: 'same' }));
    assert.deepEqual(t.releasedPayloads(), ['', 'same']);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('translate mode: a client ACK that beats the SVM\'s SYN-ACK waits instead of racing', () => {
    const t = new Twins({ mode: 'translate' });
    t.client(t.in({ seq: 4999, flags: TCP_SYN }));
    t.primary(synAck(t, ISN));
    t.client(t.in({ seq: 5000, ack: ISN + 1 }));
    assert.equal(t.delivered('secondary').length, 1, 'only the SYN so far');
    assert.equal(t.delivered('primary').length, 2, 'the PVM got both at once');
    t.secondary(synAck(t, 42));
    const toSvm = t.delivered('secondary');
    assert.equal(toSvm.length, 2);
    assert.equal(new DataView(toSvm[1]!.buffer, toSvm[1]!.byteOffset).getUint32(42), 43);
  });
});

test('translate mode: client frames still waiting for the translation at a checkpoint are dropped, and say so', () => {
  const t = new Twins({ mode: 'translate' });
  t.client(t.in({ seq: 4999, flags: TCP_SYN }));
  t.primary(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } }));
  t.client(t.in({ seq: 5000, ack: ISN + 1 }));
  t.primary(t.udp({ payload: 'x' }));
  t.secondary(t.udp({ payload: 'y' }));
  t.checkpointDone();
  const events = t.actions.flatMap((a) => (a.kind === 'event' ? [a.code] : []));
  assert.deepEqual(events, ['client.discarded']);
  assert.equal(t.c.counters.events.get('client.discarded'), 1);
  assert.equal(t.delivered('secondary').length, 1, 'only the SYN ever reached the SVM');
});

test('a connection first seen mid-stream is reported and compared from there', () => {
  const t = new Twins();
  t.primary(t.out({ seq: ISN, payload: 'mid' }));
  t.secondary(t.out({ seq: ISN, payload: 'mid' }));
  assert.deepEqual(t.releasedPayloads(), ['mid']);
  assert.deepEqual(t.actions.flatMap((a) => (a.kind === 'event' ? [a.code] : [])), ['flow.midstream']);
});

describe('mid-stream pickup that starts with segments carrying no data', () => {
  // A keepalive or zero-window probe carries SND.UNA - 1 (RFC 9293 §3.8.4), a sequence number no
  // later byte fills; a pure ACK carries SND.NXT. Neither may set where the comparison starts.
  // Typical: the table forgot an idle connection (idleTimeoutMs 300 s) long before the guests'
  // first keepalive (Linux: after 7,200 s).
  for (const [what, seq] of [['keepalive probes at SND.UNA - 1', ISN - 1], ['pure ACKs at SND.NXT', ISN]] as const) {
    test(`${what} are released once the SVM's acknowledgement agrees, and the data after them matches`, () => {
      const t = new Twins();
      t.primary(t.out({ seq }));
      assert.deepEqual(t.released(), [], 'nothing the SVM has acknowledged yet');
      t.secondary(t.out({ seq }));
      assert.equal(t.released().length, 1, 'the PVM\'s probe goes out: it has nothing to compare');
      t.primary(t.out({ seq: ISN, payload: 'reply' }));
      t.secondary(t.out({ seq: ISN, payload: 'reply' }));
      assert.deepEqual(t.releasedPayloads(), ['', 'reply']);
      t.advanceTo(t.now + 10_000);
      assert.deepEqual(t.actions.filter((a) => a.kind === 'mismatch'), []);
    });
  }

  test('a probe behind held data waits its turn; data that differs after probes is still caught', () => {
    const t = new Twins();
    t.primary(t.out({ seq: ISN - 1 }));
    t.secondary(t.out({ seq: ISN - 1 }));
    t.primary(t.out({ seq: ISN, payload: 'one' }));
    t.primary(t.out({ seq: ISN + 3 }));
    assert.deepEqual(t.releasedPayloads(), [''], 'the probe after the held data waits behind it');
    t.secondary(t.out({ seq: ISN, payload: 'two' }));
    const m = t.actions.flatMap((a) => (a.kind === 'mismatch' ? [a.mismatch.reason] : []));
    assert.deepEqual(m, ['tcp.payload']);
  });
});

test('translate mode: a SYN one guest resends for a connection already paired on the same port does not pair with its next connection', () => {
  // The SVM lags: the PVM's retransmission timeout fires before the client's SYN-ACK, the SVM's does not.
  const t = new Twins({ mode: 'translate' });
  const opts = { mss: 1460 };
  const syn = (port: number, isn: number) => t.out({ srcPort: port, dstPort: 443, seq: isn, ack: 0, flags: TCP_SYN, options: opts });
  const ackToSvm = () => {
    const f = t.delivered('secondary').at(-1)!;
    const v = new DataView(f.buffer, f.byteOffset);
    return [v.getUint16(14 + 20 + 2), v.getUint32(14 + 20 + 8)];
  };
  t.primary(syn(1000, 1_000_000), 0);
  t.secondary(syn(1000, 2_000_000), 900);
  t.primary(syn(1000, 1_000_000), 1000);
  t.client(t.in({ srcPort: 443, dstPort: 1000, seq: 7000, ack: 1_000_001, flags: TCP_SYN | TCP_ACK, options: opts }), 1100);
  assert.deepEqual(ackToSvm(), [1000, 2_000_001]);
  // The next connection to the same server: the guests chose different ports.
  t.primary(syn(2000, 3_000_000), 1500);
  t.secondary(syn(3000, 4_000_000), 1600);
  t.client(t.in({ srcPort: 443, dstPort: 2000, seq: 9000, ack: 3_000_001, flags: TCP_SYN | TCP_ACK, options: opts }), 1700);
  assert.deepEqual(ackToSvm(), [3000, 4_000_001], 'paired with the SVM\'s connection 2, not with the resent SYN');
  t.client(t.in({ srcPort: 443, dstPort: 1000, seq: 7001, ack: 1_000_001, payload: 'more' }), 1710);
  assert.deepEqual(ackToSvm(), [1000, 2_000_001], 'connection 1 still translated as it was');
});

describe('translate mode: guest-initiated connections whose guests chose different ports', () => {
  const opts = { mss: 1460, sackPermitted: true, windowScale: 7 };
  for (const svmFirst of [false, true]) {
    test(`paired by destination, ports and ISNs translated (${svmFirst ? 'SVM' : 'PVM'} SYN first)`, () => {
      const t = new Twins({ mode: 'translate' });
      const pvmSyn = t.out({ srcPort: 33000, dstPort: 443, seq: ISN, ack: 0, flags: TCP_SYN, options: opts });
      const svmSyn = t.out({ srcPort: 44000, dstPort: 443, seq: 7, ack: 0, flags: TCP_SYN, options: opts });
      if (svmFirst) t.secondary(svmSyn);
      t.primary(pvmSyn);
      if (!svmFirst) t.secondary(svmSyn);
      assert.equal(t.released().length, 1, 'the PVM\'s SYN goes out once the SVM\'s agrees');
      t.client(t.in({ srcPort: 443, dstPort: 33000, seq: 9000, ack: ISN + 1, flags: TCP_SYN | TCP_ACK, options: opts }));
      const toSvm = t.delivered('secondary');
      assert.equal(toSvm.length, 1);
      const view = new DataView(toSvm[0]!.buffer, toSvm[0]!.byteOffset);
      assert.equal(view.getUint16(14 + 20 + 2), 44000, 'destination port moved to the SVM\'s');
      assert.equal(view.getUint32(14 + 20 + 8), 8, 'acknowledgement moved to the SVM\'s ISN');
      t.primary(t.out({ srcPort: 33000, dstPort: 443, seq: ISN + 1, ack: 9001, payload: 'GET /' }));
      t.secondary(t.out({ srcPort: 44000, dstPort: 443, seq: 8, ack: 9001, payload: 'GET /' }));
      assert.deepEqual(t.releasedPayloads(), ['', 'GET /']);
      assert.deepEqual(t.checkpoints(), []);
      const { connectionsOpened, connectionsClosed } = t.c.counters;
      assert.deepEqual([connectionsOpened - connectionsClosed, connectionsClosed], [1, svmFirst ? 1 : 0], 'one connection; the SVM\'s own, when its SYN came first, merged and counted closed');
    });
  }
});

describe('translate mode: a guest reusing the port of a paired connection that is gone', () => {
  test('pairs afresh: the old mapping left the table with its connection', () => {
    const opts = { mss: 1460, sackPermitted: true, windowScale: 7 };
    const t = new Twins({ mode: 'translate', idleTimeoutMs: 5000, scanIntervalMs: 1000 });
    const syn = (port: number, isn: number): Uint8Array => t.out({ srcPort: port, dstPort: 443, seq: isn, ack: 0, flags: TCP_SYN, options: opts });
    t.primary(syn(33000, ISN));
    t.secondary(syn(44000, 7));
    t.advanceTo(20_000);
    assert.equal(t.c.counters.connectionsClosed, 1);
    t.primary(syn(33000, ISN + 100_000), 20_001);
    t.secondary(syn(45000, 9), 20_001);
    assert.equal(t.released().length, 2, 'both SYNs went out, each once its twin agreed');
    t.client(t.in({ srcPort: 443, dstPort: 33000, seq: 9000, ack: ISN + 100_001, flags: TCP_SYN | TCP_ACK, options: opts }));
    const toSvm = t.delivered('secondary').at(-1)!;
    assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint16(14 + 20 + 2), 45000);
    assert.deepEqual(t.checkpoints(), []);
  });
});

describe('TCP: the ACK gate', () => {
  test('a matched segment acknowledging client data the SVM has not acknowledged is held, not checkpointed', () => {
    const t = new Twins();
    t.secondary(t.out({ seq: ISN, payload: 'ok', ack: 5000 }));
    t.primary(t.out({ seq: ISN, payload: 'ok', ack: 5100 }));
    assert.deepEqual(t.released(), [], 'the PVM has acknowledged 100 bytes the SVM may not have');
    assert.deepEqual(t.checkpoints(), []);
    t.secondary(t.out({ seq: ISN + 2, ack: 5100 }));
    assert.deepEqual(t.releasedPayloads(), ['ok']);
  });

  test('a pure ACK is gated too', () => {
    const t = new Twins();
    t.secondary(t.out({ seq: ISN, ack: 5000 }));
    t.primary(t.out({ seq: ISN, ack: 6000 }));
    assert.deepEqual(t.released(), []);
    t.secondary(t.out({ seq: ISN, ack: 6000 }));
    assert.equal(t.released().length, 1);
  });
});

describe('datagrams', () => {
  test('a primary several datagrams ahead is held, not a mismatch; release order is the primary\'s', () => {
    const t = new Twins();
    for (const p of ['one', 'two', 'three']) t.primary(t.udp({ payload: p }));
    assert.deepEqual(t.released(), []);
    for (const p of ['one', 'two', 'three']) t.secondary(t.udp({ payload: p, ipId: 77, ttl: 5 }));
    assert.deepEqual(t.releasedPayloads(), ['one', 'two', 'three']);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('a secondary ahead waits for the primary', () => {
    const t = new Twins();
    t.secondary(t.udp({ payload: 'a' }));
    t.secondary(t.udp({ payload: 'b' }));
    assert.equal(t.c.counters.secondaryWaitingFrames, 2);
    t.primary(t.udp({ payload: 'a' }));
    t.primary(t.udp({ payload: 'b' }));
    assert.deepEqual(t.releasedPayloads(), ['a', 'b']);
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
  });

  test('a one-byte difference and a size difference are udp.payload mismatches', () => {
    const t = new Twins();
    t.primary(t.udp({ payload: 'abcd' }));
    t.secondary(t.udp({ payload: 'abXd' }));
    const u = new Twins();
    u.primary(u.udp({ payload: 'abcd' }));
    u.secondary(u.udp({ payload: 'abcde' }));
    assert.deepEqual([t.mismatchReasons(), u.mismatchReasons()], [['udp.payload'], ['udp.payload']]);
    assert.deepEqual([t.released(), u.released()], [[], []]);
  });

  test('non-IP frames are compared too (ARP), padding excluded', () => {
    const t = new Twins();
    t.primary(emitArp({ senderIp: GUEST, targetIp: CLIENT, padTo: 60 }));
    t.secondary(emitArp({ senderIp: GUEST, targetIp: CLIENT }));
    assert.equal(t.released().length, 1);
    t.primary(emitArp({ senderIp: GUEST, targetIp: '10.0.0.9', senderMac: '52:54:00:00:00:01' }));
    t.secondary(emitArp({ senderIp: GUEST, targetIp: '10.0.0.9', senderMac: '52:54:00:00:00:02' }));
    assert.deepEqual(t.mismatchReasons(), ['frame.payload']);
  });

  test('ARP: one flow per operation and target, so neighbours resolved in another order match; another target times out', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const req = (ip: string) => emitArp({ senderIp: GUEST, targetIp: ip });
    t.primary(req('10.0.0.5'));
    t.primary(req('10.0.0.6'));
    t.primary(emitArp({ operation: 2, senderIp: GUEST, targetIp: CLIENT }));
    t.secondary(emitArp({ operation: 2, senderIp: GUEST, targetIp: CLIENT }));
    t.secondary(req('10.0.0.6'));
    t.secondary(req('10.0.0.5'));
    assert.equal(t.released().length, 3);
    t.primary(req('10.0.0.7'));
    t.secondary(req('10.0.0.8'));
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
    assert.deepEqual(t.actions.flatMap((a) => (a.kind === 'mismatch' ? [a.flow] : [])), ['arp request for 10.0.0.7', 'arp request for 10.0.0.8'], 'each side\'s lone request');
  });

  test('different VLAN tags are a vlan mismatch', () => {
    const t = new Twins();
    t.primary(t.udp({ payload: 'x', vlan: [100] }));
    t.secondary(t.udp({ payload: 'x', vlan: [200] }));
    assert.deepEqual(t.mismatchReasons(), ['vlan']);
  });
});

describe('IP fragments are reassembled per side before comparison', () => {
  const datagram = (t: Twins, ipId: number, last = 'z') => t.udp({ payload: pattern(0, 2999) + last, ipId, dontFragment: false });

  test('a TCP segment in fragments goes into its connection: released after the earlier held one, as the PVM\'s fragments, and the stream goes on past it', () => {
    const t = new Twins();
    t.established(ISN - 1);
    const a = t.out({ seq: ISN, payload: 'A'.repeat(100) });
    t.primary(a);
    const b = split(t.out({ seq: ISN + 100, payload: pattern(0, 2000), dontFragment: false, ipId: 9 }), [1480]);
    for (const f of b) t.primary(f);
    t.secondary(t.out({ seq: ISN + 100, payload: pattern(0, 2000) }));
    assert.equal(t.released().length, 1, 'nothing of the fragmented segment before the held one');
    t.secondary(t.out({ seq: ISN, payload: 'A'.repeat(100) }));
    assert.deepEqual(t.released().slice(1), [a, ...b]);
    t.primary(t.out({ seq: ISN + 2100, payload: 'C' }));
    t.secondary(t.out({ seq: ISN + 2100, payload: 'C' }));
    assert.deepEqual(t.releasedPayloads().at(-1), 'C');
    assert.deepEqual(t.checkpoints(), []);
  });

  test('a TCP segment in fragments whose bytes differ is tcp.payload; its fragments leave at the checkpoint', () => {
    const t = new Twins();
    t.established(ISN - 1);
    const b = split(t.out({ seq: ISN, payload: pattern(0, 2000), dontFragment: false, ipId: 9 }), [1480]);
    for (const f of b) t.primary(f);
    for (const f of split(t.out({ seq: ISN, payload: pattern(0, 1999) + '#', dontFragment: false, ipId: 3 }), [1000])) t.secondary(f);
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload']);
    assert.equal(t.released().length, 1);
    t.checkpointDone();
    assert.deepEqual(t.released().slice(1), b);
  });

  test('cut differently on each side, different IP IDs: no mismatch, the PVM\'s own fragments released', () => {
    const t = new Twins();
    const pvm = split(datagram(t, 1), [1480, 2960]);
    const svm = split(datagram(t, 2), [1000]);
    for (const f of pvm) t.primary(f);
    assert.deepEqual(t.released(), []);
    for (const f of svm.reverse()) t.secondary(f);
    assert.deepEqual(t.released(), pvm, 'all three PVM fragments, as sent, in order');
    assert.deepEqual(t.checkpoints(), []);
  });

  test('a differing byte in the last fragment is a udp.payload mismatch; nothing released until the checkpoint', () => {
    const t = new Twins();
    const pvm = split(datagram(t, 1, 'z'), [1480]);
    for (const f of pvm) t.primary(f);
    for (const f of split(datagram(t, 1, 'Z'), [1480])) t.secondary(f);
    assert.deepEqual(t.mismatchReasons(), ['udp.payload']);
    assert.deepEqual(t.released(), []);
    t.checkpointDone();
    assert.deepEqual(t.released(), pvm);
  });

  test('a datagram never completed is compared fragment by fragment after the timeout', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const pvm = split(datagram(t, 1), [1480]);
    const svm = split(datagram(t, 9), [1480]);
    t.primary(pvm[0]!, 0);
    t.secondary(svm[0]!, 0);
    t.advanceTo(5000);
    assert.deepEqual(t.released(), [pvm[0]], 'the lone fragments matched from the IP payload on');
    assert.equal(t.c.counters.events.get('fragment.timeout'), 2);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('a checkpoint releases fragments still waiting for the rest of their datagram in arrival order among the held frames', () => {
    const t = new Twins();
    t.established(ISN - 1);
    const pvm = split(datagram(t, 1), [1000, 2000]);
    t.primary(t.out({ seq: ISN, payload: 'before' }));
    t.primary(pvm[0]!);
    t.primary(t.out({ seq: ISN + 6, payload: 'after' }));
    t.secondary(t.out({ seq: ISN, payload: 'BEFORE' }));
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload']);
    const before = t.released().length;
    t.checkpointDone();
    const flushed = t.released().slice(before);
    const isFragment = (f: Uint8Array) => Buffer.from(f).equals(Buffer.from(pvm[0]!));
    assert.deepEqual(flushed.map((f) => (isFragment(f) ? 'fragment' : payloadText(f))), ['before', 'fragment', 'after']);
  });

  describe('a datagram whose fragments straddle a checkpoint', () => {
    test('the PVM\'s fragments after it are released at once, the SVM\'s dropped: no wait, no timeout', () => {
      const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      const pvm = split(datagram(t, 1), [1000, 2000]);
      const svm = split(datagram(t, 2), [1480]);
      t.primary(pvm[0]!, 0);
      t.secondary(svm[0]!, 10);
      t.checkpointDone();
      assert.deepEqual(t.released(), [pvm[0]], 'the flush releases what the PVM had sent');
      t.primary(pvm[1]!, 20);
      t.secondary(svm[1]!, 20);
      t.primary(pvm[2]!, 30);
      assert.deepEqual(t.released(), pvm, 'the rest of a datagram already partly out follows it, as sent');
      assert.equal(t.c.counters.events.get('fragment.after_checkpoint'), 3);
      assert.equal(t.c.counters.heldFrames, 0);
      t.advanceTo(10_000);
      assert.deepEqual(t.checkpoints(), []);
      assert.equal(t.c.counters.events.get('fragment.timeout'), undefined);
    });

    for (const svm of ['had sent none of it', 'had sent it whole'] as const) {
      test(`the SVM, which ${svm}, sends the rest after it as the PVM does (a copy of its TX queue): dropped, no timeout`, () => {
        const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
        const pvm = split(datagram(t, 1), [1000, 2000]);
        t.primary(pvm[0]!, 0);
        if (svm === 'had sent it whole') for (const f of pvm) t.secondary(f, 5);
        t.checkpointDone();
        t.primary(pvm[1]!, 20);
        t.secondary(pvm[1]!, 20);
        t.primary(pvm[2]!, 30);
        t.secondary(pvm[2]!, 30);
        assert.deepEqual(t.released(), pvm);
        assert.equal(t.c.counters.events.get('fragment.after_checkpoint'), 4, 'two released, two dropped');
        t.advanceTo(20_000);
        assert.deepEqual(t.checkpoints(), []);
        assert.equal(t.c.counters.events.get('fragment.timeout'), undefined);
      });
    }

    test('once the cut datagram is whole, its identity is a new datagram again and is compared', () => {
      const t = new Twins();
      const first = split(datagram(t, 7), [1480]);
      t.primary(first[0]!);
      t.checkpointDone();
      t.primary(first[1]!);
      const next = split(datagram(t, 7, 'y'), [1480]);
      for (const f of next) t.primary(f);
      for (const f of split(datagram(t, 7, 'Y'), [1480])) t.secondary(f);
      assert.deepEqual(t.mismatchReasons(), ['udp.payload'], 'the reused identification started a datagram of its own');
      assert.deepEqual(t.released(), first);
    });

    test('a fragment overlapping what went before the checkpoint starts a new datagram (the identification was reused)', () => {
      const t = new Twins();
      const first = split(datagram(t, 5), [1480]);
      t.primary(first[0]!);
      t.checkpointDone();
      const reused = split(datagram(t, 5, 'q'), [1480]);
      for (const f of reused) t.primary(f);
      for (const f of split(datagram(t, 5, 'q'), [1000])) t.secondary(f);
      assert.deepEqual(t.released(), [first[0], ...reused], 'compared whole, matched');
      assert.deepEqual(t.checkpoints(), []);
      assert.equal(t.c.counters.events.get('fragment.after_checkpoint'), undefined);
    });

    test('a TCP segment so cut: its connection picks the comparison up afresh, and the segments after it are released without a timeout', () => {
      const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      t.established(ISN - 1);
      t.primary(t.out({ seq: ISN, payload: 'A'.repeat(100) }), 0);
      t.secondary(t.out({ seq: ISN, payload: 'A'.repeat(100) }), 0);
      const cut = split(t.out({ seq: ISN + 100, payload: pattern(0, 2000), dontFragment: false, ipId: 9 }), [1480]);
      t.primary(cut[0]!, 10);
      t.checkpointDone();
      t.primary(cut[1]!, 30);
      // The SVM, a copy of the PVM from after the whole segment went out, goes on from there; so does the PVM.
      const next = { seq: ISN + 2100, payload: 'next' };
      t.primary(t.out(next), 40);
      t.secondary(t.out(next), 50);
      const more = { seq: ISN + 2104, payload: 'more' };
      t.primary(t.out(more), 60);
      t.secondary(t.out(more), 60);
      assert.deepEqual(t.releasedPayloads().filter((p) => p === 'next' || p === 'more'), ['next', 'more'], 'not held behind the bytes of the cut segment');
      assert.deepEqual(t.released().slice(-4, -2), cut, 'the cut segment\'s fragments, each once, before them');
      t.advanceTo(10_000);
      assert.deepEqual(t.checkpoints(), [], 'no timeout');
      assert.equal(t.c.counters.heldFrames, 0);
      const differs = { seq: ISN + 2108, payload: 'diff' };
      t.primary(t.out(differs), 10_010);
      t.secondary(t.out({ ...differs, payload: 'DIFF' }), 10_010);
      assert.deepEqual(t.mismatchReasons(), ['tcp.payload'], 'and compared again');
    });

    test('a cut datagram whose rest never comes is forgotten after compareTimeoutMs', () => {
      const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      const first = split(datagram(t, 3), [1000, 2000]);
      t.primary(first[0]!, 0);
      t.checkpointDone();
      t.primary(first[1]!, 100);
      t.advanceTo(5000);
      t.primary(first[2]!, 5000);
      assert.deepEqual(t.released(), first.slice(0, 2), 'a fragment after the cut was forgotten waits like any other');
      assert.equal(t.c.counters.events.get('fragment.after_checkpoint'), 1);
      t.advanceTo(10_000);
      assert.equal(t.c.counters.events.get('fragment.timeout'), 1, 'the lone last fragment, not completed');
    });
  });
});

describe('IPv6 and ICMP are compared like their IPv4 and UDP counterparts', () => {
  test('TCP over IPv6: resegmented identical bytes released, a differing byte caught', () => {
    const v6 = { src: 'fd00::2', dst: 'fd00::1' };
    const t = new Twins();
    t.primary(t.out({ ...v6, seq: ISN, payload: 'abcdef', flowLabel: 1 }));
    t.secondary(t.out({ ...v6, seq: ISN, payload: 'abc', flowLabel: 2 }));
    t.secondary(t.out({ ...v6, seq: ISN + 3, payload: 'def' }));
    assert.deepEqual(t.releasedPayloads(), ['abcdef']);
    t.primary(t.out({ ...v6, seq: ISN + 6, payload: 'g' }));
    t.secondary(t.out({ ...v6, seq: ISN + 6, payload: 'G' }));
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload']);
    const m = t.actions.find((a) => a.kind === 'mismatch');
    assert.ok(m?.kind === 'mismatch');
    assert.equal(m.flow, 'tcp [fd00::2]:80 <> [fd00::1]:40000');
  });

  test('ICMP echo replies pair in order per echo id; a different sequence number is icmp.payload', () => {
    const t = new Twins();
    const reply = (sequence: number, id = 7) => emitIcmpEcho({ src: GUEST, dst: CLIENT, id, sequence, reply: true, payload: 'ping' });
    t.primary(reply(1));
    t.primary(reply(2));
    t.primary(reply(1, 8));
    t.secondary(reply(1, 8));
    t.secondary(reply(1));
    t.secondary(reply(2));
    assert.equal(t.released().length, 3);
    assert.deepEqual(t.checkpoints(), []);
    t.primary(reply(3));
    t.secondary(reply(4));
    assert.deepEqual(t.mismatchReasons(), ['icmp.payload']);
  });

  test('ICMP timestamp replies: each guest\'s own clock in them is no difference; what answers the client is', () => {
    const t = new Twins();
    // An echo reply with 12 bytes of payload is a timestamp message's length: its type made 14
    // (checksums are not compared). Originate, receive, transmit: ms since midnight, UTC.
    const reply = (originate: number, clock: number, sequence = 1) => {
      const f = emitIcmpEcho({ src: GUEST, dst: CLIENT, id: 9, sequence, reply: true, payload: new Uint8Array(12) });
      const at = 14 + 20;
      f[at] = 14;
      const view = new DataView(f.buffer, f.byteOffset);
      view.setUint32(at + 8, originate);
      view.setUint32(at + 12, clock);
      view.setUint32(at + 16, clock + 1);
      return f;
    };
    t.primary(reply(36_000_000, 36_000_123));
    t.secondary(reply(36_000_000, 36_000_125));
    assert.equal(t.released().length, 1);
    assert.deepEqual(t.checkpoints(), []);
    t.primary(reply(36_001_000, 36_001_123, 2));
    t.secondary(reply(36_001_001, 36_001_123, 2)); // the client's originate timestamp, echoed wrong
    assert.deepEqual(t.mismatchReasons(), ['icmp.payload']);
  });

  test('pre-translated mode: client frames go to both guests unchanged', () => {
    const t = new Twins();
    const frame = t.in({ seq: 5000, ack: ISN, payload: 'GET /' });
    t.client(frame);
    assert.deepEqual([t.delivered('primary'), t.delivered('secondary')], [[frame], [frame]]);
  });
});

describe('header fields: ignored by default, compared when configured', () => {
  test('datagrams: every listed field is compared between the paired frames', () => {
    const quiet = new Twins();
    quiet.primary(quiet.udp({ payload: 'x', ttl: 64, ipId: 1 }));
    quiet.secondary(quiet.udp({ payload: 'x', ttl: 63, ipId: 2 }));
    assert.deepEqual(quiet.mismatchReasons(), []);
    const strict = new Twins({ compareHeaders: ['ip.ttl'] });
    strict.primary(strict.udp({ payload: 'x', ttl: 64, ipId: 1 }));
    strict.secondary(strict.udp({ payload: 'x', ttl: 64, ipId: 2 }));
    strict.primary(strict.udp({ payload: 'y', ttl: 64 }));
    strict.secondary(strict.udp({ payload: 'y', ttl: 63 }));
    assert.deepEqual(strict.releasedPayloads(), ['x'], 'a different IP ID is still ignored');
    assert.deepEqual(strict.mismatchReasons(), ['header']);
    const m = strict.actions.find((a) => a.kind === 'mismatch');
    assert.ok(m?.kind === 'mismatch');
    assert.equal(m.mismatch.detail, 'ip.ttl=64 against ip.ttl=63');
  });

  test('TCP: connection-constant fields must keep the first primary segment\'s value', () => {
    const t = new Twins({ compareHeaders: ['ip.tos', 'tcp.window'] });
    t.primary(t.out({ seq: ISN, payload: 'ab', tos: 0x10, window: 100 }));
    t.secondary(t.out({ seq: ISN, payload: 'a', tos: 0x10, window: 999 }));
    assert.deepEqual(t.mismatchReasons(), [], 'the window differs, but it is not checked for TCP');
    t.secondary(t.out({ seq: ISN + 1, payload: 'b', tos: 0x00 }));
    assert.deepEqual(t.mismatchReasons(), ['header']);
    const m = t.actions.find((a) => a.kind === 'mismatch');
    assert.ok(m?.kind === 'mismatch');
    assert.equal(m.mismatch.detail, 'secondary segment has ip.tos=0, the connection ip.tos=16');
  });

  test('ip.tos compares the DSCP: the ECN bits, which change from segment to segment, are left out', () => {
    const t = new Twins({ compareHeaders: ['ip.tos'] });
    t.established(ISN - 1);
    t.primary(t.out({ seq: ISN, payload: 'ab', tos: 0x02 })); // DSCP 0 as the handshake's, ECT(0)
    t.secondary(t.out({ seq: ISN, payload: 'ab', tos: 0x00 })); // a resend: Not-ECT
    t.primary(t.out({ seq: ISN + 2, payload: 'cd', tos: 0x03 })); // CE
    t.secondary(t.out({ seq: ISN + 2, payload: 'cd', tos: 0x02 }));
    assert.deepEqual(t.mismatchReasons(), []);
    t.secondary(t.out({ seq: ISN + 4, payload: 'ef', tos: 0x28 }));
    assert.deepEqual(t.mismatchReasons(), ['header'], 'another DSCP');
  });

  test('an unknown field is a configuration error naming the accepted ones', () => {
    assert.throws(() => createComparator({ compareHeaders: ['ip.ecn' as 'ip.tos'] }), /compareHeaders: unknown field ip\.ecn \(accepted: ip\.ttl, ip\.tos, /);
  });
});

describe('timeouts, limits and checkpoints', () => {
  test('a silent secondary: checkpoint after compareTimeoutMs, checked on the scan cycle', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.primary(t.out({ seq: ISN, payload: 'lonely' }), 0);
    assert.deepEqual(t.advanceTo(2999), []);
    assert.deepEqual(t.checkpoints(), []);
    t.advanceTo(4000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads(), ['lonely']);
  });

  test('a secondary that is always a segment ahead, or was ahead and then matched, never times out', () => {
    const steady = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    steady.established(ISN - 1);
    steady.secondary(steady.out({ seq: ISN, payload: pattern(0, 100) }), 0);
    for (let i = 1; i < 500; i++) {
      steady.secondary(steady.out({ seq: ISN + i * 100, payload: pattern(i * 100, 100) }), i * 10);
      steady.primary(steady.out({ seq: ISN + (i - 1) * 100, payload: pattern((i - 1) * 100, 100) }), i * 10);
      steady.advanceTo(i * 10);
    }
    steady.primary(steady.out({ seq: ISN + 49_900, payload: pattern(49_900, 100) }), 5000);
    steady.advanceTo(20_000);
    assert.deepEqual(steady.checkpoints(), []);
    assert.equal(steady.released().length, 501);
    assert.equal(steady.c.counters.secondaryWaitingFrames, 0, 'nothing of the secondary left waiting');
  });

  test('secondary output the primary never produces is a timeout too', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.secondary(t.udp({ payload: 'phantom' }), 0);
    t.advanceTo(5000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
  });

  test('a full queue asks for a checkpoint but never drops a primary frame', () => {
    const t = new Twins({ maxQueueFrames: 4 });
    for (let i = 0; i < 6; i++) t.primary(t.udp({ payload: `p${i}` }));
    assert.deepEqual(t.checkpoints(), ['queue_full']);
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads(), ['p0', 'p1', 'p2', 'p3', 'p4', 'p5']);
  });

  test('the SVM\'s datagrams waiting for the PVM\'s are held to maxQueueBytes too, and counted down as they match', () => {
    const t = new Twins({ maxQueueBytes: 4000, maxQueueFrames: 1024 });
    const d = (i: number) => t.udp({ payload: pattern(i * 1000, 1000) });
    for (let i = 0; i < 3; i++) t.secondary(d(i)); // 3 x 1042 bytes: under the limit
    for (let i = 0; i < 3; i++) t.primary(d(i));
    for (let i = 3; i < 6; i++) t.secondary(d(i)); // matched ones no longer count
    assert.deepEqual(t.checkpoints(), []);
    t.secondary(d(6));
    assert.deepEqual(t.mismatchReasons(), ['queue_full']);
    assert.match(t.actions.flatMap((a) => (a.kind === 'mismatch' ? [a.mismatch.detail] : [])).join(), /4 secondary messages \(\d+ bytes\) waiting/);
  });

  test('TCP bytes over maxQueueBytes: one queue_full, however many segments follow', () => {
    const t = new Twins({ maxQueueBytes: 1000 });
    t.established(ISN - 1);
    for (let i = 0; i < 5; i++) t.primary(t.out({ seq: ISN + i * 400, payload: pattern(i * 400, 400) }));
    assert.deepEqual(t.mismatchReasons(), ['queue_full']);
    t.checkpointDone();
    assert.equal(t.released().length, 6);
  });

  test('checkpoint done: held primaries released in arrival order, secondaries discarded, comparison restarts', () => {
    const t = new Twins();
    t.primary(t.out({ seq: ISN, payload: 'AAA' }));
    t.primary(t.udp({ payload: 'u1' }));
    t.secondary(t.out({ seq: ISN, payload: 'AAB' }));
    t.primary(t.out({ seq: ISN + 3, payload: 'CCC' }));
    t.secondary(t.udp({ payload: 'zz' }));
    assert.deepEqual(t.checkpoints(), ['tcp.payload'], 'the second mismatch coalesces into the first request');
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload', 'udp.payload']);
    assert.equal(t.c.counters.checkpointsCoalesced, 1);
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads(), ['AAA', 'u1', 'CCC']);
    // After the checkpoint both guests continue from the primary's position, in the same space.
    t.primary(t.out({ seq: ISN + 6, payload: 'next' }));
    t.secondary(t.out({ seq: ISN + 6, payload: 'next' }));
    t.primary(t.udp({ payload: 'u2' }));
    t.secondary(t.udp({ payload: 'u2' }));
    assert.deepEqual(t.releasedPayloads().slice(3), ['next', 'u2']);
    assert.equal(t.checkpoints().length, 1);
  });

  test('a checkpoint restarts comparison on every flow that diverged, however many checkpoints pass before it speaks again', () => {
    const t = new Twins();
    // An IPv4 frame too short for its header: undecodable, compared as a whole frame.
    const undecodable = (fill: number): Uint8Array => Uint8Array.from([...new Array<number>(12).fill(2), 0x08, 0x00, 0x45, ...new Array<number>(9).fill(fill)]);
    t.primary(t.udp({ srcPort: 1, payload: 'a' }));
    t.secondary(t.udp({ srcPort: 1, payload: 'A' }));
    t.primary(undecodable(1));
    t.secondary(undecodable(2));
    t.checkpointDone();
    // Only another flow speaks through two more checkpoints.
    for (const n of [1, 2]) {
      t.primary(t.udp({ srcPort: 2, payload: `b${n}` }));
      t.secondary(t.udp({ srcPort: 2, payload: `B${n}` }));
      t.checkpointDone();
    }
    assert.deepEqual(t.mismatchReasons(), ['udp.payload', 'frame.payload', 'udp.payload', 'udp.payload']);
    const before = t.released().length;
    t.primary(t.udp({ srcPort: 1, payload: 'same' }));
    t.secondary(t.udp({ srcPort: 1, payload: 'same' }));
    t.primary(undecodable(3));
    t.secondary(undecodable(3));
    assert.equal(t.released().length, before + 2, 'both compared afresh and released at once');
    assert.equal(t.mismatchReasons().length, 4);
  });

  test('every connection is counted opened, the shared one of undecodable frames too', () => {
    const t = new Twins();
    t.primary(Uint8Array.from([...new Array<number>(12).fill(2), 0x08, 0x00, 0x45]));
    t.primary(t.udp({ payload: 'a' }));
    assert.deepEqual([t.c.counters.connectionsOpened, t.c.counters.connectionsClosed], [2, 0]);
  });

  test('an idle flow ages out on its idle timeout however many checkpoints other flows cause meanwhile', () => {
    const t = new Twins({ idleTimeoutMs: 5000, scanIntervalMs: 1000 });
    t.primary(t.udp({ srcPort: 1, payload: 'once' }), 0);
    t.secondary(t.udp({ srcPort: 1, payload: 'once' }), 0);
    for (let at = 1000; at <= 8000; at += 1000) {
      t.primary(t.udp({ srcPort: 2, payload: `p${at}` }), at);
      t.secondary(t.udp({ srcPort: 2, payload: `s${at}` }), at);
      t.checkpointDone();
      t.advanceTo(at + 500);
    }
    assert.equal(t.checkpoints().length, 8);
    assert.deepEqual([t.c.counters.connectionsOpened, t.c.counters.connectionsClosed], [2, 1], 'the quiet flow closed; the busy one stays');
  });

  test('a full connection table evicting a connection that holds frames asks for a checkpoint first', () => {
    const t = new Twins({ maxConnections: 2 });
    t.primary(t.udp({ srcPort: 1, payload: 'held' }));
    t.primary(t.udp({ srcPort: 2, payload: 'b' }));
    t.secondary(t.udp({ srcPort: 2, payload: 'b' }));
    t.primary(t.udp({ srcPort: 3, payload: 'c' }));
    assert.deepEqual(t.checkpoints(), ['table_full']);
    assert.deepEqual(t.releasedPayloads(), ['b']);
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads(), ['b', 'held', 'c']);
  });
});

test('a tag given with a primary frame comes back with its release (held, immediate, fragments, flush)', () => {
  const t = new Twins();
  const c = t.c;
  const tagsOf = (actions: readonly Action[]) => actions.flatMap((a) => (a.kind === 'release' ? [a.tag] : []));
  const got: unknown[] = [];
  got.push(...tagsOf(c.ingest('primary', t.udp({ payload: 'a' }), 0, 'held')));
  got.push(...tagsOf(c.ingest('secondary', t.udp({ payload: 'a' }), 0)));
  got.push(...tagsOf(c.ingest('secondary', t.udp({ payload: 'b' }), 0)));
  got.push(...tagsOf(c.ingest('primary', t.udp({ payload: 'b' }), 0, 'immediate')));
  const pieces = split(t.udp({ payload: pattern(0, 3000), dontFragment: false }), [1480]);
  got.push(...tagsOf(c.ingest('primary', pieces[0]!, 0, 'frag0')));
  got.push(...tagsOf(c.ingest('primary', pieces[1]!, 0, 'frag1')));
  for (const p of split(t.udp({ payload: pattern(0, 3000), dontFragment: false }), [1480])) got.push(...tagsOf(c.ingest('secondary', p, 0)));
  got.push(...tagsOf(c.ingest('primary', t.udp({ payload: 'c' }), 0, 'flushed')));
  got.push(...tagsOf(c.ingest('secondary', t.udp({ payload: 'X' }), 0)));
  got.push(...tagsOf(c.checkpointDone(0)));
  assert.deepEqual(got, ['held', 'immediate', 'frag0', 'frag1', 'flushed']);
});

describe('flushTo: a front end that stops comparing', () => {
  test('releases every held frame in order and drops the SVM\'s output, not counted as a checkpoint done', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.primary(t.out({ seq: ISN, payload: 'ab' }));
    t.primary(t.out({ seq: ISN + 2, payload: 'cd' }));
    t.secondary(t.udp({ payload: 'waiting' }));
    t.c.flushTo({ release: (frame) => t.actions.push({ kind: 'release', frame, tag: undefined }), deliver() {}, drop() {}, mismatch() {}, checkpoint() {}, event() {} }, t.now);
    assert.deepEqual(t.releasedPayloads(), ['', 'ab', 'cd']);
    assert.equal(t.c.counters.heldFrames, 0);
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
    assert.equal(t.c.counters.checkpointsDone, 0);
  });
});

describe('every primary frame is released exactly once', () => {
  test('each frame object comes out once over a mixed run with a checkpoint', () => {
    const t = new Twins();
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      const p = `m${i}`;
      sent.push(p);
      t.primary(t.udp({ payload: p }));
      if (i !== 7) t.secondary(t.udp({ payload: i === 12 ? 'bad' : p }));
    }
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads().sort(), [...sent].sort());
    assert.equal(t.released().length, 20);
  });
});

describe('memory: a released frame is kept by nothing', () => {
  test('frames released while another connection holds one are not kept alive by it', async () => {
    // A held frame used to keep every frame released after it alive until it left, and with
    // each one its whole read buffer (the frames are views with framesImmutable).
    setFlagsFromString('--expose-gc');
    const collectGarbage = runInNewContext('gc') as () => void;
    const c = createComparator({ framesImmutable: true });
    let released = 0;
    const sink: ActionSink = { release: () => void released++, deliver() {}, drop() {}, mismatch() {}, checkpoint() {}, event() {} };
    const out = (port: number, seq: number, flags: number, payload?: string): Uint8Array =>
      emitTcp({ src: GUEST, dst: CLIENT, srcPort: 80, dstPort: port, seq, ack: 5000, flags, ...(payload ? { payload } : {}), options: flags & TCP_SYN ? { mss: 1460 } : {} });
    for (const port of [1, 2]) for (const side of ['primary', 'secondary'] as const) c.ingestTo(sink, side, out(port, ISN - 1, TCP_SYN | TCP_ACK), 0);
    c.ingestTo(sink, 'primary', out(1, ISN, TCP_ACK | TCP_PSH, pattern(0, 100)), 1); // its secondary never comes
    // In a function of its own, so that no local variable keeps the frames.
    const flow = (): WeakRef<ArrayBufferLike>[] => {
      const refs: WeakRef<ArrayBufferLike>[] = [];
      for (let k = 0; k < 10; k++) {
        const primary = out(2, ISN + 100 * k, TCP_ACK | TCP_PSH, pattern(100 * k, 100));
        refs.push(new WeakRef(primary.buffer));
        c.ingestTo(sink, 'primary', primary, 2);
        c.ingestTo(sink, 'secondary', primary.slice(), 2);
      }
      return refs;
    };
    const refs = flow();
    assert.equal(released, 2 + 10, 'both handshakes and every frame of the second connection');
    assert.equal(c.counters.heldFrames, 1, 'the first connection\'s frame is still held');
    await new Promise((resolve) => setImmediate(resolve)); // WeakRef targets stay alive until the current job ends
    collectGarbage();
    assert.deepEqual(refs.map((r) => r.deref() === undefined), refs.map(() => true), 'every released frame was collected');
  });
});

describe('memory: a connection whose output waits copies what it keeps', () => {
  test('with framesImmutable, frames of a connection waiting over 100 ms no longer keep their read buffers alive', async () => {
    setFlagsFromString('--expose-gc');
    const collectGarbage = runInNewContext('gc') as () => void;
    const c = createComparator({ framesImmutable: true, compareTimeoutMs: 60_000 });
    const released: Uint8Array[] = [];
    const sink: ActionSink = { release: (f) => void released.push(f.slice()), deliver() {}, drop() {}, mismatch() {}, checkpoint() {}, event() {} };
    const out = (port: number, seq: number, flags: number, payload?: string): Uint8Array =>
      emitTcp({ src: GUEST, dst: CLIENT, srcPort: 80, dstPort: port, seq, ack: 5000, flags, ...(payload ? { payload } : {}), options: flags & TCP_SYN ? { mss: 1460 } : {} });
    for (const port of [1, 2]) for (const side of ['primary', 'secondary'] as const) c.ingestTo(sink, side, out(port, ISN - 1, TCP_SYN | TCP_ACK), 0);
    // Each frame a view into a 64 KiB buffer of its own, as a socket read would give it.
    const inRead = (frame: Uint8Array): Uint8Array => {
      const read = new Uint8Array(65536);
      read.set(frame, 1000);
      return read.subarray(1000, 1000 + frame.length);
    };
    const sent: Uint8Array[] = [];
    // Port 1: the PVM's output, its SVM's never comes. Port 2: the SVM's, its PVM's never comes.
    const feed = (k: number, at: number): WeakRef<ArrayBufferLike>[] => {
      const refs: WeakRef<ArrayBufferLike>[] = [];
      for (const [port, side] of [[1, 'primary'], [2, 'secondary']] as const) {
        const frame = out(port, ISN + 100 * k, TCP_ACK | TCP_PSH, pattern(100 * k, 100));
        if (side === 'primary') sent.push(frame);
        const view = inRead(frame);
        refs.push(new WeakRef(view.buffer));
        c.ingestTo(sink, side, view, at);
      }
      // And a datagram flow each way: the PVM's on port 53, the SVM's on 54.
      for (const [port, side] of [[53, 'primary'], [54, 'secondary']] as const) {
        const view = inRead(emitUdp({ src: GUEST, dst: CLIENT, srcPort: port, dstPort: 5353, payload: `datagram ${k}` }));
        refs.push(new WeakRef(view.buffer));
        c.ingestTo(sink, side, view, at);
      }
      return refs;
    };
    const early = [0, 1, 2].flatMap((k) => feed(k, 50 + k));
    // The first segment after the wait finds it (and may stay a view); those after it are copied.
    feed(3, 203);
    const late = [4, 5, 6, 7].flatMap((k) => feed(k, 200 + k));
    assert.equal(c.counters.heldFrames, 16, 'every primary frame held');
    // The core's reused decoding views (one per protocol) keep the last frame they decoded until
    // the next: a TCP and a UDP frame of other flows.
    c.ingestTo(sink, 'client', emitTcp({ src: CLIENT, dst: GUEST, srcPort: 3, dstPort: 80, seq: 1, ack: 1, flags: TCP_ACK }), 210);
    for (const side of ['primary', 'secondary'] as const) c.ingestTo(sink, side, emitUdp({ src: GUEST, dst: CLIENT, srcPort: 99, dstPort: 5353, payload: 'x' }), 211);
    await new Promise((resolve) => setImmediate(resolve)); // WeakRef targets stay alive until the current job ends
    collectGarbage();
    assert.deepEqual(early.map((r) => r.deref() !== undefined), early.map(() => true), 'the first 100 ms: views, their buffers kept');
    assert.deepEqual(late.map((r) => r.deref() === undefined), late.map(() => true), 'past it: copies, the buffers collected');
    c.checkpointDoneTo(sink, 300);
    const tcpOut = released.slice(2).filter((f) => f[23] === 6);
    assert.deepEqual(tcpOut.map((f) => toHex(f)), sent.map((f) => toHex(f)), 'the held frames come out whole, in order');
    assert.equal(released.length, 2 + 17);
  });
});

/**
 * The frames a flow held for 300 ms, one a millisecond, as released: past its first 100 ms (from
 * the 102nd: the one that finds the wait is kept as those before it), 98 copies of 154 bytes fill
 * a slab of their own (or two). Before, views of the caller's frames with framesImmutable, which
 * the count leaves out (no 64 KiB slab), else copies among every other copy the core makes.
 */
function assertWaitingCopiesApart(waited: readonly Uint8Array[], framesImmutable: boolean): void {
  const slabs = (frames: readonly Uint8Array[]): number => new Set(frames.filter((f) => f.buffer.byteLength >= 65536).map((f) => f.buffer)).size;
  const late = slabs(waited.slice(102));
  assert.ok(late >= 1 && late <= 2, `${late} slabs past the first 100 ms`);
  if (framesImmutable) assert.equal(slabs(waited), late, 'the first 100 ms as views');
}

describe('memory: copies after a checkpoint', () => {
  for (const framesImmutable of [true, false]) test(`${framesImmutable ? 'framesImmutable' : 'core copying (as run)'}: a flow whose SVM output waited before a checkpoint copies nothing once healthy, so a waiting flow's copies share few slabs`, () => {
    const c = createComparator({ framesImmutable, compareTimeoutMs: 600_000, maxQueueFrames: 100_000, maxQueueBytes: 1 << 30 });
    const released: Uint8Array[] = [];
    const sink: ActionSink = { release: (f) => void released.push(f), deliver() {}, drop() {}, mismatch() {}, checkpoint() {}, event() {} };
    const out = (port: number, seq: number, flags: number, payload?: string): Uint8Array =>
      emitTcp({ src: GUEST, dst: CLIENT, srcPort: 80, dstPort: port, seq, ack: 5000, flags, ...(payload ? { payload } : {}), options: flags & TCP_SYN ? { mss: 1460 } : {} });
    for (const port of [1, 2]) for (const side of ['primary', 'secondary'] as const) c.ingestTo(sink, side, out(port, ISN - 1, TCP_SYN | TCP_ACK), 0);
    // Port 1's SVM output waits 150 ms, then a checkpoint.
    c.ingestTo(sink, 'secondary', out(1, ISN, TCP_ACK | TCP_PSH, pattern(0, 100)), 10);
    c.ingestTo(sink, 'secondary', out(1, ISN + 100, TCP_ACK | TCP_PSH, pattern(100, 100)), 160);
    c.checkpointDoneTo(sink, 200);
    // Port 1 busy and healthy (the PVM leads); port 2's PVM output waits, its SVM's never comes.
    let s1 = ISN;
    let s2 = ISN;
    for (let k = 0; k < 8000; k++) {
      const t = 300 + k / 40;
      const p = out(1, s1, TCP_ACK | TCP_PSH, pattern(k, 1448));
      c.ingestTo(sink, 'primary', p, t);
      c.ingestTo(sink, 'secondary', p.slice(), t);
      s1 += 1448;
      if (k % 40 === 0) {
        c.ingestTo(sink, 'primary', out(2, s2, TCP_ACK | TCP_PSH, pattern(k, 100)), t);
        s2 += 100;
      }
    }
    const before = released.length;
    c.checkpointDoneTo(sink, 600);
    const waited = released.slice(before);
    assert.equal(waited.length, 200, 'port 2\'s frames, held until the checkpoint');
    assertWaitingCopiesApart(waited, framesImmutable);
  });
});

describe('memory: a waiting flow\'s copies have slabs of their own', () => {
  for (const framesImmutable of [true, false]) test(`${framesImmutable ? 'framesImmutable' : 'core copying (as run)'}, translate mode, a busy upload: the copies of the client's frames do not scatter a waiting flow's copies`, () => {
    const c = createComparator({ framesImmutable, mode: 'translate', compareTimeoutMs: 600_000, maxQueueFrames: 100_000, maxQueueBytes: 1 << 30 });
    const released: Uint8Array[] = [];
    const sink: ActionSink = { release: (f) => void released.push(f), deliver() {}, drop() {}, mismatch() {}, checkpoint() {}, event() {} };
    const [P_ISN, S_ISN, C_ISN] = [1_000_000, 7_000_000, 5000];
    const guest = (port: number, seq: number, ack: number, flags: number, payload?: string): Uint8Array =>
      emitTcp({ src: GUEST, dst: CLIENT, srcPort: 80, dstPort: port, seq, ack, flags, ...(payload ? { payload } : {}), options: flags & TCP_SYN ? { mss: 1460 } : {} });
    const client = (port: number, seq: number, ack: number, flags: number, payload?: string): Uint8Array =>
      emitTcp({ src: CLIENT, dst: GUEST, srcPort: port, dstPort: 80, seq, ack, flags, ...(payload ? { payload } : {}), options: flags & TCP_SYN ? { mss: 1460 } : {} });
    for (const port of [1, 2]) {
      c.ingestTo(sink, 'client', client(port, C_ISN - 1, 0, TCP_SYN), 0);
      c.ingestTo(sink, 'primary', guest(port, P_ISN - 1, C_ISN, TCP_SYN | TCP_ACK), 0);
      c.ingestTo(sink, 'secondary', guest(port, S_ISN - 1, C_ISN, TCP_SYN | TCP_ACK), 0);
      c.ingestTo(sink, 'client', client(port, C_ISN, P_ISN, TCP_ACK), 0);
    }
    // Port 1: the client uploads, both guests acknowledge at once (each client frame is copied
    // for the SVM). Port 2: the PVM's output, its SVM's never comes.
    let cs = C_ISN;
    let s2 = P_ISN;
    for (let k = 0; k < 8000; k++) {
      const t = 10 + k / 40;
      c.ingestTo(sink, 'client', client(1, cs, P_ISN, TCP_ACK | TCP_PSH, pattern(k, 1448)), t);
      cs += 1448;
      c.ingestTo(sink, 'primary', guest(1, P_ISN, cs, TCP_ACK), t);
      c.ingestTo(sink, 'secondary', guest(1, S_ISN, cs, TCP_ACK), t);
      if (k % 40 === 0) {
        c.ingestTo(sink, 'primary', guest(2, s2, C_ISN, TCP_ACK | TCP_PSH, pattern(k, 100)), t);
        s2 += 100;
      }
    }
    const before = released.length;
    c.checkpointDoneTo(sink, 600);
    const waited = released.slice(before).filter((f) => f.length > 54 + 12);
    assert.equal(waited.length, 200, 'port 2\'s data, held until the checkpoint');
    assertWaitingCopiesApart(waited, framesImmutable);
  });
});

describe('the sink form: actions as calls (ingestTo, advanceTo, checkpointDoneTo)', () => {
  /** A sink writing each call down as `name args`. */
  function recorder(): { sink: ActionSink; calls: string[] } {
    const calls: string[] = [];
    const sink: ActionSink = {
      release: (frame, tag) => calls.push(`release ${frame.length} ${String(tag)}`),
      deliver: (to, frame) => calls.push(`deliver ${to} ${frame.length}`),
      drop: (frame) => calls.push(`drop ${frame.length}`),
      mismatch: (flow, m) => calls.push(`mismatch ${flow} ${m.reason}`),
      checkpoint: (reason, flow) => calls.push(`checkpoint ${reason} ${flow}`),
      event: (code, flow) => calls.push(`event ${code} ${flow}`),
    };
    return { sink, calls };
  }

  test('every kind of action arrives as its call, in order, tags included', () => {
    const t = new Twins({ compareTimeoutMs: 10, scanIntervalMs: 5 });
    const c = t.c;
    const { sink, calls } = recorder();
    const synAck = t.out({ seq: ISN - 1, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, windowScale: 7 } });
    c.ingestTo(sink, 'client', t.in({ seq: 5000, payload: 'q' }), 0);
    c.ingestTo(sink, 'primary', synAck, 0, 'syn');
    c.ingestTo(sink, 'secondary', synAck, 0);
    c.ingestTo(sink, 'primary', t.out({ seq: ISN, payload: 'same' }), 1, 'a');
    c.ingestTo(sink, 'secondary', t.out({ seq: ISN, payload: 'same' }), 1);
    c.ingestTo(sink, 'primary', t.out({ seq: ISN + 4, payload: 'held' }), 2, 'b');
    c.advanceTo(sink, 20);
    c.checkpointDoneTo(sink, 21);
    const flow = 'tcp 10.0.0.2:80 <> 10.0.0.1:40000';
    assert.deepEqual(calls, [
      'deliver primary 55', 'deliver secondary 55',
      'release 66 syn', 'drop 66',
      'release 58 a', 'drop 58',
      `mismatch ${flow} timeout`, `checkpoint timeout ${flow}`,
      'release 58 b',
    ]);
  });

  test('a sink calling back into the comparator is refused, and the comparator stays usable', () => {
    const t = new Twins();
    const { sink, calls } = recorder();
    const reentrant: ActionSink = { ...sink, release: () => t.c.ingest('secondary', t.out({ seq: ISN, payload: 'x' }), 0) };
    t.established(ISN - 1);
    t.c.ingestTo(sink, 'secondary', t.out({ seq: ISN, payload: 'x' }), 0);
    assert.throws(() => t.c.ingestTo(reentrant, 'primary', t.out({ seq: ISN, payload: 'x' }), 0), /called from inside an ActionSink call/);
    t.c.ingestTo(sink, 'primary', t.out({ seq: ISN + 1, payload: 'y' }), 0);
    t.c.ingestTo(sink, 'secondary', t.out({ seq: ISN + 1, payload: 'y' }), 0);
    assert.deepEqual(calls, ['drop 55', 'release 55 undefined', 'drop 55']);
  });
});

test('configuration errors name the setting', () => {
  assert.throws(() => createComparator({ compareTimeoutMs: 0 }), (e: unknown) => e instanceof ConfigError && /compareTimeoutMs must be an integer >= 1 \(got 0\)/.test(e.message));
  assert.throws(() => createComparator({ mode: 'magic' as 'translate' }), /mode must be translate or pre-translated/);
  assert.throws(() => createComparator({ framesImmutable: 'yes' as unknown as boolean }), /framesImmutable must be true or false \(got yes\)/);
});

describe('TCP-MD5 and TCP-AO: a signed connection whose SVM numbers differ cannot be translated', () => {
  /** `frame` (Ethernet, IPv4, TCP) with TCP option `kind` of 18 bytes (a 16-byte MAC) after its options. */
  const signed = (frame: Uint8Array, kind: number): Uint8Array => {
    const tcpAt = 14 + 20;
    const headerLength = (frame[tcpAt + 12]! >> 4) * 4;
    const option = [1, 1, kind, 18, ...new Array<number>(16).fill(0xab)];
    const out = new Uint8Array(frame.length + option.length);
    out.set(frame.subarray(0, tcpAt + headerLength));
    out.set(option, tcpAt + headerLength);
    out.set(frame.subarray(tcpAt + headerLength), tcpAt + headerLength + option.length);
    out[tcpAt + 12] = ((headerLength + option.length) / 4) << 4;
    const total = out.length - 14;
    out[14 + 2] = total >> 8;
    out[14 + 3] = total & 0xff;
    return out;
  };
  const opts = { mss: 1460 };
  for (const [name, kind] of [['TCP-MD5', 19], ['TCP-AO', 29]] as const) {
    test(`${name}: a checkpoint at the handshake, not a timeout later; the SYN-ACK goes out, the data after the checkpoint`, () => {
      const t = new Twins({ mode: 'translate' });
      t.client(signed(t.in({ seq: 4999, flags: TCP_SYN, options: opts }), kind));
      t.primary(signed(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }), kind));
      t.secondary(signed(t.out({ seq: 900_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }), kind));
      assert.deepEqual(t.checkpoints(), ['tcp.signed']);
      const m = t.actions.find((a) => a.kind === 'mismatch');
      assert.ok(m?.kind === 'mismatch');
      assert.equal(m.mismatch.detail, `${name} connection whose SVM numbers differ (ISN ${ISN} against 900000): its segments cannot be translated without the key`);
      assert.equal(t.released().length, 1, 'the SYN-ACKs agree: the PVM\'s goes out');
      t.client(signed(t.in({ seq: 5000, ack: ISN + 1, payload: 'hi' }), kind));
      t.primary(signed(t.out({ seq: ISN + 1, ack: 5002, payload: 'hello' }), kind));
      assert.equal(t.released().length, 1, 'held until the checkpoint');
      t.checkpointDone();
      assert.deepEqual(t.releasedPayloads(), ['', 'hello']);
      // The SVM is the PVM's copy now: same numbers, nothing rewritten, compared as usual.
      t.client(signed(t.in({ seq: 5002, ack: ISN + 6, payload: 'more' }), kind));
      const toSvm = t.delivered('secondary').at(-1)!;
      assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint32(14 + 20 + 8), ISN + 6, 'not rewritten');
      t.primary(signed(t.out({ seq: ISN + 6, ack: 5006, payload: 'again' }), kind));
      t.secondary(signed(t.out({ seq: ISN + 6, ack: 5006, payload: 'again' }), kind));
      assert.deepEqual(t.releasedPayloads(), ['', 'hello', 'again']);
      assert.deepEqual(t.checkpoints(), ['tcp.signed']);
    });
  }

  test('signed with the same numbers (the SVM a copy of the PVM), or unsigned: no checkpoint', () => {
    for (const [kind, svmIsn] of [[19, ISN], [0, 900_000]] as const) {
      const t = new Twins({ mode: 'translate' });
      const sign = (f: Uint8Array): Uint8Array => (kind === 0 ? f : signed(f, kind));
      t.client(sign(t.in({ seq: 4999, flags: TCP_SYN, options: opts })));
      t.primary(sign(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts })));
      t.secondary(sign(t.out({ seq: svmIsn, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts })));
      assert.deepEqual(t.checkpoints(), [], `option ${kind}, SVM ISN ${svmIsn}`);
    }
  });

  test('signing or Multipath TCP on one guest\'s SYN-ACK only is a tcp.syn_options mismatch', () => {
    for (const kind of [19, 29, 30]) {
      const t = new Twins();
      t.primary(signed(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }), kind));
      t.secondary(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
      assert.deepEqual(t.checkpoints(), ['tcp.syn_options'], `option ${kind}`);
      const m = t.actions.find((a) => a.kind === 'mismatch');
      assert.ok(m?.kind === 'mismatch');
      assert.match(m.mismatch.detail, / (md5|ao|mptcp) against SYN-ACK mss 1460 wscale -1 sackOK 0 ts 0$/);
    }
  });

  test('pre-translated mode: the SVM\'s SYN-ACK with its own ISN (QEMU\'s rewriter would rewrite what follows) asks at once too', () => {
    const t = new Twins();
    t.primary(signed(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }), 19));
    t.secondary(signed(t.out({ seq: 900_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }), 19));
    assert.deepEqual(t.checkpoints(), ['tcp.signed']);
  });
});

describe('TCP: a new connection on the ports of a closed one', () => {
  const opts = { mss: 1460, sackPermitted: true, windowScale: 7 };
  /** One short connection, closed with FIN both ways; then a new SYN-ACK from `isn2` on the same ports. */
  function reused(mode: 'pre-translated' | 'translate', isn2: number, svmMss: number, svmData: string): Twins {
    const t = new Twins({ mode });
    const shift = mode === 'translate' ? 777 : 0;
    const both = (f: Parameters<Twins['out']>[0], svm: Partial<Parameters<Twins['out']>[0]> = {}) => {
      t.primary(t.out(f));
      t.secondary(t.out({ ...f, seq: ((f.seq ?? 0) + shift) >>> 0, ...svm }));
    };
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: opts }));
    both({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts });
    t.client(t.in({ seq: 5000, ack: ISN + 1, payload: 'GET' }));
    both({ seq: ISN + 1, ack: 5003, flags: TCP_ACK | TCP_FIN, payload: 'OK' });
    t.client(t.in({ seq: 5003, ack: ISN + 4, flags: TCP_ACK | TCP_FIN }));
    both({ seq: ISN + 4, ack: 5004 });
    t.client(t.in({ seq: 9999, flags: TCP_SYN, options: opts }), 100);
    both({ seq: isn2, ack: 10000, flags: TCP_SYN | TCP_ACK, options: opts }, { options: { ...opts, mss: svmMss } });
    t.client(t.in({ seq: 10000, ack: (isn2 + 1) >>> 0, payload: 'GET' }));
    both({ seq: (isn2 + 1) >>> 0, ack: 10003, payload: 'secret-A' }, { payload: svmData });
    return t;
  }

  for (const mode of ['pre-translated', 'translate'] as const) {
    for (const isn2 of [ISN + 0x10000000, ISN - 0x10000000]) {
      test(`is compared afresh, its handshake and its bytes (${mode}, new ISN ${isn2 > ISN ? 'after' : 'before'} the old)`, () => {
        const same = reused(mode, isn2 >>> 0, 1460, 'secret-A');
        assert.deepEqual(same.checkpoints(), [], 'identical: no checkpoint');
        assert.deepEqual(same.releasedPayloads().slice(-2), ['', 'secret-A'], 'its SYN-ACK and data released');
        assert.equal(same.c.counters.connectionsOpened, 2);
        assert.deepEqual(reused(mode, isn2 >>> 0, 1400, 'secret-A').mismatchReasons(), ['tcp.syn_options'], 'a different MSS is seen');
        const data = reused(mode, isn2 >>> 0, 1460, 'secret-B');
        assert.deepEqual(data.mismatchReasons(), ['tcp.payload'], 'different bytes are seen');
        assert.notDeepEqual(data.releasedPayloads().at(-1), 'secret-A', 'and not released');
      });
    }
  }

  test('a SYN-ACK resent after the FIN, with its first sequence number, is still the old connection', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.primary(t.out({ seq: ISN, flags: TCP_ACK | TCP_FIN }));
    t.secondary(t.out({ seq: ISN, flags: TCP_ACK | TCP_FIN }));
    t.secondary(t.out({ seq: ISN - 1, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, windowScale: 7 } }));
    assert.equal(t.c.counters.connectionsOpened, 1);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('while the closed one still holds frames: a checkpoint, and nothing of the new one goes out before them', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.primary(t.out({ seq: ISN, flags: TCP_ACK | TCP_FIN, payload: 'bye' })); // the SVM's FIN has not come
    t.primary(t.out({ seq: 77, ack: 10000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, windowScale: 7 } }));
    t.secondary(t.out({ seq: 77, ack: 10000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, windowScale: 7 } }));
    assert.deepEqual(t.checkpoints(), ['tcp.reused']);
    assert.deepEqual(t.releasedPayloads(), [''], 'only the first SYN-ACK so far');
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads(), ['', 'bye', ''], 'the old FIN, then the new SYN-ACK');
  });
});

describe('TCP: a checkpoint between the handshake segments', () => {
  for (const mode of ['pre-translated', 'translate'] as const) {
    test(`the PVM's SYN-ACK after it is released with the SVM's, not after a timeout (${mode})`, () => {
      const t = new Twins({ mode, compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      const synAck = t.out({ seq: ISN - 1, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } });
      t.client(t.in({ seq: 4999, flags: TCP_SYN, options: { mss: 1460 } }));
      t.secondary(synAck);
      t.udp({ payload: 'x' });
      t.primary(t.udp({ payload: 'a' })); // another flow diverges: a checkpoint for everyone
      t.secondary(t.udp({ payload: 'b' }));
      t.checkpointDone();
      const before = t.released().length;
      t.primary(synAck);
      t.secondary(synAck);
      assert.equal(t.released().length, before + 1, 'released at once');
      t.advanceTo(10_000);
      assert.deepEqual(t.checkpoints(), ['udp.payload'], 'no timeout');
    });
  }
});

describe('translate mode: a checkpoint after the SVM\'s handshake segment but before the PVM\'s', () => {
  // The SVM is a copy of a PVM that had not opened (or answered) yet: afterwards both send their
  // handshake segment afresh, each with an ISN of its own (Linux's include a clock).
  const opts = { mss: 1460 };
  const checkpointAfter = (t: Twins, svmFirst: Uint8Array): void => {
    t.secondary(svmFirst);
    t.primary(t.udp({ payload: 'a' })); // another flow diverges: a checkpoint for everyone
    t.secondary(t.udp({ payload: 'b' }));
    t.checkpointDone();
  };
  const ackToSvm = (t: Twins): number => {
    const f = t.delivered('secondary').at(-1)!;
    return new DataView(f.buffer, f.byteOffset).getUint32(14 + 20 + 8);
  };

  test('the guests open: the client\'s SYN-ACK reaches the SVM acknowledging its new ISN', () => {
    const t = new Twins({ mode: 'translate' });
    const syn = (isn: number) => t.out({ srcPort: 1000, dstPort: 443, seq: isn, ack: 0, flags: TCP_SYN, options: opts });
    checkpointAfter(t, syn(900_000));
    t.primary(syn(1_000));
    t.secondary(syn(5_000));
    t.client(t.in({ srcPort: 443, dstPort: 1000, seq: 7000, ack: 1_001, flags: TCP_SYN | TCP_ACK, options: opts }));
    assert.equal(ackToSvm(t), 5_001);
  });

  test('the client opens: its request reaches the SVM in its new space, and identical answers match', () => {
    const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const synAck = (isn: number) => t.out({ seq: isn, ack: 7001, flags: TCP_SYN | TCP_ACK, options: opts });
    t.client(t.in({ seq: 7000, ack: 0, flags: TCP_SYN, options: opts }));
    checkpointAfter(t, synAck(900_000));
    t.primary(synAck(1_000));
    t.secondary(synAck(5_000));
    t.client(t.in({ seq: 7001, ack: 1_001, payload: 'GET /' }));
    assert.equal(ackToSvm(t), 5_001);
    t.primary(t.out({ seq: 1_001, ack: 7006, payload: 'HTTP/1.1 200 OK' }));
    t.secondary(t.out({ seq: 5_001, ack: 7006, payload: 'HTTP/1.1 200 OK' }));
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), ['udp.payload'], 'no timeout, no mismatch');
    assert.ok(t.releasedPayloads().includes('HTTP/1.1 200 OK'));
  });
});

describe('a full table evicting a connection with frames held or the SVM ahead', () => {
  for (const kind of ['tcp', 'udp'] as const) {
    const frame = (t: Twins, port: number, seq: number, text: string) => kind === 'tcp' ? t.out({ srcPort: port, seq, payload: text }) : t.udp({ srcPort: port, payload: text });

    test(`${kind}: the flow's later frames are not released ahead of the evicted ones`, () => {
      const t = new Twins({ maxConnections: 2 });
      t.primary(frame(t, 80, 1000, 'one')); // held
      for (const port of [81, 82]) { // the table evicts port 80's connection
        t.primary(frame(t, port, 1, 'x'));
        t.secondary(frame(t, port, 1, 'x'));
      }
      t.secondary(frame(t, 80, 1000, 'one'));
      t.primary(frame(t, 80, 1003, 'two'));
      t.secondary(frame(t, 80, 1003, 'two'));
      assert.deepEqual(t.checkpoints(), ['table_full']);
      t.checkpointDone();
      const order = t.releasedPayloads().filter((p) => p === 'one' || p === 'two');
      assert.deepEqual(order, ['one', 'two']);
    });

    test(`${kind}: secondary output waiting when its connection is evicted takes a checkpoint (a difference in it is not lost)`, () => {
      const t = new Twins({ maxConnections: 2 });
      t.secondary(frame(t, 80, 1000, 'ONE')); // the SVM ahead, and different
      for (const port of [81, 82]) {
        t.primary(frame(t, port, 1, 'x'));
        t.secondary(frame(t, port, 1, 'x'));
      }
      t.primary(frame(t, 80, 1000, 'one'));
      assert.deepEqual(t.checkpoints(), ['table_full']);
      assert.ok(!t.releasedPayloads().includes('one'), 'the primary frame waits for the checkpoint');
      t.checkpointDone();
      assert.ok(t.releasedPayloads().includes('one'));
    });
  }
});

describe('translate mode: a long-idle connection whose SVM numbers differ', () => {
  test('is not forgotten: its client frames keep the SVM\'s numbers and its output still matches', () => {
    const t = new Twins({ mode: 'translate', idleTimeoutMs: 300_000 });
    const opts = { mss: 1460 };
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: opts }));
    t.primary(t.out({ seq: 1000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.secondary(t.out({ seq: 900_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.client(t.in({ seq: 5000, ack: 1001, payload: 'hi' }));
    t.primary(t.out({ seq: 1001, ack: 5002, payload: 'hello' }));
    t.secondary(t.out({ seq: 900_001, ack: 5002, payload: 'hello' }));
    t.advanceTo(301_000);
    assert.equal(t.c.counters.connectionsClosed, 0);
    t.client(t.in({ seq: 5002, ack: 1006, payload: 'again' }), 301_000);
    const toSvm = t.delivered('secondary').at(-1)!;
    assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint32(14 + 20 + 8), 900_006, 'ACK in the SVM\'s space');
    t.primary(t.out({ seq: 1006, ack: 5007, payload: 'back' }));
    t.secondary(t.out({ seq: 900_006, ack: 5007, payload: 'back' }));
    assert.deepEqual(t.releasedPayloads().at(-1), 'back');
    t.advanceTo(320_000);
    assert.deepEqual(t.checkpoints(), []);
  });
});

describe('TCP: handshake options beyond MSS, window scale and SACK-permitted', () => {
  const synAck = (t: Twins, options: Record<string, unknown>, flags = 0) => t.out({ seq: ISN - 1, ack: 5000, flags: TCP_SYN | TCP_ACK | flags, options: { mss: 1460, ...options } });
  test('timestamps on one guest only, or ECN on one only, is tcp.syn_options', () => {
    for (const [p, s, pf, sf] of [[{ timestamp: [1, 0] }, {}, 0, 0], [{}, {}, 0, 0x40]] as const) {
      const t = new Twins();
      t.primary(synAck(t, p, pf));
      t.secondary(synAck(t, s, sf));
      assert.deepEqual(t.mismatchReasons(), ['tcp.syn_options']);
    }
    const same = new Twins();
    same.primary(synAck(same, { timestamp: [1, 0] }, 0x40));
    same.secondary(synAck(same, { timestamp: [9, 0] }, 0x40));
    assert.deepEqual(same.checkpoints(), [], 'the same options (timestamps values differ, as they do)');
  });
});

/**
 * Translate mode, guests connecting out to a server at port 5432: frame makers for it, and
 * connection 1 opened, the PVM from port 1000 (ISN 100), the SVM from port 2000 (ISN 900), the
 * client's SYN-ACK (ISN 7000) in.
 */
function connectedFromDifferentPorts(t: Twins) {
  const opts = { mss: 1460 };
  const out = (port: number, f: Parameters<Twins['out']>[0]) => t.out({ srcPort: port, dstPort: 5432, ack: 0, ...f });
  const into = (port: number, f: Parameters<Twins['in']>[0]) => t.in({ srcPort: 5432, dstPort: port, ...f });
  t.primary(out(1000, { seq: 100, flags: TCP_SYN, options: opts }));
  t.secondary(out(2000, { seq: 900, flags: TCP_SYN, options: opts }));
  t.client(into(1000, { seq: 7000, ack: 101, flags: TCP_SYN | TCP_ACK, options: opts }));
  return { out, into, opts };
}

describe('translate mode: the guests\' ephemeral ports crossed', () => {
  test('the SVM\'s SYN from the port the PVM uses for a live connection is not taken for part of it', () => {
    const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const { out, into, opts } = connectedFromDifferentPorts(t);
    t.primary(out(1000, { seq: 101, ack: 7001 }));
    t.secondary(out(2000, { seq: 901, ack: 7001 }));
    const before = t.released().length;
    // Connection 2: the SVM takes port 1000, the PVM 3000; the SVM's SYN first.
    t.secondary(out(1000, { seq: 5000, flags: TCP_SYN, options: opts }));
    t.primary(out(3000, { seq: 6000, flags: TCP_SYN, options: opts }));
    assert.equal(t.released().length, before + 1, 'the PVM\'s SYN is released once the SVM\'s agrees');
    t.client(into(3000, { seq: 8000, ack: 6001, flags: TCP_SYN | TCP_ACK, options: opts }));
    const toSvm = t.delivered('secondary').at(-1)!;
    assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint16(14 + 20 + 2), 1000, 'the client\'s SYN-ACK goes to the SVM\'s port');
    // Both connections carry on.
    t.primary(out(1000, { seq: 101, ack: 7001, payload: 'one' }));
    t.secondary(out(2000, { seq: 901, ack: 7001, payload: 'one' }));
    t.primary(out(3000, { seq: 6001, ack: 8001, payload: 'two' }));
    t.secondary(out(1000, { seq: 5001, ack: 8001, payload: 'two' }));
    assert.deepEqual(t.releasedPayloads().slice(-2), ['one', 'two']);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
  });
});

describe('the scan clock after an idle stretch', () => {
  test('a frame after a long gap with nothing to scan sets the next deadline from its own time', () => {
    const t = new Twins({ scanIntervalMs: 1000, idleTimeoutMs: 5000 });
    t.established(ISN - 1);
    t.advanceTo(60_000);
    assert.equal(t.c.nextDeadline(), undefined, 'the connection aged out: nothing to scan');
    const yearLater = 365 * 24 * 3600 * 1000;
    t.primary(t.udp({ payload: 'x' }), yearLater);
    const next = t.c.nextDeadline();
    assert.ok(next !== undefined && next > yearLater && next <= yearLater + 1000, `next deadline ${next}`);
  });
});

describe('new connections on old ports, continued: checkpoints, pairing, pre-translated mode', () => {
  const opts = { mss: 1460, sackPermitted: true, windowScale: 7 };

  for (const svmData of ['hello', 'HELLO']) {
    test(`translate mode, a checkpoint after the SYN-ACKs, the client resets and reconnects: compared afresh (${svmData === 'hello' ? 'identical' : 'different'})`, () => {
      const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      t.client(t.in({ seq: 4999, flags: TCP_SYN, options: opts }));
      t.primary(t.out({ seq: 1000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
      t.secondary(t.out({ seq: 900_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
      t.checkpointDone(); // the SVM is a copy of the PVM now: it resends the PVM's SYN-ACK
      t.client(t.in({ seq: 5000, flags: TCP_RST }), 1000);
      const resent = t.out({ seq: 1000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts });
      t.primary(resent);
      t.secondary(resent);
      t.client(t.in({ seq: 70_000, flags: TCP_SYN, options: opts }), 2000);
      t.primary(t.out({ seq: 30_000, ack: 70_001, flags: TCP_SYN | TCP_ACK, options: opts }));
      t.secondary(t.out({ seq: 60_000, ack: 70_001, flags: TCP_SYN | TCP_ACK, options: opts }));
      t.client(t.in({ seq: 70_001, ack: 30_001, payload: 'GET' }));
      t.primary(t.out({ seq: 30_001, ack: 70_004, payload: 'hello' }));
      t.secondary(t.out({ seq: 60_001, ack: 70_004, payload: svmData }));
      t.advanceTo(9000);
      assert.deepEqual(t.checkpoints(), svmData === 'hello' ? [] : ['tcp.payload']);
    });

    test(`pre-translated mode, the client resets (unseen) and reconnects from the same port: compared afresh (${svmData === 'hello' ? 'identical' : 'different'})`, () => {
      const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      t.primary(t.out({ seq: 1000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
      t.secondary(t.out({ seq: 777_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts })); // QEMU's rewriter leaves SYN-ACKs alone
      t.primary(t.out({ seq: 1001, ack: 5003, payload: 'first' }));
      t.secondary(t.out({ seq: 1001, ack: 5003, payload: 'first' }));
      t.primary(t.out({ seq: 500_000_000, ack: 9000, flags: TCP_SYN | TCP_ACK, options: opts }), 2000);
      t.secondary(t.out({ seq: 123_456, ack: 9000, flags: TCP_SYN | TCP_ACK, options: opts }));
      t.primary(t.out({ seq: 500_000_001, ack: 9010, payload: 'hello' }));
      t.secondary(t.out({ seq: 500_000_001, ack: 9010, payload: svmData }));
      t.advanceTo(10_000);
      assert.deepEqual(t.checkpoints(), svmData === 'hello' ? [] : ['tcp.payload']);
    });
  }

  for (const svmFirst of [false, true]) {
    test(`translate mode: the same differing ports reused for a new connection while the old one lingers pair afresh (${svmFirst ? 'SVM' : 'PVM'} SYN first)`, () => {
      const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      const { out, into, opts } = connectedFromDifferentPorts(t);
      t.client(into(1000, { seq: 7001, ack: 101, payload: 'bye', flags: TCP_ACK | TCP_FIN }));
      t.primary(out(1000, { seq: 101, ack: 7005, flags: TCP_ACK | TCP_FIN }));
      t.secondary(out(2000, { seq: 901, ack: 7005, flags: TCP_ACK | TCP_FIN }));
      t.client(into(1000, { seq: 7005, ack: 102 }));
      const pSyn = out(1000, { seq: 50_000, flags: TCP_SYN, options: opts });
      const sSyn = out(2000, { seq: 80_000, flags: TCP_SYN, options: opts });
      if (svmFirst) t.secondary(sSyn, 1000);
      t.primary(pSyn, 1000);
      if (!svmFirst) t.secondary(sSyn, 1000);
      t.client(into(1000, { seq: 9000, ack: 50_001, flags: TCP_SYN | TCP_ACK, options: opts }));
      const toSvm = t.delivered('secondary').at(-1)!;
      assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint16(14 + 20 + 2), 2000, 'the client\'s SYN-ACK goes to the SVM\'s port');
      t.primary(out(1000, { seq: 50_001, ack: 9001, payload: 'q2' }));
      t.secondary(out(2000, { seq: 80_001, ack: 9001, payload: 'q2' }));
      assert.equal(t.releasedPayloads().at(-1), 'q2');
      t.advanceTo(10_000);
      assert.deepEqual(t.checkpoints(), []);
    });
  }

  test('translate mode: an SVM SYN on the port of the PVM\'s closing connection, which the SVM runs on another port, does not end it', () => {
    const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    const { out, into, opts } = connectedFromDifferentPorts(t);
    t.primary(out(1000, { seq: 101, ack: 7001, flags: TCP_ACK | TCP_FIN })); // half-closed by the guests
    t.secondary(out(2000, { seq: 901, ack: 7001, flags: TCP_ACK | TCP_FIN }));
    t.secondary(out(1000, { seq: 5000, flags: TCP_SYN, options: opts })); // the SVM's next connection, from port 1000
    t.primary(out(3000, { seq: 6000, flags: TCP_SYN, options: opts }));
    t.client(into(1000, { seq: 7001, ack: 102, payload: 'more' })); // the client still talks on connection 1
    const toSvm = t.delivered('secondary').at(-1)!;
    const view = new DataView(toSvm.buffer, toSvm.byteOffset);
    assert.deepEqual([view.getUint16(14 + 20 + 2), view.getUint32(14 + 20 + 8)], [2000, 902], 'to the SVM\'s socket of connection 1, in its numbers');
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
  });

  test('undecodable frames after their shared flow was evicted holding one wait behind it', () => {
    const t = new Twins({ maxConnections: 1 });
    const junk = (b: number) => new Uint8Array([0xde, 0xad, b]);
    t.primary(junk(1));
    t.primary(t.udp({ payload: 'x' })); // evicts the undecodable-frames flow: a checkpoint
    t.secondary(t.udp({ payload: 'x' }));
    t.primary(junk(2));
    t.secondary(junk(2));
    t.checkpointDone();
    assert.deepEqual(t.released().filter((f) => f.length === 3).map((f) => f[2]), [1, 2]);
  });
});

describe('how long closed and translated connections stay', () => {
  const opts = { mss: 1460 };
  function translated(t: Twins): void {
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: opts }));
    t.primary(t.out({ seq: 1000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.secondary(t.out({ seq: 900_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.client(t.in({ seq: 5000, ack: 1001, payload: 'hi' }));
  }
  test('an established translated connection is forgotten after 2 h 15 min idle (with a checkpoint: its offsets go), not five minutes; a closed one as closed ones are', () => {
    const open = new Twins({ mode: 'translate', idleTimeoutMs: 300_000, scanIntervalMs: 1000 });
    translated(open);
    open.advanceTo(2 * 3_600_000 + 5000);
    assert.equal(open.c.counters.connectionsClosed, 0, 'kept past the idle timeout and the keepalive time');
    open.advanceTo(2 * 3_600_000 + 15 * 60_000 + 5000);
    assert.equal(open.c.counters.connectionsClosed, 1, 'forgotten after 2 h 15 min');
    assert.deepEqual(open.checkpoints(), ['table_full']);
    const closed = new Twins({ mode: 'translate', idleTimeoutMs: 60_000, closedLingerMs: 60_000, scanIntervalMs: 1000 });
    translated(closed);
    closed.client(closed.in({ seq: 5002, ack: 1001, flags: TCP_ACK | TCP_FIN }));
    closed.primary(closed.out({ seq: 1001, ack: 5003, flags: TCP_ACK | TCP_FIN }));
    closed.secondary(closed.out({ seq: 900_001, ack: 5003, flags: TCP_ACK | TCP_FIN }));
    closed.client(closed.in({ seq: 5003, ack: 1002 }));
    closed.advanceTo(120_000);
    assert.equal(closed.c.counters.connectionsClosed, 1, 'closed, its FIN acknowledged by the client: gone after its linger');
    assert.deepEqual(closed.checkpoints(), [], 'a closed connection takes its offsets without a checkpoint');
  });

  test('translate mode: the guests\' FIN resent from LAST-ACK with backoff (the client\'s last ACK lost) still matches', () => {
    const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    translated(t);
    t.primary(t.out({ seq: 1001, ack: 5002, payload: 'response' }));
    t.secondary(t.out({ seq: 900_001, ack: 5002, payload: 'response' }));
    t.client(t.in({ seq: 5002, ack: 1009, flags: TCP_ACK | TCP_FIN }), 10);
    t.primary(t.out({ seq: 1009, ack: 5003, flags: TCP_ACK | TCP_FIN }), 10);
    t.secondary(t.out({ seq: 900_009, ack: 5003, flags: TCP_ACK | TCP_FIN }), 10);
    // Linux resends with the RTO doubling from 200 ms; the gaps pass closedLingerMs (10 s) at 12.8 s.
    let at = 10;
    for (let rto = 200; rto <= 25_600; rto *= 2) {
      at += rto;
      t.advanceTo(at);
      t.primary(t.out({ seq: 1009, ack: 5003, flags: TCP_ACK | TCP_FIN }), at);
      t.secondary(t.out({ seq: 900_009, ack: 5003, flags: TCP_ACK | TCP_FIN }), at + 1);
    }
    t.advanceTo(at + 20_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.c.counters.heldFrames, 0);
    assert.equal(t.c.counters.events.get('flow.midstream') ?? 0, 0, 'not forgotten and picked up again');
  });

  test('translate mode: a closed connection whose FIN the client acknowledged lingers as usual, so short ones do not fill the table', () => {
    // 3 min for each of 100 short connections would fill a table of 50, and a full table evicts
    // the least recently used open one: here a keep-alive connection, its offsets with it (a checkpoint).
    const t = new Twins({ mode: 'translate', maxConnections: 50, scanIntervalMs: 1000 });
    const conn = (port: number, at: number, close: boolean): void => {
      const cin = (f: Partial<TcpFields>): Uint8Array => t.in({ srcPort: port, ...f });
      const gout = (f: Partial<TcpFields>): Uint8Array => t.out({ dstPort: port, ...f });
      t.client(cin({ seq: 4999, flags: TCP_SYN, options: opts }), at);
      t.primary(gout({ seq: 999, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }), at);
      t.secondary(gout({ seq: 500_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }), at);
      t.client(cin({ seq: 5000, ack: 1000, payload: 'GET' }), at);
      t.primary(gout({ seq: 1000, ack: 5003, payload: 'ok' }), at);
      t.secondary(gout({ seq: 500_001, ack: 5003, payload: 'ok' }), at);
      if (!close) return;
      t.client(cin({ seq: 5003, ack: 1002, flags: TCP_ACK | TCP_FIN }), at);
      t.primary(gout({ seq: 1002, ack: 5004, flags: TCP_ACK | TCP_FIN }), at);
      t.secondary(gout({ seq: 500_003, ack: 5004, flags: TCP_ACK | TCP_FIN }), at);
      t.client(cin({ seq: 5004, ack: 1003 }), at);
    };
    conn(30000, 0, false);
    for (let i = 1; i <= 100; i++) {
      t.advanceTo(i * 1000);
      conn(30000 + i, i * 1000, true);
    }
    assert.deepEqual(t.checkpoints(), []);
    assert.ok(t.c.counters.connectionsClosed >= 85, `${t.c.counters.connectionsClosed} closed: gone after their 10 s`);
  });

  test('an idle limit told apart by kind: idleTimeoutMs of 3 min (the closed translated linger) survives a checkpoint', () => {
    const t = new Twins({ idleTimeoutMs: 180_000, scanIntervalMs: 1000 });
    t.established(ISN - 1);
    t.primary(t.out({ seq: ISN, payload: 'x' }), 1);
    t.secondary(t.out({ seq: ISN, payload: 'x' }), 1);
    t.checkpointDone();
    t.advanceTo(60_000);
    assert.equal(t.c.counters.connectionsClosed, 0, 'open, idle 60 s of its 180');
  });

  test('a closed connection stays at least compareTimeoutMs, so the other guest\'s late copy of its RST still matches', () => {
    const t = new Twins({ closedLingerMs: 0, compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.established(ISN - 1);
    t.secondary(t.out({ seq: ISN, flags: TCP_RST }), 995);
    t.advanceTo(1000);
    t.primary(t.out({ seq: ISN, flags: TCP_RST }), 1005);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.released().length, 2);
  });
});

describe('TCP Fast Open: data on a SYN or SYN-ACK is the first bytes of the stream', () => {
  const opts = { mss: 1460, sackPermitted: true };
  /** A guest's SYN to a server at port 5432 from `port`, with Fast Open data. */
  const syn = (t: Twins, isn: number, payload: string, port = 1000) => t.out({ srcPort: port, dstPort: 5432, seq: isn, ack: 0, flags: TCP_SYN, options: opts, payload });
  const data = (t: Twins, seq: number, payload: string, port = 1000) => t.out({ srcPort: port, dstPort: 5432, seq, ack: 7001, payload });
  /** Both guests' SYNs (ISNs 100 and 900, pre-translated mode) with these data, the PVM's first or not. */
  const syns = (primaryData: string, secondaryData: string, primaryFirst: boolean): Twins => {
    const t = new Twins();
    const p = syn(t, 100, primaryData), s = syn(t, 900, secondaryData);
    if (primaryFirst) { t.primary(p); t.secondary(s); } else { t.secondary(s); t.primary(p); }
    return t;
  };

  test('different data on the two guests\' SYNs is a tcp.payload mismatch, whichever SYN comes first; the PVM\'s SYN is not released', () => {
    for (const primaryFirst of [true, false]) {
      const t = syns('GET /a', 'GET /b', primaryFirst);
      assert.deepEqual(t.mismatchReasons(), ['tcp.payload'], `primary first: ${primaryFirst}`);
      assert.deepEqual(t.released(), []);
      const m = t.actions.find((a) => a.kind === 'mismatch');
      assert.ok(m && m.kind === 'mismatch' && m.mismatch.offset === 5, 'the first differing byte is the sixth');
    }
  });

  test('the same data on both SYNs (different ISNs, pre-translated mode): the SYN is released, the bytes after it compared from there', () => {
    for (const primaryFirst of [true, false]) {
      const t = syns('GET /', 'GET /', primaryFirst);
      assert.deepEqual(t.releasedPayloads(), ['GET /'], `primary first: ${primaryFirst}`);
      t.primary(data(t, 106, 'index'));
      t.secondary(data(t, 106, 'index'));
      t.primary(data(t, 111, 'x'));
      t.secondary(data(t, 111, 'y'));
      assert.deepEqual(t.releasedPayloads(), ['GET /', 'index']);
      assert.deepEqual(t.mismatchReasons(), ['tcp.payload'], 'compared from the byte after the SYN\'s data');
    }
  });

  test('data on one guest\'s SYN only is tcp.payload at the handshake, not a wait: the other\'s could follow only the client\'s answer to the first', () => {
    for (const primaryData of [true, false]) {
      const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      const plain = (isn: number) => t.out({ srcPort: 1000, dstPort: 5432, seq: isn, ack: 0, flags: TCP_SYN, options: opts });
      t.primary(primaryData ? syn(t, 100, 'hello') : plain(100));
      t.secondary(primaryData ? plain(900) : syn(t, 900, 'hello'));
      assert.deepEqual(t.mismatchReasons(), ['tcp.payload'], `data on the primary's: ${primaryData}`);
      assert.deepEqual(t.released(), []);
      t.checkpointDone();
      assert.deepEqual(t.releasedPayloads(), [primaryData ? 'hello' : ''], 'released by the checkpoint');
    }
  });

  test('data on the SYN-ACKs of a connection the guests accepted is compared too', () => {
    const synAck = (t: Twins, isn: number, payload: string) => t.out({ seq: isn, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts, payload });
    const differ = new Twins();
    differ.primary(synAck(differ, ISN, 'banner A'));
    differ.secondary(synAck(differ, 777, 'banner B'));
    assert.deepEqual(differ.mismatchReasons(), ['tcp.payload']);
    const same = new Twins();
    same.primary(synAck(same, ISN, 'banner'));
    same.secondary(synAck(same, 777, 'banner'));
    assert.deepEqual(same.releasedPayloads(), ['banner']);
    assert.deepEqual(same.checkpoints(), []);
  });

  test('translate mode: the same data after different ISNs matches, and the SVM\'s later bytes are mapped past it', () => {
    const t = new Twins({ mode: 'translate' });
    t.primary(syn(t, 100, 'GET /'));
    t.secondary(syn(t, 900, 'GET /'));
    t.client(t.in({ srcPort: 5432, dstPort: 1000, seq: 7000, ack: 106, flags: TCP_SYN | TCP_ACK, options: opts }));
    const toSvm = t.delivered('secondary').at(-1)!;
    assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint32(14 + 20 + 8), 906, 'the SYN-ACK acknowledges the SVM\'s data in its own space');
    t.primary(data(t, 106, 'more'));
    t.secondary(data(t, 906, 'more'));
    assert.deepEqual(t.releasedPayloads(), ['GET /', 'more']);
    assert.deepEqual(t.checkpoints(), []);
  });
});

describe('TCP: a guest a whole short connection behind the other', () => {
  const opts = { mss: 1460 };
  /** A guest's SYN-ACK at `synIsn`, an answer and a FIN numbered from `isn` (pre-translated mode: the PVM's). */
  const connection = (t: Twins, synIsn: number, isn = synIsn) => [
    t.out({ seq: synIsn, flags: TCP_SYN | TCP_ACK, options: opts }),
    t.out({ seq: isn + 1, payload: 'short answer' }),
    t.out({ seq: isn + 13, flags: TCP_ACK | TCP_FIN }),
  ];
  test('its handshake after the other\'s FIN belongs to the same connection, not a new one on the same ports', () => {
    // Seen in replays of captures taken apart (a live comparator holds the first SYN-ACK until both
    // are in). Translate mode only with the PVM first: SVM data before its offset is known has no place.
    const cases = [['pre-translated', 777, true], ['pre-translated', 777, false], ['pre-translated', ISN, false], ['translate', 900_000, true]] as const;
    for (const [mode, svmIsn, pvmFirst] of cases) {
      const t = new Twins({ mode });
      const p = connection(t, ISN), s = connection(t, svmIsn, mode === 'translate' ? svmIsn : ISN);
      if (mode === 'translate') t.client(t.in({ seq: 4999, flags: TCP_SYN, options: opts }));
      if (pvmFirst) { p.forEach((f) => t.primary(f)); s.forEach((f) => t.secondary(f)); } else { s.forEach((f) => t.secondary(f)); p.forEach((f) => t.primary(f)); }
      const what = `${mode}, SVM ISN ${svmIsn}, PVM first: ${pvmFirst}`;
      assert.deepEqual(t.checkpoints(), [], what);
      assert.deepEqual(t.releasedPayloads(), ['', 'short answer', ''], what);
      assert.equal(t.c.counters.connectionsOpened, 1, what);
    }
  });

  test('a guest\'s SYN on the ports of a connection both guests opened and closed is still a new one', () => {
    const t = new Twins();
    const first = connection(t, ISN);
    first.forEach((f) => { t.primary(f); t.secondary(f); });
    const again = connection(t, ISN + 5000);
    t.primary(again[0]!);
    t.secondary(again[0]!);
    assert.equal(t.c.counters.connectionsOpened, 2);
    assert.deepEqual(t.checkpoints(), []);
  });
});

describe('translate mode: a new connection on ports where only a stray client segment was seen', () => {
  // An RST (ignored: nothing to reset) or an ACK for a connection forgotten long ago made an
  // entry picked up mid-stream; the client's SYN on its ports opens the connection afresh, so
  // the handshakes are compared and the SVM's numbers learned.
  for (const stray of ['RST', 'ACK'] as const) {
    test(`after a client ${stray}`, () => {
      const opts = { mss: 1460, sackPermitted: true };
      const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      t.client(t.in({ seq: 123_456, ack: stray === 'RST' ? 0 : 42, flags: stray === 'RST' ? TCP_RST : TCP_ACK }), 0);
      t.client(t.in({ seq: 7000, ack: 0, flags: TCP_SYN, options: opts }), 100);
      t.primary(t.out({ seq: 1000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: opts }), 100);
      t.secondary(t.out({ seq: 900_000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: opts }), 100);
      t.client(t.in({ seq: 7001, ack: 1001, payload: 'GET' }), 101);
      const toSvm = t.delivered('secondary').at(-1)!;
      assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint32(14 + 20 + 8), 900_001, 'the client\'s ACK in the SVM\'s space');
      t.primary(t.out({ seq: 1001, ack: 7004, payload: 'response' }), 101);
      t.secondary(t.out({ seq: 900_001, ack: 7004, payload: 'response' }), 101);
      t.advanceTo(10_000);
      assert.deepEqual(t.checkpoints(), []);
      assert.deepEqual(t.releasedPayloads(), ['', 'response']);
    });
  }
});

describe('TCP: a new connection on the ports of one picked up mid-stream', () => {
  const pickedUp = (): Twins => {
    const t = new Twins();
    t.primary(t.out({ seq: 500_000, payload: 'old data' }));
    t.secondary(t.out({ seq: 500_000, payload: 'old data' }));
    return t;
  };
  test('its SYN-ACKs open a new connection: different data after them is a mismatch, not released', () => {
    const t = pickedUp();
    const synAck = t.out({ seq: 1000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } });
    t.primary(synAck);
    t.secondary(synAck);
    t.primary(t.out({ seq: 1001, ack: 7001, payload: 'PVM answer' }));
    t.secondary(t.out({ seq: 1001, ack: 7001, payload: 'SVM answer' }));
    assert.deepEqual(t.releasedPayloads(), ['old data', '']);
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload']);
    assert.equal(t.c.counters.connectionsOpened, 2);
  });
  test('and their options are compared', () => {
    const t = pickedUp();
    t.primary(t.out({ seq: 1000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } }));
    t.secondary(t.out({ seq: 1000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: { mss: 536 } }));
    assert.deepEqual(t.mismatchReasons(), ['tcp.syn_options']);
  });
});

describe('TCP: the SVM\'s segments before the handshakes are compared wait for them', () => {
  const opts = { mss: 1460, sackPermitted: true };
  test('translate mode: an SVM response before the PVM\'s SYN-ACK is mapped with the offset learned then', () => {
    for (const svmAnswer of ['PVM response', 'SVM response']) {
      const t = new Twins({ mode: 'translate' });
      t.client(t.in({ seq: 7000, ack: 0, flags: TCP_SYN, options: opts, payload: 'req' }));
      t.secondary(t.out({ seq: 900_000, ack: 7004, flags: TCP_SYN | TCP_ACK, options: opts }));
      t.secondary(t.out({ seq: 900_001, ack: 7004, payload: svmAnswer }));
      t.primary(t.out({ seq: 100, ack: 7004, flags: TCP_SYN | TCP_ACK, options: opts }));
      t.primary(t.out({ seq: 101, ack: 7004, payload: 'PVM response' }));
      const same = svmAnswer === 'PVM response';
      assert.deepEqual(t.releasedPayloads(), same ? ['', 'PVM response'] : [''], svmAnswer);
      assert.deepEqual(t.mismatchReasons(), same ? [] : ['tcp.payload'], svmAnswer);
    }
  });
  test('pre-translated mode: data on the SVM\'s SYN-ACK is compared even when its next segment came before the PVM\'s SYN-ACK', () => {
    const t = new Twins();
    t.secondary(t.out({ seq: 777, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts, payload: 'banner B' }));
    t.secondary(t.out({ seq: ISN + 9, ack: 5000, payload: 'next' }));
    t.primary(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts, payload: 'banner A' }));
    assert.deepEqual(t.releasedPayloads(), []);
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload']);
  });
  test('they count as waiting output: a PVM that never answers is a timeout', () => {
    const t = new Twins({ compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.secondary(t.out({ seq: 777, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.secondary(t.out({ seq: ISN, ack: 5000, payload: 'early' }));
    assert.equal(t.c.counters.secondaryWaitingFrames, 1);
    t.advanceTo(5000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
    t.checkpointDone();
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
  });
  test('they are bounded in bytes as well as in frames: past maxQueueBytes, queue_full', () => {
    const t = new Twins({ maxQueueBytes: 4000, maxQueueFrames: 1024 });
    t.secondary(t.out({ seq: 777, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.secondary(t.out({ seq: 778, ack: 5000, payload: 'x'.repeat(1448) }));
    t.secondary(t.out({ seq: 778 + 1448, ack: 5000, payload: 'x'.repeat(1448) }));
    assert.deepEqual(t.checkpoints(), [], '2,896 bytes waiting');
    t.secondary(t.out({ seq: 778 + 2896, ack: 5000, payload: 'x'.repeat(1448) }));
    assert.deepEqual(t.checkpoints(), ['queue_full'], '4,344 bytes waiting');
  });
});

describe('translate mode: a connection the client reset', () => {
  const opts = { mss: 1460, sackPermitted: true };
  /** A download cut short by the client: the PVM had sent one segment more than the SVM when the client's RST came. */
  const aborted = (clientResets: boolean): Twins => {
    const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
    t.client(t.in({ seq: 7000, ack: 0, flags: TCP_SYN, options: opts }), 0);
    t.primary(t.out({ seq: 1000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: opts }), 0);
    t.secondary(t.out({ seq: 900_000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: opts }), 0);
    t.client(t.in({ seq: 7001, ack: 1001, payload: 'GET' }), 1);
    t.primary(t.out({ seq: 1001, ack: 7004, payload: 'part one' }), 2);
    t.secondary(t.out({ seq: 900_001, ack: 7004, payload: 'part one' }), 2);
    t.primary(t.out({ seq: 1009, ack: 7004, payload: 'part two' }), 3);
    if (clientResets) t.client(t.in({ seq: 7004, ack: 1009, flags: TCP_RST | TCP_ACK }), 4);
    return t;
  };

  test('output one guest sent and the other had not yet is released after the timeout, without a checkpoint', () => {
    const t = aborted(true);
    assert.deepEqual(t.releasedPayloads(), ['', 'part one']);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.deepEqual(t.releasedPayloads(), ['', 'part one', 'part two'], 'released, not kept');
    assert.equal(t.c.counters.heldFrames, 0);
    assert.equal(t.c.counters.events.get('flow.client_reset'), 1);
  });

  test('the SVM ahead: its output waiting is dropped, without a checkpoint', () => {
    const t = aborted(true);
    t.secondary(t.out({ seq: 900_009, ack: 7004, payload: 'part two' }), 5);
    t.secondary(t.out({ seq: 900_017, ack: 7004, payload: 'part three' }), 5);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
  });

  test('bytes both sent are still compared: a difference is a mismatch, and its frames wait for the checkpoint', () => {
    const t = aborted(true);
    t.secondary(t.out({ seq: 900_009, ack: 7004, payload: 'PART TWO' }), 5);
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload']);
    t.advanceTo(10_000);
    assert.deepEqual(t.releasedPayloads(), ['', 'part one'], 'held past the timeout: the connection diverged');
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads(), ['', 'part one', 'part two']);
  });

  test('without the client\'s RST the same is a timeout', () => {
    const t = aborted(false);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), ['timeout']);
  });

  test('an RST answering a guest\'s segment (its seq the PVM\'s last ACK) resets too', () => {
    const t = aborted(false);
    t.client(t.in({ seq: 7004, flags: TCP_RST }), 4); // 7004: what the PVM acknowledged, and the client's next byte
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.c.counters.events.get('flow.client_reset'), 1);
  });

  test('an RST after client data the guests have not acknowledged yet (at its end) resets too', () => {
    const t = aborted(false);
    t.client(t.in({ seq: 7004, ack: 1009, payload: 'abc' }), 4);
    t.client(t.in({ seq: 7007, flags: TCP_RST }), 5);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.c.counters.events.get('flow.client_reset'), 1);
  });

  test('an RST at the client\'s FIN after its FIN (an abort after close) resets too', () => {
    const t = aborted(false);
    t.client(t.in({ seq: 7004, ack: 1009, flags: TCP_ACK | TCP_FIN }), 4);
    t.primary(t.out({ seq: 1017, ack: 7005 }), 4); // the PVM acknowledges the FIN: RCV.NXT is 7005
    t.client(t.in({ seq: 7004, flags: TCP_RST }), 5); // RCV.NXT - 1: Linux takes it after a FIN
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.c.counters.events.get('flow.client_reset'), 1);
  });

  test('picked up from the guests\' output alone: an RST at the PVM\'s ACK resets, one elsewhere does not', () => {
    for (const [seq, resets] of [[7004, true], [7104, false]] as const) {
      const t = new Twins({ mode: 'translate', compareTimeoutMs: 3000, scanIntervalMs: 1000 });
      t.primary(t.out({ seq: 1009, ack: 7004, payload: 'part two' }), 3);
      t.client(t.in({ seq, flags: TCP_RST }), 4);
      t.advanceTo(10_000);
      assert.deepEqual(t.checkpoints(), resets ? [] : ['timeout'], `RST at ${seq}`);
    }
  });

  test('a reset connection that diverged: its frames wait for the checkpoint, the client\'s reconnect notwithstanding', () => {
    const t = aborted(true);
    t.secondary(t.out({ seq: 900_009, ack: 7004, payload: 'PART TWO' }), 5);
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload']);
    t.client(t.in({ seq: 990_000, ack: 0, flags: TCP_SYN, options: opts }), 6);
    assert.deepEqual(t.releasedPayloads(), ['', 'part one']);
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads(), ['', 'part one', 'part two']);
  });

  test('the client reconnecting from the same port at once: the reset connection goes without a checkpoint, the new one is compared', () => {
    const t = aborted(true);
    t.client(t.in({ seq: 990_000, ack: 0, flags: TCP_SYN, options: opts }), 5);
    t.primary(t.out({ seq: 555_000, ack: 990_001, flags: TCP_SYN | TCP_ACK, options: opts }), 5);
    t.secondary(t.out({ seq: 7_000_000, ack: 990_001, flags: TCP_SYN | TCP_ACK, options: opts }), 5);
    t.client(t.in({ seq: 990_001, ack: 555_001, payload: 'GET' }), 6);
    t.primary(t.out({ seq: 555_001, ack: 990_004, payload: 'again' }), 6);
    t.secondary(t.out({ seq: 7_000_001, ack: 990_004, payload: 'again' }), 6);
    t.secondary(t.out({ seq: 900_009, ack: 7004, payload: 'part two' }), 7); // the old connection's, late
    assert.deepEqual(t.releasedPayloads(), ['', 'part one', 'part two', '', 'again']);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.c.counters.events.get('flow.client_reset'), 1);
    assert.equal(t.c.counters.heldFrames, 0);
  });

  test('a guest\'s connection the client refuses (RST acknowledging the SYN) is reset; an RST acknowledging something else is not', () => {
    for (const [ack, resets] of [[ISN, true], [ISN + 7, false]] as const) {
      const t = new Twins({ mode: 'translate' });
      const syn = emitTcp({ src: GUEST, dst: CLIENT, srcPort: 41000, dstPort: 9, seq: ISN - 1, ack: 0, flags: TCP_SYN, options: { mss: 1460 } });
      t.primary(syn);
      t.secondary(syn);
      t.client(emitTcp({ src: CLIENT, dst: GUEST, srcPort: 9, dstPort: 41000, seq: 0, ack, flags: TCP_RST | TCP_ACK }));
      assert.equal(t.c.counters.events.get('client.rst_ignored') ?? 0, resets ? 0 : 1, `RST acknowledging ${ack}`);
    }
  });

  // RFC 9293 §3.10.7.4, RFC 5961 §3.2: an RST not at RCV.NXT is discarded (out of the window) or
  // answered with an ACK (in it): the guests' connection stays open, and a silent SVM is a divergence.
  for (const [where, seq] of [['far outside the window', 7004 + 0x4000_0000], ['in the window, not at RCV.NXT', 7004 + 100]] as const) {
    test(`an RST ${where} is not a reset: the silent SVM still times out, and the connection stays translated`, () => {
      const t = aborted(false);
      t.client(t.in({ seq, flags: TCP_RST }), 4);
      assert.equal(t.c.counters.events.get('client.rst_ignored'), 1);
      // Still the same connection, still translated: the client's next ACK reaches the SVM in its space.
      t.client(t.in({ seq: 7004, ack: 1009 }), 5);
      const toSvm = t.delivered('secondary').at(-1)!;
      assert.equal(new DataView(toSvm.buffer, toSvm.byteOffset).getUint32(14 + 20 + 8), 900_009);
      t.advanceTo(10_000);
      assert.deepEqual(t.checkpoints(), ['timeout']);
      assert.equal(t.c.counters.events.get('flow.client_reset') ?? 0, 0);
      assert.equal(t.c.counters.connectionsClosed, 0, 'not torn down');
    });
  }
});

describe('translate mode: a full table evicting a connection whose SVM numbers differ', () => {
  test('asks for a checkpoint, and the connection\'s later frames wait for it instead of being compared unmapped', () => {
    const t = new Twins({ mode: 'translate', maxConnections: 1 });
    const opts = { mss: 1460, sackPermitted: true };
    t.client(t.in({ seq: 7000, ack: 0, flags: TCP_SYN, options: opts }));
    t.primary(t.out({ seq: 1000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.secondary(t.out({ seq: 900_000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.client(t.in({ seq: 7001, ack: 1001 }));
    t.primary(t.out({ seq: 1001, ack: 7001, payload: 'hello' }));
    t.secondary(t.out({ seq: 900_001, ack: 7001, payload: 'hello' }));
    assert.deepEqual(t.releasedPayloads(), ['', 'hello']);
    t.client(t.in({ srcPort: 40001, seq: 1, ack: 0, flags: TCP_SYN, options: opts }));
    assert.deepEqual(t.checkpoints(), ['table_full']);
    t.primary(t.out({ seq: 1006, ack: 7001, payload: 'PVM!' }));
    t.secondary(t.out({ seq: 900_006, ack: 7001, payload: 'SVM?' }));
    assert.deepEqual(t.releasedPayloads(), ['', 'hello'], 'held until the checkpoint');
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads(), ['', 'hello', 'PVM!']);
  });

  test('half-closed (the client sent FIN, the guest still answers) too', () => {
    const t = new Twins({ mode: 'translate', maxConnections: 1 });
    const opts = { mss: 1460 };
    t.client(t.in({ seq: 7000, ack: 0, flags: TCP_SYN, options: opts }));
    t.primary(t.out({ seq: 1000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.secondary(t.out({ seq: 900_000, ack: 7001, flags: TCP_SYN | TCP_ACK, options: opts }));
    t.client(t.in({ seq: 7001, ack: 1001, payload: 'GET' }));
    t.client(t.in({ seq: 7004, ack: 1001, flags: TCP_FIN | TCP_ACK }));
    t.client(t.in({ srcPort: 40001, seq: 1, ack: 0, flags: TCP_SYN, options: opts }));
    assert.deepEqual(t.checkpoints(), ['table_full']);
    t.primary(t.out({ seq: 1001, ack: 7005, payload: 'PVM!' }));
    t.secondary(t.out({ seq: 900_001, ack: 7005, payload: 'SVM?' }));
    assert.deepEqual(t.releasedPayloads(), [''], 'held until the checkpoint');
  });
});

describe('TCP: urgent data (URG) is part of the stream', () => {
  const URG = 0x20;
  const seg = (t: Twins, off: number, payload: string, urgentPointer?: number) =>
    t.out({ seq: ISN + off, payload, ...(urgentPointer === undefined ? {} : { flags: TCP_ACK | TCP_PSH | URG, urgentPointer }) });

  test('urgent data on one side only is tcp.urgent, and the segment carrying the urgent byte is not released, whichever side comes first', () => {
    for (const primaryUrgent of [true, false]) {
      const t = new Twins();
      t.established(ISN - 1);
      const urgent = seg(t, 0, 'abc!', 4), plain = seg(t, 0, 'abc!');
      if (primaryUrgent) { t.primary(urgent); t.secondary(plain); } else { t.secondary(urgent); t.primary(plain); }
      assert.deepEqual(t.mismatchReasons(), ['tcp.urgent'], `primary urgent: ${primaryUrgent}`);
      assert.deepEqual(t.releasedPayloads(), [''], 'only the SYN-ACK');
      const m = t.actions.find((a) => a.kind === 'mismatch');
      assert.ok(m && m.kind === 'mismatch' && m.mismatch.offset === 3, 'at the urgent byte');
    }
  });

  test('urgent data ending at different points is tcp.urgent', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.primary(seg(t, 0, 'abc!', 4));
    t.secondary(seg(t, 0, 'abc!', 3));
    assert.deepEqual(t.mismatchReasons(), ['tcp.urgent']);
  });

  test('the same urgent data cut differently, its pointer ahead of a segment, and a resend of it: no mismatch', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.primary(seg(t, 0, 'abc!', 4));
    t.secondary(seg(t, 0, 'ab', 4));
    t.secondary(seg(t, 2, 'c!', 2));
    t.primary(seg(t, 0, 'abc!', 4));
    t.primary(seg(t, 4, 'more'));
    t.secondary(seg(t, 4, 'more'));
    assert.deepEqual(t.checkpoints(), []);
    assert.deepEqual(t.releasedPayloads(), ['', 'abc!', 'abc!', 'more']);
  });

  test('two urgent writes sent apart by one guest and merged into one segment by the other (the second overtakes the first): no mismatch', () => {
    for (const mergedOnPrimary of [false, true]) {
      const t = new Twins();
      t.established(ISN - 1);
      const apart = [seg(t, 0, 'a', 1), seg(t, 1, 'b', 1)], merged = [seg(t, 0, 'ab', 2)];
      for (const f of mergedOnPrimary ? merged : apart) t.primary(f);
      for (const f of mergedOnPrimary ? apart : merged) t.secondary(f);
      assert.deepEqual(t.checkpoints(), [], `merged on the primary: ${mergedOnPrimary}`);
    }
    const plainFirst = new Twins();
    plainFirst.established(ISN - 1);
    plainFirst.primary(seg(plainFirst, 0, 'a', 1));
    plainFirst.primary(seg(plainFirst, 1, 'b', 1));
    plainFirst.secondary(seg(plainFirst, 0, 'a'));
    plainFirst.secondary(seg(plainFirst, 1, 'b', 1));
    assert.deepEqual(plainFirst.mismatchReasons(), ['tcp.urgent'], 'the first byte urgent on one side only, cut alike');
  });

  test('pure ACKs pointing at urgent data not sent yet (the client\'s window closed) mark nothing by themselves', () => {
    for (const svmUrgent of [true, false]) {
      const t = new Twins();
      t.established(ISN - 1);
      for (let i = 0; i < 2000; i++) {
        t.primary(t.out({ seq: ISN, flags: TCP_ACK | URG, urgentPointer: 4 }));
        t.secondary(t.out({ seq: ISN, flags: TCP_ACK | URG, urgentPointer: 4 }));
      }
      t.primary(seg(t, 0, 'abc!', 4));
      t.secondary(svmUrgent ? seg(t, 0, 'abc!', 4) : seg(t, 0, 'abc!'));
      assert.deepEqual(t.mismatchReasons(), svmUrgent ? [] : ['tcp.urgent'], `SVM urgent: ${svmUrgent}`);
    }
  });

  test('pointer 0xffff (Linux: urgent data more than 64 KiB ahead) marks nothing', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.primary(seg(t, 0, 'abcd', 0xffff));
    t.secondary(seg(t, 0, 'abcd'));
    assert.deepEqual(t.checkpoints(), []);
    assert.deepEqual(t.releasedPayloads(), ['', 'abcd']);
  });
});

describe('TCP: the SVM\'s segments waiting for the handshakes are bounded', () => {
  test('more than maxQueueFrames of them is queue_full', () => {
    const t = new Twins({ maxQueueFrames: 4 });
    t.secondary(t.out({ seq: 777, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } }));
    for (let i = 0; i < 4; i++) t.secondary(t.out({ seq: ISN + i, payload: 'x' }));
    assert.deepEqual(t.checkpoints(), []);
    t.secondary(t.out({ seq: ISN + 4, payload: 'x' }));
    assert.deepEqual(t.checkpoints(), ['queue_full']);
    t.checkpointDone();
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
  });
});
