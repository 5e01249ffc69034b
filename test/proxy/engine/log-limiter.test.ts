// Mismatch and event lines under a burst: a share per window goes out, the rest are counted in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogLimiter } from '../../../proxy/engine/log-limiter.js';

/** A limiter on a clock the test moves, with its deferred calls run when the test says. */
function harness(perWindow: number, windowMs: number) {
  const lines: string[] = [];
  let t = 0;
  const due: { at: number; fn: () => void }[] = [];
  const limiter = new LogLimiter((l) => lines.push(l), { perWindow, windowMs, now: () => t, later: (fn, ms) => due.push({ at: t + ms, fn }) });
  const advance = (to: number): void => {
    t = to;
    for (const d of due.filter((x) => x.at <= to)) {
      due.splice(due.indexOf(d), 1);
      d.fn();
    }
  };
  return { lines, limiter, advance, due, setTime: (to: number) => (t = to) };
}

test('log limiter: a burst writes its share, and the window\'s end says how many were left out', () => {
  const h = harness(3, 1000);
  for (let i = 0; i < 10; i++) h.limiter.line('mismatch', `mismatch ${i}`);
  assert.deepEqual(h.lines, ['mismatch 0', 'mismatch 1', 'mismatch 2']);
  assert.equal(h.due.length, 1, 'one summary scheduled, however many were left out');
  h.advance(999);
  assert.equal(h.lines.length, 3);
  h.advance(1000);
  assert.deepEqual(h.lines.slice(3), ['7 more mismatch lines left out of the log in 1000 ms (the metrics count every one)']);
});

test('log limiter: each kind has its own share', () => {
  const h = harness(2, 1000);
  for (let i = 0; i < 3; i++) h.limiter.line('mismatch', `m${i}`);
  for (let i = 0; i < 2; i++) h.limiter.line('event', `e${i}`);
  assert.deepEqual(h.lines, ['m0', 'm1', 'e0', 'e1']);
});

test('log limiter: a line in the next window, before the summary was due to run, writes the summary first, and only once', () => {
  const h = harness(1, 1000);
  h.limiter.line('mismatch', 'a');
  h.limiter.line('mismatch', 'b');
  h.setTime(1500); // the deferred summary has not run yet
  h.limiter.line('mismatch', 'c');
  h.advance(1500);
  assert.deepEqual(h.lines, ['a', '1 more mismatch line left out of the log in 1000 ms (the metrics count every one)', 'c']);
});

test('log limiter: below its share nothing is held back or summarised', () => {
  const h = harness(5, 1000);
  for (let i = 0; i < 5; i++) h.limiter.line('event', `e${i}`);
  h.advance(5000);
  assert.deepEqual(h.lines, ['e0', 'e1', 'e2', 'e3', 'e4']);
  assert.equal(h.due.length, 0);
});
