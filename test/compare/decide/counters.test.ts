import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../../compare/index.js';

test('carryOver adds an earlier core\'s totals, counts its open connections closed, and leaves the gauges', () => {
  const earlier = new Counters();
  Object.assign(earlier, { clientFrames: 1, primaryFrames: 2, secondaryFrames: 3, releasedFrames: 4, comparedBytes: 5, unverifiedBytes: 6, checkpointsDone: 7, checkpointsCoalesced: 8, connectionsOpened: 9, connectionsClosed: 4, heldFrames: 10, heldBytes: 11, secondaryWaitingFrames: 12 });
  earlier.mismatch('tcp.payload');
  earlier.checkpointRequested('tcp.payload');
  earlier.count('flow.midstream');
  const now = new Counters();
  Object.assign(now, { primaryFrames: 100, connectionsOpened: 1, heldFrames: 1 });
  now.mismatch('tcp.payload');
  now.count('decode.tcp.header_too_short');
  now.carryOver(earlier);
  assert.deepEqual(
    [now.clientFrames, now.primaryFrames, now.secondaryFrames, now.releasedFrames, now.comparedBytes, now.unverifiedBytes, now.checkpointsDone, now.checkpointsCoalesced, now.connectionsOpened, now.connectionsClosed],
    [1, 102, 3, 4, 5, 6, 7, 8, 10, 9],
  );
  assert.deepEqual([now.heldFrames, now.heldBytes, now.secondaryWaitingFrames], [1, 0, 0], 'gauges are this core\'s');
  assert.deepEqual([...now.mismatches], [['tcp.payload', 2]]);
  assert.deepEqual([...now.checkpoints], [['tcp.payload', 1]]);
  assert.deepEqual(new Map(now.events), new Map([['decode.tcp.header_too_short', 1], ['flow.midstream', 1]]));
});
