// The replay session's virtual clock, driven directly: how often it wakes the core, counted on the
// real comparator (its advanceTo wrapped to count calls, then called through).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emitUdp } from '../../../compare/index.js';
import { ReplaySession } from '../../../proxy/replay/session.js';

const datagram = (n: number): Uint8Array => emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: `answer ${n}` });

/** Replays two matching datagrams, `gapMs` apart, then lets time run out; returns the core's advanceTo calls. */
function wakesAcross(gapMs: number): { wakes: number; released: number } {
  const session = new ReplaySession({ checkpointMs: 30, comparator: { scanIntervalMs: 10, compareTimeoutMs: 100, idleTimeoutMs: 1000, closedLingerMs: 1000 } });
  const core = session.comparator;
  const advanceTo = core.advanceTo.bind(core);
  let wakes = 0;
  core.advanceTo = (sink, now) => {
    wakes++;
    advanceTo(sink, now);
  };
  for (const [n, at] of [[0, 0], [1, gapMs]] as const) {
    session.ingest('primary', datagram(n), at);
    session.ingest('secondary', datagram(n), at + 1);
  }
  session.finish();
  return { wakes, released: session.released };
}

test('replay session: an idle gap costs the same few wakes of the core however long it is', () => {
  // The flow is forgotten after the idle timeout (1000 ms, 100 scans); after that nothing waits,
  // so a gap of 10^5 or 10^6 ms (10^4 and 10^5 scan intervals) must cost no more wakes than that.
  const short = wakesAcross(100_000);
  const long = wakesAcross(1_000_000);
  assert.equal(short.released, 2);
  assert.equal(long.released, 2);
  assert.equal(long.wakes, short.wakes, `wakes: ${short.wakes} across 10^5 ms, ${long.wakes} across 10^6 ms`);
  assert.ok(long.wakes <= 2 * (1000 / 10) + 10, `${long.wakes} wakes: about one per scan interval of the idle timeout, twice`);
});
