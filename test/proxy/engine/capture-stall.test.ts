/**
 * CaptureStall on a clock of the test's own: frames fed in one synchronous run (as cap's native
 * loop calls in while the capture ring never empties) are a stall once STALL_MS has passed
 * between the first of them and a check; the loop's next turn ends it. Frames spread over many
 * turns, however long in all, are none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { CaptureStall, QUIET_MS, STALL_MS } from '../../../proxy/engine/capture-stall.js';

function watched(): { stall: CaptureStall; clock: { t: number }; calls: number[]; lines: string[] } {
  const clock = { t: 1000 };
  const calls: number[] = [];
  const lines: string[] = [];
  const stall = new CaptureStall(() => clock.t, { stalled: (ms) => calls.push(ms), log: (line) => lines.push(line) });
  return { stall, clock, calls, lines };
}

test('frames that keep the loop from turning for STALL_MS are a stall: stalled is called, at most once per STALL_MS, and the log says when it begins and ends', async () => {
  const { stall, clock, calls, lines } = watched();
  // 10,000 frames 0.1 ms apart without a turn: 1 s of frames.
  for (let i = 0; i < 10_000; i++) {
    stall.frame();
    clock.t += 0.1;
  }
  assert.ok(calls[0]! >= STALL_MS, `first call after ${calls[0]} ms`);
  for (let i = 1; i < calls.length; i++) assert.ok(calls[i]! - calls[i - 1]! >= STALL_MS, `calls ${calls.join(', ')} ms`);
  // Checked every 256 frames (25.6 ms here): once per STALL_MS, give or take one check.
  const expected = Math.floor(1000 / STALL_MS);
  assert.ok(calls.length >= expected - 1 && calls.length <= expected, `calls at ${calls.join(', ')} ms`);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /^capture: frames have kept the event loop busy for \d+ ms/);
  await turn();
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[1]!, /^capture: the event loop turns again, after 1000 ms and 10000 frames without$/);
  // A new burst after the turn starts counting afresh.
  const before = calls.length;
  for (let i = 0; i < 1000; i++) stall.frame();
  assert.equal(calls.length, before);
});

test('stalls that recur are said in the log at most once per QUIET_MS, the ones in between summed up in the next line', async () => {
  const { stall, clock, calls, lines } = watched();
  const oneStall = async (): Promise<void> => {
    for (let i = 0; i < 5000; i++) {
      stall.frame();
      clock.t += 0.1; // 500 ms of frames
    }
    await turn();
    clock.t += 1000;
  };
  await oneStall();
  assert.equal(lines.length, 2, lines.join('\n'));
  for (let i = 0; i < 3; i++) await oneStall();
  assert.equal(lines.length, 2, `said again within ${QUIET_MS} ms:\n${lines.join('\n')}`);
  clock.t += QUIET_MS;
  await oneStall();
  assert.equal(lines.length, 4, lines.join('\n'));
  assert.match(lines[2]!, /\(and 3 more since the last one said here, 1500 ms in all\)/);
  // Every stall, said or not, still had its work done.
  assert.ok(calls.length >= 5, `stalled called ${calls.length} times over 5 stalls`);
});

test('frames spread over turns of the loop are no stall, however long they go on, nor is a burst that follows an idle loop', async () => {
  const { stall, clock, calls, lines } = watched();
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 512; i++) {
      stall.frame();
      clock.t += STALL_MS / 1024;
    }
    await turn();
  }
  // Idle for a long while (the loop waiting in epoll, turning nowhere), then a short burst.
  clock.t += 60_000;
  for (let i = 0; i < 1024; i++) stall.frame();
  await turn();
  assert.deepEqual(calls, []);
  assert.deepEqual(lines, []);
});
