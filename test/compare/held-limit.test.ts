/**
 * The bound on what the PVM's output may hold in all: an SVM that falls silent on many connections
 * at once makes none of them reach its own queue limit before the timeout, and without a limit
 * across them memory grew with the PVM's rate for the whole timeout (620 MB in 3 s in a review).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Twins } from '../support/twins.js';

/** One 100-byte datagram from the guest on each of `flows` flows (client ports 6000 up). */
function onFlows(t: Twins, flows: number, at: number): Uint8Array[] {
  const sent: Uint8Array[] = [];
  for (let i = 0; i < flows; i++) {
    const d = t.udp({ dstPort: 6000 + i, payload: 'x'.repeat(100) });
    t.primary(d, at);
    sent.push(d);
  }
  return sent;
}

test('PVM output held across many connections past maxHeldBytes asks for a checkpoint on the oldest, long before the timeout', () => {
  const t = new Twins({ maxHeldBytes: 50_000 });
  const size = t.udp({ payload: 'x'.repeat(100) }).length;
  const under = Math.floor(50_000 / size);
  const sent = onFlows(t, under, 1);
  assert.equal(t.c.counters.heldBytes, under * size);
  assert.deepEqual(t.checkpoints(), [], 'at the limit, not past it');
  const past = t.udp({ dstPort: 7000, payload: 'x'.repeat(100) });
  t.primary(past, 2);
  sent.push(past);
  assert.deepEqual(t.checkpoints(), ['queue_full']);
  const mismatch = t.actions.find((a) => a.kind === 'mismatch');
  assert.ok(mismatch?.kind === 'mismatch' && mismatch.flow.endsWith(':6000'), `on the flow holding the oldest frame, not the one past the limit: ${mismatch?.kind === 'mismatch' ? mismatch.flow : ''}`);
  assert.equal(t.released().length, 0, 'nothing released before the checkpoint');
  t.checkpointDone();
  assert.deepEqual(t.released(), sent, 'every frame once, in order');
  assert.equal(t.c.counters.heldBytes, 0);
});

test('the limit counts what is held now: frames the SVM matched leave it', () => {
  const t = new Twins({ maxHeldBytes: 50_000 });
  for (let round = 0; round < 10; round++) {
    const sent = onFlows(t, 300, round);
    for (const d of sent) t.secondary(d, round + 0.5);
  }
  assert.deepEqual(t.checkpoints(), []);
  assert.equal(t.released().length, 3000);
});

test('without a checkpoint to end a request (resynchronize), one request lets half the limit go: not a request per frame', () => {
  const t = new Twins({ maxHeldBytes: 50_000 });
  let requests = 0;
  for (let i = 0; i < 600; i++) {
    t.primary(t.udp({ dstPort: 6000 + i, payload: 'x'.repeat(100) }), 1);
    if (t.c.checkpointPending) {
      requests++;
      assert.ok(t.c.counters.heldBytes <= 50_000 + 200, `asked for at ${t.c.counters.heldBytes} bytes held`);
      t.resynchronize();
      assert.ok(t.c.counters.heldBytes <= 25_000, `${t.c.counters.heldBytes} bytes still held after the request ended`);
    }
  }
  assert.ok(requests >= 1 && requests <= 3, `${requests} requests for 600 datagrams of ~142 bytes`);
});
