// Translate mode: client data the SVM dropped while the PVM took it (its window full, say) is
// delivered to it again, since the client, hearing only the PVM, never retransmits it; and only
// that: an SVM a little slower than the PVM is not sent anything twice.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN } from '../../compare/index.js';
import { type TcpFields } from '../../compare/wire/emit.js';
import type { TcpView } from '../../compare/wire/tcp.js';
import { Twins, payloadText } from '../support/twins.js';
import { decoded } from '../support/decoded.js';
import { pseudoSumV4 } from '../../compare/wire/checksum.js';

const ISN = 1_000_000;

/** The TCP checksum of an IPv4 frame verifies. */
function tcpChecksumValid(frame: Uint8Array): boolean {
  const f = decoded(frame);
  const tcp = f.transport as TcpView;
  return tcp.verifyChecksum(pseudoSumV4(f.bytes, f.networkOffset, 6, f.payloadOffset + f.payloadLength - tcp.offset));
}

describe('translate mode: client data the SVM dropped is delivered to it again, and only that', () => {
  // The client hears only the PVM, so it never retransmits what the SVM alone dropped; without
  // re-delivery the PVM's ACKs would wait at the ACK gate until a timeout checkpoint.
  const svmIsn = 3_000_000_000;
  /** A connection the client opened, the guests' handshakes compared; the SVM's numbers differ. */
  const open = (scanIntervalMs = 1000): Twins => {
    const t = new Twins({ mode: 'translate', scanIntervalMs });
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: { mss: 1460, sackPermitted: true } }), 0);
    t.primary(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true } }), 0);
    t.secondary(t.out({ seq: svmIsn, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true } }), 0);
    return t;
  };
  const svmAck = (t: Twins, ack: number, at: number, extra: Partial<TcpFields> = {}): void => {
    t.secondary(t.out({ seq: svmIsn + 1, ack, ...extra }), at);
  };

  test('its window full: its duplicate ACKs bring the first segment it lacks, then each next one as it takes the last', () => {
    const t = open();
    t.client(t.in({ seq: 5000, ack: ISN + 1 }), 1);
    for (const [i, text] of ['aaaa', 'bbbb', 'cccc'].entries()) t.client(t.in({ seq: 5000 + 4 * i, ack: ISN + 1, flags: TCP_ACK | TCP_PSH, payload: text }), 1);
    const delivered = t.delivered('secondary').length;
    t.primary(t.out({ seq: ISN + 1, ack: 5012 }), 1);
    assert.equal(t.released().length, 1, 'the PVM\'s ACK of all 12 bytes waits at the ACK gate (only the SYN-ACK is out)');
    svmAck(t, 5004, 2);
    assert.equal(t.delivered('secondary').length - delivered, 0, 'an ACK that moves is an SVM on its way, as a slower one looks');
    svmAck(t, 5004, 2); // what Linux sends for each segment it drops out of its window
    assert.equal(t.delivered('secondary').length - delivered, 0, 'one duplicate ACK may answer a copy it already had');
    svmAck(t, 5004, 2);
    let again = t.delivered('secondary').slice(delivered);
    assert.deepEqual(again.map(payloadText), ['bbbb'], 'its second duplicate ACK brings the first segment it lacks');
    svmAck(t, 5004, 2, { window: 1 });
    assert.equal(t.delivered('secondary').length - delivered, 1, 'not again at once');
    svmAck(t, 5004, 20, { window: 1000 });
    assert.equal(t.delivered('secondary').length - delivered, 2, 'its window update later does');
    svmAck(t, 5008, 21);
    again = t.delivered('secondary').slice(delivered);
    assert.deepEqual(again.map(payloadText), ['bbbb', 'bbbb', 'cccc'], 'it took that and nothing after: the next at once');
    svmAck(t, 5012, 22);
    assert.equal(t.delivered('secondary').length - delivered, 3, 'caught up: nothing more');
    assert.equal(t.released().length, 2, 'the PVM\'s ACK is released once the SVM has the same client data');
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.c.counters.events.get('client.redelivered'), 3);
  });

  test('a request it dropped for a full window: at its window update, not a scan later', () => {
    const t = open();
    t.client(t.in({ seq: 5000, ack: ISN + 1, payload: 'GET' }), 100);
    t.primary(t.out({ seq: ISN + 1, ack: 5003, payload: 'response' }), 100.1);
    const delivered = t.delivered('secondary').length;
    svmAck(t, 5000, 100.3, { window: 0 });
    svmAck(t, 5000, 100.4, { window: 29200 }); // its application read
    assert.deepEqual(t.delivered('secondary').slice(delivered).map(payloadText), ['GET']);
    svmAck(t, 5003, 100.5);
    t.secondary(t.out({ seq: svmIsn + 1, ack: 5003, payload: 'response' }), 100.6);
    assert.deepEqual(t.releasedPayloads(), ['', 'response']);
  });

  test('the last segment of an upload, dropped silently: at the first scan after its ACK rested 200 ms', () => {
    const t = open(100);
    t.client(t.in({ seq: 5000, ack: ISN + 1, payload: 'aaaa' }), 1);
    t.client(t.in({ seq: 5004, ack: ISN + 1, payload: 'bbbb' }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: 5008 }), 2);
    svmAck(t, 5004, 2);
    const delivered = t.delivered('secondary').length;
    t.advanceTo(250);
    assert.equal(t.delivered('secondary').length, delivered, 'at the scans at 100 and 200 ms it had rested 98 and 198 ms: not yet');
    t.advanceTo(300);
    assert.deepEqual(t.delivered('secondary').slice(delivered).map(payloadText), ['bbbb']);
  });

  for (const lag of [1, 15]) {
    test(`an upload the SVM acknowledges ${lag} segment${lag === 1 ? '' : 's'} behind the PVM goes to it once`, () => {
      const t = open();
      let seq = 5000;
      for (let i = 0; i < 200; i++) {
        t.client(t.in({ seq, ack: ISN + 1, payload: 'x'.repeat(1000) }), i + 1);
        seq += 1000;
        t.primary(t.out({ seq: ISN + 1, ack: seq }), i + 1.1);
        if (i >= lag) svmAck(t, seq - 1000 * lag, i + 1.5);
      }
      svmAck(t, seq, 201);
      assert.equal(t.c.counters.events.get('client.redelivered') ?? 0, 0);
      assert.equal(t.delivered('secondary').length, 201, 'the SYN and 200 segments, each once');
      assert.equal(t.released().length, 201);
      assert.deepEqual(t.checkpoints(), []);
    });
  }

  test('after an idle stretch, a scan between the PVM\'s ACK of a new burst and the SVM\'s sends nothing again', () => {
    const t = open();
    t.client(t.in({ seq: 5000, ack: ISN + 1, payload: 'x'.repeat(1000) }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: 6000 }), 1.1);
    svmAck(t, 6000, 1.2);
    t.advanceTo(4999.5);
    let seq = 6000;
    for (let i = 0; i < 5; i++, seq += 1000) t.client(t.in({ seq, ack: ISN + 1, payload: 'x'.repeat(1000) }), 4999.6);
    t.primary(t.out({ seq: ISN + 1, ack: seq }), 4999.7);
    t.advanceTo(5000);
    for (let a = 7000; a <= seq; a += 1000) svmAck(t, a, 5000.8);
    assert.equal(t.c.counters.events.get('client.redelivered') ?? 0, 0, 'its ACK is timed from the burst, not from the last one before the idle stretch');
  });

  test('a window update while it lags starts no recovery: the ACKs of its originals that follow send nothing again', () => {
    const t = open();
    let seq = 5000;
    for (let i = 0; i < 10; i++, seq += 1000) t.client(t.in({ seq, ack: ISN + 1, payload: 'x'.repeat(1000) }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: seq }), 1.1);
    svmAck(t, 6000, 1.2);
    svmAck(t, 7000, 1.3);
    svmAck(t, 7000, 1.4, { window: 30000 });
    assert.equal(t.c.counters.events.get('client.redelivered'), 1);
    for (let a = 8000; a <= seq; a += 1000) svmAck(t, a, 1.5, { window: 30000 });
    assert.equal(t.c.counters.events.get('client.redelivered'), 1);
  });

  test('two holes (SACK): the ACK that fills the first, its SACK block showing the second, sends that one at once', () => {
    const t = open();
    let seq = 5000;
    for (let i = 0; i < 6; i++, seq += 1000) t.client(t.in({ seq, ack: ISN + 1, payload: String(i).repeat(1000) }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: seq }), 1.1);
    // It lost 6000-7000 and 8000-9000.
    svmAck(t, 6000, 1.2);
    svmAck(t, 6000, 1.3, { options: { sack: [[7000, 8000]] } });
    const delivered = t.delivered('secondary').length;
    svmAck(t, 6000, 1.4, { options: { sack: [[7000, 8000], [9000, 10000]] } });
    svmAck(t, 6000, 1.5, { options: { sack: [[7000, 8000], [9000, 11000]] } });
    assert.deepEqual(t.delivered('secondary').slice(delivered).map((f) => payloadText(f)[0]), ['1']);
    svmAck(t, 8000, 1.6, { options: { sack: [[9000, 11000]] } });
    assert.deepEqual(t.delivered('secondary').slice(delivered).map((f) => payloadText(f)[0]), ['1', '3']);
  });

  test('past maxQueueBytes of client data kept for it, the oldest stays: the first segment it lacks can still go again', () => {
    const t = new Twins({ mode: 'translate', maxQueueBytes: 3000 });
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: { mss: 1460 } }), 0);
    t.primary(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } }), 0);
    t.secondary(t.out({ seq: svmIsn, ack: 5000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } }), 0);
    for (let i = 0; i < 5; i++) t.client(t.in({ seq: 5000 + 1000 * i, ack: ISN + 1, payload: String(i).repeat(1000) }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: 10_000 }), 1);
    const delivered = t.delivered('secondary').length;
    for (let i = 0; i < 3; i++) svmAck(t, 5000, 2); // it lost the first: one ACK, then duplicates
    assert.deepEqual(t.delivered('secondary').slice(delivered).map((f) => payloadText(f)[0]), ['0']);
  });

  test('a D-SACK (the SVM got a segment twice) ends the recovery', () => {
    const t = open();
    for (let i = 0; i < 4; i++) t.client(t.in({ seq: 5000 + 4 * i, ack: ISN + 1, payload: 'abcd' }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: 5016 }), 1);
    svmAck(t, 5004, 2);
    svmAck(t, 5004, 2);
    svmAck(t, 5004, 2); // two duplicate ACKs: the segment from 5004 goes again, a recovery begins
    const delivered = t.delivered('secondary').length;
    assert.equal(t.c.counters.events.get('client.redelivered'), 1);
    svmAck(t, 5008, 3, { options: { sack: [[5004, 5008]] } }); // it had it: a duplicate
    assert.equal(t.delivered('secondary').length, delivered, 'at the end of what went again, but a D-SACK: nothing more');
    svmAck(t, 5012, 3);
    assert.equal(t.delivered('secondary').length, delivered, 'the recovery is over');
  });
  test('what goes again carries the client\'s newest timestamp: one older than the SVM last took is discarded by Linux (PAWS)', () => {
    const t = new Twins({ mode: 'translate', scanIntervalMs: 100 });
    const ts = (tsval: number, tsecr: number) => ({ mss: 1460, sackPermitted: true, timestamp: [tsval, tsecr] as [number, number] });
    t.client(t.in({ seq: 4999, flags: TCP_SYN, options: ts(100, 0) }), 0);
    t.primary(t.out({ seq: ISN, ack: 5000, flags: TCP_SYN | TCP_ACK, options: ts(7000, 100) }), 0);
    t.secondary(t.out({ seq: svmIsn, ack: 5000, flags: TCP_SYN | TCP_ACK, options: ts(9000, 100) }), 0);
    t.client(t.in({ seq: 5000, ack: ISN + 1, options: { timestamp: [101, 7000] } }), 1);
    t.client(t.in({ seq: 5000, ack: ISN + 1, flags: TCP_ACK | TCP_PSH, payload: 'aaaa', options: { timestamp: [102, 7000] } }), 1);
    t.client(t.in({ seq: 5004, ack: ISN + 1, flags: TCP_ACK | TCP_PSH, payload: 'bbbb', options: { timestamp: [103, 7000] } }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: 5008, options: { timestamp: [7001, 103] } }), 2);
    // The SVM took 'aaaa' only (its window full); the client, its ACK held at the gate, sends
    // 'aaaa' again with a newer timestamp, which the SVM takes as its latest (ts_recent).
    svmAck(t, 5004, 2, { window: 0, options: { timestamp: [9001, 102] } });
    t.client(t.in({ seq: 5000, ack: ISN + 1, flags: TCP_ACK | TCP_PSH, payload: 'aaaa', options: { timestamp: [400, 7001] } }), 300);
    const delivered = t.delivered('secondary').length;
    svmAck(t, 5004, 300, { window: 1000, options: { timestamp: [9300, 400] } });
    const again = t.delivered('secondary').slice(delivered);
    assert.deepEqual(again.map(payloadText), ['bbbb']);
    const tcp = decoded(again[0]!).transport as TcpView;
    assert.equal(tcp.tsVal, 400, 'not its own 103');
    assert.equal(tcp.tsEcr, 7000 + 2000, 'the echo still moved into the SVM\'s clock');
    assert.ok(tcpChecksumValid(again[0]!), 'checksum updated');
    assert.equal(t.delivered('secondary')[delivered - 1] === again[0], false, 'a copy: the frame delivered before is not changed');
  });

  test('segments it dropped for a zero window go one after another as it takes each, not one a scan', () => {
    const t = open();
    t.client(t.in({ seq: 5000, ack: ISN + 1 }), 1);
    const parts = ['aaaa', 'bbbb', 'cccc', 'dddd', 'eeee', 'ffff', 'gggg', 'hhhh'];
    for (const [i, p] of parts.entries()) t.client(t.in({ seq: 5000 + 4 * i, ack: ISN + 1, flags: TCP_ACK | TCP_PSH, payload: p }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: 5032 }), 2);
    // As captured live: it took 'aaaa', its window closed and it dropped the next six, then its
    // window opened and it took 'hhhh' (a SACK block above its ACK).
    svmAck(t, 5004, 2, { window: 0 });
    svmAck(t, 5004, 2.1, { window: 0 });
    let seen = t.delivered('secondary').length;
    svmAck(t, 5004, 10, { window: 124 });
    svmAck(t, 5004, 10.5, { window: 124, options: { sack: [[5028, 5032]] } });
    // From here it takes each segment it is given, 0.1 ms later, and nothing else moves its ACK.
    let ack = 5004;
    for (let now = 11; now < 100 && ack < 5028; now += 1) {
      const got = t.delivered('secondary').slice(seen);
      seen += got.length;
      if (got.some((f) => payloadText(f) === parts[(ack - 5000) / 4])) {
        ack += 4;
        svmAck(t, ack === 5028 ? 5032 : ack, now + 0.1, { window: 500, ...(ack < 5028 ? { options: { sack: [[5028, 5032]] } } : {}) });
      }
    }
    assert.equal(ack, 5028, 'all six within 100 ms, no scan needed');
    assert.equal(t.c.counters.events.get('client.redelivered'), 6, 'each once');
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
  });

  /** Four 4-byte client segments, '0' to '3', all taken by the PVM; the SVM took '0', then its window closed (no SACK: nothing after it arrived). */
  const zeroWindowAfterFirst = (): Twins => {
    const t = open();
    t.client(t.in({ seq: 5000, ack: ISN + 1 }), 1);
    for (let i = 0; i < 4; i++) t.client(t.in({ seq: 5000 + 4 * i, ack: ISN + 1, flags: TCP_ACK | TCP_PSH, payload: String(i).repeat(4) }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: 5016 }), 2);
    svmAck(t, 5004, 2, { window: 0 });
    return t;
  };

  test('without SACK: after a zero window dropped every later segment, the ACK resting at the end of the one sent again brings the next, then each next at once', () => {
    const t = zeroWindowAfterFirst();
    const delivered = t.delivered('secondary').length;
    const sentAgain = (): string[] => t.delivered('secondary').slice(delivered).map((f) => payloadText(f)[0]!);
    svmAck(t, 5004, 10, { window: 500 });
    assert.deepEqual(sentAgain(), ['1'], 'the window update sends the first it lacks');
    svmAck(t, 5008, 10.1, { window: 500 });
    assert.deepEqual(sentAgain(), ['1'], 'its ACK at that segment\'s end: perhaps its own copies follow');
    t.advanceTo(29);
    assert.deepEqual(sentAgain(), ['1'], 'not before the ACK has rested 20 ms');
    t.advanceTo(31);
    assert.deepEqual(sentAgain(), ['1', '2'], 'they did not come: the next goes, a recovery begins');
    svmAck(t, 5012, 31.1, { window: 500 });
    assert.deepEqual(sentAgain(), ['1', '2', '3'], 'and each next as it takes the last');
    svmAck(t, 5016, 31.2, { window: 500 });
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.c.counters.events.get('client.redelivered'), 3);
  });

  test('without SACK: an ACK that moves on within 20 ms of resting at the end of the segment sent again (its own copies coming) sends nothing more', () => {
    const t = zeroWindowAfterFirst();
    const delivered = t.delivered('secondary').length;
    svmAck(t, 5004, 10, { window: 500 });
    svmAck(t, 5008, 10.1, { window: 500 });
    svmAck(t, 5012, 15, { window: 500 });
    svmAck(t, 5016, 16, { window: 500 });
    t.advanceTo(10_000);
    assert.deepEqual(t.delivered('secondary').slice(delivered).map((f) => payloadText(f)[0]), ['1']);
    assert.deepEqual(t.checkpoints(), []);
  });

  /** `zeroWindowAfterFirst`, then '1' sent again at the window update and the ACK resting at its end (the settle looks at 30.1). */
  const restingAfterProbe = (): { t: Twins; sentAgain: () => string[] } => {
    const t = zeroWindowAfterFirst();
    const delivered = t.delivered('secondary').length;
    svmAck(t, 5004, 10, { window: 500 });
    svmAck(t, 5008, 10.1, { window: 500 });
    return { t, sentAgain: () => t.delivered('secondary').slice(delivered).map(payloadText).filter((p) => p !== '').map((p) => p[0]!) };
  };

  test('what a window update or duplicate ACKs send while the ACK rests is not sent again by the settle', () => {
    for (const meanwhile of ['window update', 'duplicate ACKs'] as const) {
      const { t, sentAgain } = restingAfterProbe();
      if (meanwhile === 'window update') svmAck(t, 5008, 29.5, { window: 1000 });
      else for (const at of [29.6, 29.7]) svmAck(t, 5008, at, { window: 500 });
      assert.deepEqual(sentAgain(), ['1', '2'], meanwhile);
      t.advanceTo(30.2);
      assert.deepEqual(sentAgain(), ['1', '2'], `${meanwhile}: '2' went a moment ago`);
    }
  });

  test('once the client reset the connection, nothing goes to the SVM again: not at the settle, not at a scan', () => {
    const { t, sentAgain } = restingAfterProbe();
    t.client(t.in({ seq: 5016, ack: ISN + 1, flags: TCP_RST | TCP_ACK }), 15);
    t.advanceTo(5000);
    assert.deepEqual(sentAgain(), ['1'], 'the RST itself went, and nothing after it');
  });

  test('an SVM that stalled with nothing dropped (its ACK rested 300 ms, then it takes its queue) gets one segment again, not its backlog', () => {
    const t = open(100);
    let seq = 5000;
    for (let i = 0; i < 8; i++, seq += 1000) t.client(t.in({ seq, ack: ISN + 1, payload: String.fromCharCode(97 + i).repeat(1000) }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: seq }), 1.1);
    const delivered = t.delivered('secondary').length;
    t.advanceTo(301);
    assert.equal(t.delivered('secondary').length - delivered, 1, 'the scan sends the first segment again');
    for (let a = 6000; a <= seq; a += 1000) svmAck(t, a, 301.5);
    assert.deepEqual(t.delivered('secondary').slice(delivered).map((f) => payloadText(f)[0]), ['a']);
  });

  test('a window opening from zero with nothing dropped (its segments arrive after): their ACKs send nothing again', () => {
    const t = open();
    t.client(t.in({ seq: 5000, ack: ISN + 1, payload: 'x'.repeat(1000) }), 1);
    t.primary(t.out({ seq: ISN + 1, ack: 6000 }), 1.1);
    svmAck(t, 6000, 1.2, { window: 0 });
    let seq = 6000;
    for (let i = 0; i < 6; i++, seq += 1000) t.client(t.in({ seq, ack: ISN + 1, payload: String.fromCharCode(97 + i).repeat(1000) }), 1.3);
    t.primary(t.out({ seq: ISN + 1, ack: seq }), 1.4);
    const delivered = t.delivered('secondary').length;
    svmAck(t, 6000, 1.5, { window: 1000 });
    for (let a = 7000; a <= seq; a += 1000) svmAck(t, a, 1.6);
    assert.deepEqual(t.delivered('secondary').slice(delivered).map((f) => payloadText(f)[0]), ['a'], 'one, at the window update');
  });

  test('holes the client itself fills (segments lost before the comparator, resent): the ACK that moves with SACK above sends nothing the SVM has or is getting', () => {
    const t = open();
    const segment = (seq: number, ch: string) => t.in({ seq, ack: ISN + 1, payload: ch.repeat(1000) });
    // [5000,6000) and [7000,8000) never reach the comparator; the client resends both.
    t.client(segment(6000, 'b'), 1);
    t.client(segment(8000, 'd'), 1);
    t.client(segment(5000, 'a'), 2);
    t.client(segment(7000, 'c'), 2);
    t.primary(t.out({ seq: ISN + 1, ack: 9000 }), 2.1);
    const delivered = t.delivered('secondary').length;
    // The SVM takes the resent 'a': ACK 7000, [8000,9000) SACKed; 'c' is right behind on the link.
    svmAck(t, 7000, 2.2, { options: { sack: [[8000, 9000]] } });
    assert.deepEqual(t.delivered('secondary').slice(delivered).map((f) => payloadText(f)[0]), []);
    svmAck(t, 9000, 2.3);
    assert.deepEqual(t.checkpoints(), []);
  });
});
