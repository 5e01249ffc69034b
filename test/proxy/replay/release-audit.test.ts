// The ledger of `replay --against`: what a comparator released, checked off against what was sent.
// Cases as specifications, then a property against the obvious model that keeps every frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Frame, decodeFrame, emitUdp, flowKey } from '../../../compare/index.js';
import { ReleaseAudit } from '../../../proxy/replay/release-audit.js';

/** A datagram of flow `flow` (its source port) carrying `payload`. */
const frame = (flow: number, payload: string): Uint8Array =>
  emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 1000 + flow, dstPort: 53, payload });

function audit(sent: Uint8Array[], released: Uint8Array[]): ReleaseAudit {
  const a = new ReleaseAudit();
  for (const f of sent) a.send(f);
  for (const f of released) a.release(f);
  return a;
}

const outcome = (a: ReleaseAudit) => ({ sent: a.sent, released: a.released, owed: a.owed, duplicated: a.duplicated, reordered: a.reordered, flowsOwing: a.flowsOwing });

test('release audit: every frame out once, in order, leaves nothing owed and no flow behind', () => {
  const sent = [frame(1, 'a'), frame(2, 'b'), frame(1, 'c')];
  assert.deepEqual(outcome(audit(sent, sent)), { sent: 3, released: 3, owed: 0, duplicated: 0, reordered: 0, flowsOwing: 0 });
});

test('release audit: flows may interleave differently from the sending order', () => {
  const [a1, b1, a2, b2] = [frame(1, 'a1'), frame(2, 'b1'), frame(1, 'a2'), frame(2, 'b2')];
  assert.deepEqual(outcome(audit([a1, b1, a2, b2], [b1, b2, a1, a2])), { sent: 4, released: 4, owed: 0, duplicated: 0, reordered: 0, flowsOwing: 0 });
});

test('release audit: within a flow, a frame out after a later one is reordered', () => {
  const [a1, a2, a3] = [frame(1, 'a1'), frame(1, 'a2'), frame(1, 'a3')];
  const a = audit([a1, a2, a3], [a3, a1, a2]);
  assert.equal(a.reordered, 2);
  assert.equal(a.released, 3);
});

test('release audit: a frame out twice is duplicated; one never sent is too', () => {
  const [a1, a2] = [frame(1, 'a1'), frame(1, 'a2')];
  assert.deepEqual(outcome(audit([a1, a2], [a1, a1, a2, frame(3, 'never sent')])), { sent: 2, released: 2, owed: 0, duplicated: 2, reordered: 0, flowsOwing: 0 });
});

test('release audit: identical bytes sent twice (a retransmission) may come out twice, not three times', () => {
  const r = frame(1, 'again');
  const a = audit([r, r], [r, r, r]);
  assert.deepEqual([a.released, a.duplicated, a.owed], [2, 1, 0]);
});

test('release audit: frames never released stay owed, counted with their flows', () => {
  const sent = [frame(1, 'a'), frame(2, 'b'), frame(2, 'c'), frame(3, 'd')];
  assert.deepEqual(outcome(audit(sent, [sent[0]!])), { sent: 4, released: 1, owed: 3, duplicated: 0, reordered: 0, flowsOwing: 2 });
});

type Op = { kind: 'send'; frame: Uint8Array } | { kind: 'release'; pick: number; twice: boolean } | { kind: 'stranger'; frame: Uint8Array };

/**
 * The obvious model: every frame sent is kept with its position, and nothing is ever forgotten
 * (the audit drops a flow once it owes nothing). A release takes the earliest unmatched copy.
 */
function model(ops: readonly Op[]) {
  const key = (f: Uint8Array) => Buffer.from(f).toString('hex');
  const flow = (f: Uint8Array) => flowKey(decodeFrame(f) as Frame, true);
  const sent: Uint8Array[] = [];
  const unmatched = new Map<string, number[]>();
  const last = new Map<string, number>();
  let released = 0;
  let duplicated = 0;
  let reordered = 0;
  const release = (f: Uint8Array): void => {
    const at = unmatched.get(key(f))?.shift();
    if (at === undefined) {
      duplicated++;
      return;
    }
    released++;
    if (at < (last.get(flow(f)) ?? -1)) reordered++;
    last.set(flow(f), Math.max(last.get(flow(f)) ?? -1, at));
  };
  for (const op of ops) {
    if (op.kind === 'send') {
      unmatched.set(key(op.frame), [...(unmatched.get(key(op.frame)) ?? []), sent.length]);
      sent.push(op.frame);
    } else if (op.kind === 'stranger') {
      release(op.frame);
    } else if (sent.length > 0) {
      const f = sent[op.pick % sent.length]!;
      release(f);
      if (op.twice) release(f);
    }
  }
  const owing = new Set([...unmatched].filter(([, p]) => p.length > 0).map(([k]) => flow(Buffer.from(k, 'hex'))));
  return { sent: sent.length, released, owed: sent.length - released, duplicated, reordered, flowsOwing: owing.size };
}

test('release audit: agrees with the keep-everything model on sends and releases interleaved, with losses, duplicates and reorders', () => {
  // Few flows and a small payload alphabet, so repeated identical frames (retransmissions) are
  // common, and flows that owe nothing (forgotten by the audit) come back.
  const frameArb = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.constantFrom('x', 'y', 'z', 'w')).map(([f, p]) => frame(f, p));
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: frameArb.map((f) => ({ kind: 'send' as const, frame: f })) },
    { weight: 4, arbitrary: fc.tuple(fc.nat(), fc.boolean()).map(([pick, twice]) => ({ kind: 'release' as const, pick, twice })) },
    { weight: 1, arbitrary: frameArb.map((f) => ({ kind: 'stranger' as const, frame: f })) },
  );
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      const a = new ReleaseAudit();
      const sent: Uint8Array[] = [];
      for (const op of ops) {
        if (op.kind === 'send') {
          a.send(op.frame);
          sent.push(op.frame);
        } else if (op.kind === 'stranger') {
          a.release(op.frame);
        } else if (sent.length > 0) {
          const f = sent[op.pick % sent.length]!;
          a.release(f);
          if (op.twice) a.release(f);
        }
      }
      assert.deepEqual(outcome(a), model(ops));
    }),
    { numRuns: 1000 },
  );
});
