/**
 * Translate mode: the client opens a new connection from the port of one it reset or closed, while
 * the guests still send what belonged to the old one (a segment in flight, a FIN resent, an ACK
 * from TIME-WAIT), or after it had sent a SYN on the live connection. The new connection must be
 * compared from its own handshake, and a client reset of it recognised.
 */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../compare/index.js';
import { Twins, payloadText } from '../support/twins.js';

const opts = { mss: 1460, sackPermitted: true, windowScale: 7 };

/**
 * A download from the guest's port 80: PVM ISN 1000, SVM ISN 900000, 100 bytes each; then the
 * client aborts it (RST at its next byte) and reconnects from the same port with ISN 123456.
 */
function abortedThenReconnected(): Twins {
  const t = new Twins({ mode: 'translate' });
  t.client(t.in({ seq: 4999, flags: TCP_SYN, options: opts }), 0);
  t.primary(t.out({ seq: 1000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }), 0);
  t.secondary(t.out({ seq: 900_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }), 0);
  t.client(t.in({ seq: 5000, ack: 1001, payload: 'GET' }), 0);
  t.primary(t.out({ seq: 1001, ack: 5003, payload: 'a'.repeat(100) }), 1);
  t.secondary(t.out({ seq: 900_001, ack: 5003, payload: 'a'.repeat(100) }), 1);
  t.client(t.in({ seq: 5003, ack: 1101, flags: TCP_RST | TCP_ACK }), 2);
  t.client(t.in({ seq: 123_456, flags: TCP_SYN, options: opts }), 3);
  return t;
}

/** The new connection's handshake and request, then each guest's answer. */
function newConnection(t: Twins, primaryAnswer: string, secondaryAnswer: string): void {
  t.primary(t.out({ seq: 70_000, ack: 123_457, flags: TCP_SYN | TCP_ACK, options: opts }), 4);
  t.secondary(t.out({ seq: 5_000_000, ack: 123_457, flags: TCP_SYN | TCP_ACK, options: opts }), 4);
  t.client(t.in({ seq: 123_457, ack: 70_001, payload: 'GET' }), 5);
  t.primary(t.out({ seq: 70_001, ack: 123_460, payload: primaryAnswer }), 6);
  t.secondary(t.out({ seq: 5_000_001, ack: 123_460, payload: secondaryAnswer }), 6);
}

describe('translate mode: what a guest still sends of a connection the client reset, after the client reopened its port', () => {
  test('an SVM segment in flight is dropped uncompared: identical answers on the new connection need no checkpoint', () => {
    const t = abortedThenReconnected();
    t.secondary(t.out({ seq: 900_101, ack: 5003, payload: 'b'.repeat(100) }), 3);
    newConnection(t, 'same answer', 'same answer');
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.deepEqual(t.releasedPayloads(), ['', 'a'.repeat(100), '', 'same answer']);
    assert.equal(t.c.counters.unverifiedBytes, 0, 'the new connection is compared from its handshake, not picked up mid-stream');
    assert.equal(t.c.counters.secondaryWaitingFrames, 0);
    assert.equal(t.c.counters.events.get('tcp.stale_segment'), 1);
  });

  test('after an SVM segment in flight, a difference on the new connection is caught before its bytes are released', () => {
    const t = abortedThenReconnected();
    t.secondary(t.out({ seq: 900_101, ack: 5003, payload: 'b'.repeat(100) }), 3);
    newConnection(t, 'PVM answer', 'SVM answer');
    assert.deepEqual(t.mismatchReasons(), ['tcp.payload']);
    assert.ok(!t.releasedPayloads().includes('PVM answer'), 'held for the checkpoint');
    t.checkpointDone();
    assert.deepEqual(t.releasedPayloads().slice(-1), ['PVM answer']);
  });

  test('a PVM segment in flight goes to the client at once, ahead of the new connection, which is compared from its handshake', () => {
    const t = abortedThenReconnected();
    t.primary(t.out({ seq: 1101, ack: 5003, payload: 'b'.repeat(100) }), 3);
    assert.deepEqual(t.releasedPayloads(), ['', 'a'.repeat(100), 'b'.repeat(100)]);
    newConnection(t, 'same answer', 'same answer');
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.deepEqual(t.releasedPayloads(), ['', 'a'.repeat(100), 'b'.repeat(100), '', 'same answer']);
    assert.equal(t.c.counters.unverifiedBytes, 0);
  });

  test('guests refusing the new SYN with an RST are compared, not taken for the old connection\'s', () => {
    const t = abortedThenReconnected();
    const refusal = t.out({ seq: 0, ack: 123_457, flags: TCP_RST | TCP_ACK });
    t.primary(refusal, 4);
    t.secondary(refusal, 4);
    t.advanceTo(10_000);
    assert.deepEqual(t.checkpoints(), []);
    assert.equal(t.released().length, 3);
    assert.equal(t.c.counters.events.get('tcp.stale_segment') ?? 0, 0);
  });
});

test('translate mode: a FIN the SVM resends from TIME-WAIT after the client reused the port is not the new connection\'s end', () => {
  const t = new Twins({ mode: 'translate' });
  t.client(t.in({ seq: 4999, flags: TCP_SYN, options: opts }));
  t.primary(t.out({ seq: 1000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
  t.secondary(t.out({ seq: 900_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
  t.client(t.in({ seq: 5000, ack: 1001, payload: 'GET' }));
  t.primary(t.out({ seq: 1001, ack: 5003, flags: TCP_ACK | TCP_FIN, payload: 'OK' }));
  t.secondary(t.out({ seq: 900_001, ack: 5003, flags: TCP_ACK | TCP_FIN, payload: 'OK' }));
  t.client(t.in({ seq: 5003, ack: 1004, flags: TCP_ACK | TCP_FIN }));
  t.primary(t.out({ seq: 1004, ack: 5004 }));
  t.secondary(t.out({ seq: 900_004, ack: 5004 }));
  t.client(t.in({ seq: 90_000, flags: TCP_SYN, options: opts }), 100);
  t.secondary(t.out({ seq: 900_001, ack: 5004, flags: TCP_ACK | TCP_FIN, payload: 'OK' }), 100);
  t.primary(t.out({ seq: 66_541, ack: 90_001, flags: TCP_SYN | TCP_ACK, options: opts }), 101);
  t.secondary(t.out({ seq: 965_541, ack: 90_001, flags: TCP_SYN | TCP_ACK, options: opts }), 101);
  t.client(t.in({ seq: 90_001, ack: 66_542, payload: 'GET' }), 102);
  t.primary(t.out({ seq: 66_542, ack: 90_004, payload: 'again' }), 103);
  t.secondary(t.out({ seq: 965_542, ack: 90_004, payload: 'again' }), 103);
  t.advanceTo(10_000);
  assert.deepEqual(t.checkpoints(), []);
  assert.deepEqual(t.releasedPayloads().slice(-2), ['', 'again']);
  assert.equal(t.c.counters.unverifiedBytes, 0);
});

test('translate mode: after a client SYN on a live connection (answered with an ACK), the connection the client opens once it reset is its own', () => {
  const t = new Twins({ mode: 'translate' });
  t.client(t.in({ seq: 4999, flags: TCP_SYN, options: opts }), 0);
  t.primary(t.out({ seq: 1000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
  t.secondary(t.out({ seq: 900_000, ack: 5000, flags: TCP_SYN | TCP_ACK, options: opts }));
  t.client(t.in({ seq: 5000, ack: 1001, payload: 'GET' }));
  // The client lost its state (a reboot, a NAT rebinding) and opens again from the same port: the
  // guests answer with challenge ACKs, which the client answers with an RST.
  t.client(t.in({ seq: 777_000, flags: TCP_SYN, options: opts }), 10);
  t.primary(t.out({ seq: 1001, ack: 5003 }), 10);
  t.secondary(t.out({ seq: 900_001, ack: 5003 }), 10);
  t.client(t.in({ seq: 5003, ack: 0, flags: TCP_RST }), 10);
  t.client(t.in({ seq: 777_000, flags: TCP_SYN, options: opts }), 1010);
  t.primary(t.out({ seq: 50_000, ack: 777_001, flags: TCP_SYN | TCP_ACK, options: opts }), 1011);
  t.secondary(t.out({ seq: 3_000_000, ack: 777_001, flags: TCP_SYN | TCP_ACK, options: opts }), 1011);
  t.client(t.in({ seq: 777_001, ack: 50_001, payload: 'GET /big' }), 1012);
  t.primary(t.out({ seq: 50_001, ack: 777_009, payload: 'x'.repeat(100) }), 1013);
  t.secondary(t.out({ seq: 3_000_001, ack: 777_009, payload: 'x'.repeat(100) }), 1013);
  t.primary(t.out({ seq: 50_101, ack: 777_009, payload: 'y'.repeat(100) }), 1014);
  // The client aborts the download as Linux does: RST|ACK at its next byte. The PVM's segment the
  // SVM has not sent yet can no longer reach the client's application: no checkpoint for it.
  t.client(t.in({ seq: 777_009, ack: 50_101, flags: TCP_RST | TCP_ACK }), 1015);
  t.advanceTo(20_000);
  assert.deepEqual(t.checkpoints(), []);
  assert.equal(t.c.counters.events.get('client.rst_ignored') ?? 0, 0);
  assert.equal(t.c.counters.events.get('flow.client_reset'), 1);
  assert.equal(payloadText(t.released().at(-1)!), 'y'.repeat(100));
});
