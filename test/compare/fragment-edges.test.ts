/**
 * IP fragments at the edges of reassembly: a TCP segment whose fragments cannot be reassembled,
 * a first fragment too short for its transport header, a reassembled datagram that does not
 * decode; and the SVM's TCP output bounded by frames as the PVM's is.
 */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_SYN } from '../../compare/index.js';
import { writeU16 } from '../../compare/wire/bytes.js';
import { Twins, pattern } from '../support/twins.js';
import { fragment, split } from '../support/fragments.js';

const ISN = 1_000_000;

describe('a TCP segment whose fragments cannot be reassembled', () => {
  /** A segment at `ISN + 5` acknowledging 5100, cut in two with a third fragment overlapping both with other bytes: the same on both guests. */
  const inconsistent = (t: Twins, ipId: number): Uint8Array[] => {
    const whole = t.out({ seq: ISN + 5, payload: pattern(0, 200), ack: 5100, dontFragment: false, ipId });
    const [a, b] = split(whole, [96]);
    return [a!, fragment(whole, 88, new Uint8Array(16).fill(0x55), true), b!];
  };

  test('asks for a checkpoint at once, its PVM fragments held behind the connection\'s earlier held frame and released in order by it', () => {
    const t = new Twins();
    t.established(ISN - 1);
    const first = t.out({ seq: ISN, payload: 'first', ack: 5100 });
    t.primary(first);
    t.secondary(t.out({ seq: ISN, payload: 'first', ack: 5000 }));
    assert.equal(t.released().length, 1, 'held by the ACK gate: the SVM acknowledged only 5000');
    const primaryFragments = inconsistent(t, 42);
    for (const f of primaryFragments) t.primary(f);
    for (const f of inconsistent(t, 7)) t.secondary(f);
    assert.equal(t.released().length, 1, 'no fragment overtakes the held segment or the ACK gate');
    assert.deepEqual(t.checkpoints(), ['tcp.unassembled']);
    t.checkpointDone();
    assert.deepEqual(t.released().slice(1), [first, ...primaryFragments]);
    assert.equal(t.c.counters.events.get('fragment.overlap_inconsistent'), 2);
  });

  test('the SVM\'s alone: a checkpoint at once, not a timeout seconds later', () => {
    const t = new Twins();
    t.established(ISN - 1);
    t.secondary(t.out({ seq: ISN, payload: 'first' }));
    for (const f of inconsistent(t, 7)) t.secondary(f);
    assert.deepEqual(t.checkpoints(), ['tcp.unassembled']);
  });
});

test('translate mode: the SVM\'s unassembled segment on a connection whose guests chose different ports is its connection\'s', () => {
  const opts = { mss: 1460, sackPermitted: true, windowScale: 7 };
  const t = new Twins({ mode: 'translate' });
  t.primary(t.out({ srcPort: 33000, dstPort: 443, seq: ISN, ack: 0, flags: TCP_SYN, options: opts }));
  t.secondary(t.out({ srcPort: 44000, dstPort: 443, seq: 7, ack: 0, flags: TCP_SYN, options: opts }));
  t.client(t.in({ srcPort: 443, dstPort: 33000, seq: 9000, ack: ISN + 1, flags: TCP_SYN | TCP_ACK, options: opts }));
  const first = t.out({ srcPort: 33000, dstPort: 443, seq: ISN + 1, ack: 9001, payload: 'GET /' });
  t.primary(first);
  const whole = t.out({ srcPort: 44000, dstPort: 443, seq: 8, ack: 9001, payload: pattern(0, 200), dontFragment: false, ipId: 3 });
  const [a, b] = split(whole, [96]);
  for (const f of [a!, fragment(whole, 88, new Uint8Array(16).fill(0x55), true), b!]) t.secondary(f);
  assert.deepEqual(t.mismatchReasons(), ['tcp.unassembled']);
  assert.equal(t.c.counters.secondaryWaitingFrames, 0, 'nothing left waiting in a flow of its own');
  t.checkpointDone();
  assert.deepEqual(t.released().at(-1), first);
});

test('a TCP segment whose first IPv4 fragment is shorter than the TCP header is reassembled like any other', () => {
  const t = new Twins();
  t.established(ISN - 1);
  const data = pattern(0, 200);
  const primaryFragments = split(t.out({ seq: ISN, payload: data, ipId: 100, dontFragment: false }), [8]);
  for (const f of primaryFragments) t.primary(f);
  for (const f of split(t.out({ seq: ISN, payload: data, ipId: 7, dontFragment: false }), [8])) t.secondary(f);
  t.primary(t.out({ seq: ISN + 200, payload: 'next' }));
  t.secondary(t.out({ seq: ISN + 200, payload: 'next' }));
  t.advanceTo(8000);
  assert.deepEqual(t.checkpoints(), []);
  assert.deepEqual(t.released().slice(1, 1 + primaryFragments.length), primaryFragments);
  assert.deepEqual(t.releasedPayloads().at(-1), 'next');
});

test('a reassembled datagram that does not decode is a counted event, its fragments then compared one by one', () => {
  const t = new Twins();
  for (const side of ['primary', 'secondary'] as const) {
    const fragments = split(t.udp({ payload: pattern(0, 300), ipId: 5, dontFragment: false }), [96]);
    writeU16(fragments[0]!, 14 + 20 + 4, 8 + 400); // the UDP length: past the reassembled datagram
    for (const f of fragments) t[side](f);
  }
  assert.equal(t.c.counters.events.get('decode.udp.length_exceeds_ip_payload'), 2, 'one per side');
  assert.deepEqual(t.checkpoints(), []);
  assert.equal(t.released().length, 2);
});

test('unassembled PVM fragments held in their connection wait for the checkpoint, whatever the stream verifies meanwhile', () => {
  const t = new Twins();
  t.established(ISN - 1);
  t.primary(t.out({ seq: ISN, payload: 'first' }));
  t.secondary(t.out({ seq: ISN, payload: 'first' }));
  const whole = t.out({ seq: ISN + 5, payload: pattern(0, 200), dontFragment: false, ipId: 42 });
  const [a, b] = split(whole, [96]);
  for (const f of [a!, fragment(whole, 88, new Uint8Array(16).fill(0x55), true), b!]) t.primary(f);
  assert.deepEqual(t.checkpoints(), ['tcp.unassembled']);
  // The SVM's copy reassembled fine and is compared; a pure ACK of the PVM's follows.
  t.secondary(t.out({ seq: ISN + 5, payload: pattern(0, 200) }));
  t.primary(t.out({ seq: ISN + 205, ack: 5001 }));
  assert.equal(t.released().length, 2, 'the SYN-ACK and "first" only');
  t.checkpointDone();
  assert.equal(t.released().length, 6);
});

for (const mode of ['translate', 'pre-translated'] as const) {
  test(`${mode}: the pure ACKs of an SVM a byte ahead are no waiting segments toward the frame limit`, () => {
    const t = new Twins({ mode, maxQueueFrames: 64 });
    if (mode === 'translate') t.client(t.in({ seq: 4999, flags: TCP_SYN }), 0);
    t.established(1000);
    t.secondary(t.out({ seq: 1001, ack: 5000, payload: '>' }), 1); // the SVM's prompt, first
    let ack = 5000;
    for (let i = 0; i < 100; i++) {
      // An upload: the client's data (translate mode) and each guest's pure ACK of it.
      if (mode === 'translate') t.client(t.in({ seq: ack, ack: 1001, payload: 'u'.repeat(1000) }), 1 + i * 0.01);
      ack += 1000;
      t.primary(t.out({ seq: 1001, ack }), 1 + i * 0.01);
      t.secondary(t.out({ seq: 1002, ack }), 1 + i * 0.01);
    }
    t.primary(t.out({ seq: 1001, ack, payload: '>' }), 2.5); // the PVM's prompt, a little later
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
  });
}

test('the SVM ahead in many small TCP segments reaches the frame limit, as the PVM does', () => {
  const t = new Twins({ maxQueueFrames: 16 });
  t.established(ISN - 1);
  for (let i = 0; i < 16; i++) t.secondary(t.out({ seq: ISN + i, payload: 'a' }));
  assert.deepEqual(t.checkpoints(), [], '16 segments wait: at the limit, not past it');
  t.secondary(t.out({ seq: ISN + 16, payload: 'a' }));
  assert.deepEqual(t.checkpoints(), ['queue_full']);
});
