/**
 * The readable report and exit code of `replay --against`: a comparator that asked for no
 * checkpoint but released frames wrong is neither "identical" nor exit 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { againstExitCode, formatAgainst, type AgainstReport } from '../../../proxy/replay/against.js';

function report(overrides: Partial<AgainstReport>): AgainstReport {
  return {
    comparator: 'qemu-system-x86_64 -object colo-compare', primaryFrames: 100, secondaryFrames: 100, clientFramesNotSent: 0,
    skipped: { secondaryInput: 0, primaryInput: 0 }, released: 100, lost: 0, lostFlows: 0, duplicated: 0, reordered: 0,
    checkpointCount: 0, checkpoints: [], checkpointsCoalesced: 0, helloAnswered: true, otherNotifyCount: 0, otherNotify: [], wallMs: 12,
    ...overrides,
  };
}
const ours = { checkpoints: 0, byReason: {}, released: 100 };

test('against: no checkpoint and every frame released once, in order: identical, exit 0', () => {
  const r = report({});
  assert.equal(againstExitCode(r), 0);
  assert.match(formatAgainst(r, ours), /^ {2}outcome {5}identical: no checkpoint needed$/m);
});

test('against: no checkpoint but frames reordered, repeated or lost: not identical, exit 1', () => {
  for (const wrong of [{ reordered: 3 }, { duplicated: 1, released: 101 }, { lost: 2, lostFlows: 1, released: 98 }]) {
    const r = report(wrong);
    assert.equal(againstExitCode(r), 1, JSON.stringify(wrong));
    const text = formatAgainst(r, ours);
    assert.doesNotMatch(text, /qemu-system-x86_64 +identical/, JSON.stringify(wrong));
    assert.match(text, /^ {2}outcome {5}no checkpoint asked for, but \d+ frames released wrong \(below\)$/m, JSON.stringify(wrong));
  }
});
