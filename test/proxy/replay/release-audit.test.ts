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

/** The obvious model: keep every frame sent and released, then match them up at the end. */
function model(sent: Uint8Array[], released: Uint8Array[]) {
  const key = (f: Uint8Array) => Buffer.from(f).toString('hex');
  const flow = (f: Uint8Array) => flowKey(decodeFrame(f) as Frame, true);
  const positions = new Map<string, number[]>();
  sent.forEach((f, i) => positions.set(key(f), [...(positions.get(key(f)) ?? []), i]));
  let duplicated = 0;
  let reordered = 0;
  const last = new Map<string, number>();
  for (const f of released) {
    const at = positions.get(key(f))?.shift();
    if (at === undefined) {
      duplicated++;
      continue;
    }
    if (at < (last.get(flow(f)) ?? -1)) reordered++;
    last.set(flow(f), Math.max(last.get(flow(f)) ?? -1, at));
  }
  const matched = released.length - duplicated;
  const owing = new Set([...positions].filter(([, p]) => p.length > 0).map(([k]) => flow(Buffer.from(k, 'hex'))));
  return { sent: sent.length, released: matched, owed: sent.length - matched, duplicated, reordered, flowsOwing: owing.size };
}

test('release audit: agrees with the keep-everything model on random sends, losses, duplicates and reorders', () => {
  // Few flows and a small payload alphabet, so repeated identical frames (retransmissions) are common.
  const frameArb = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.constantFrom('x', 'y', 'z', 'w')).map(([f, p]) => frame(f, p));
  fc.assert(
    fc.property(
      fc.array(frameArb, { maxLength: 40 }),
      fc.array(fc.tuple(fc.nat(), fc.boolean(), fc.boolean()), { maxLength: 40 }),
      fc.array(frameArb, { maxLength: 3 }),
      (sent, picks, strangers) => {
        // Released: a shuffled selection of the sent frames (some dropped, some doubled), plus strangers.
        const released: Uint8Array[] = [];
        picks.forEach(([n, keep, twice], i) => {
          if (sent.length === 0 || !keep) return;
          const f = sent[(n + i) % sent.length]!;
          released.splice(n % (released.length + 1), 0, f);
          if (twice) released.push(f);
        });
        released.push(...strangers);
        assert.deepEqual(outcome(audit(sent, released)), model(sent, released));
      },
    ),
    { numRuns: 500 },
  );
});
