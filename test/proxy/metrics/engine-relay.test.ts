/**
 * run's metrics across engine processes (proxy/metrics/engine-relay.ts): the supervisor's relay
 * serves the running engine's values, carries an engine's counters on to the next one (from its
 * last values when it stops, from the last poll when it is killed), counts what the supervisor
 * adds, leaves outside totals and gauges uncarried, and writes valid exposition text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { EngineMetricsRelay } from '../../../proxy/metrics/engine-relay.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/engine.ts', import.meta.url));

async function engine(frames: number, held: number, kernel: number): Promise<ChildProcess> {
  const c = fork(FIXTURE, [String(frames), String(held), String(kernel)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [m] = (await once(c, 'message')) as [unknown];
  assert.equal(m, 'ready');
  return c;
}

/** `name{labels} value` lines of the text, by series. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

test('counters go on across engines, gauges and outside totals are the running engine\'s own', async () => {
  const relay = new EngineMetricsRelay(new Set(['x_kernel_total']));
  try {
    const first = await engine(10, 3, 500);
    relay.attach(first);
    let m = series(await relay.metrics());
    assert.equal(m.get('x_frames_total{side="pri\\"mary"}'), 10);
    assert.equal(m.get('x_held_frames'), 3);
    assert.equal(m.get('colo_proxy_engine_up'), 1);
    first.send('more');
    first.send('stop'); // its last values: 11 frames
    await once(first, 'close');
    relay.detach();
    relay.add('x_losses_total', {}, 1);
    m = series(await relay.metrics());
    assert.equal(m.get('colo_proxy_engine_up'), 0);
    assert.equal(m.get('x_frames_total{side="pri\\"mary"}'), 11, 'carried from its last values');
    assert.equal(m.get('x_held_frames'), undefined, 'no gauge without an engine');
    assert.equal(m.get('x_losses_total'), 1);

    const second = await engine(5, 7, 600);
    relay.attach(second);
    m = series(await relay.metrics());
    assert.equal(m.get('x_frames_total{side="pri\\"mary"}'), 16);
    assert.equal(m.get('x_held_frames'), 7);
    assert.equal(m.get('x_kernel_total'), 600, 'an outside total is not added up');
    assert.equal(m.get('x_losses_total'), 1);
    // Killed: what it had when last asked is carried.
    second.kill('SIGKILL');
    await once(second, 'close');
    relay.detach();
    m = series(await relay.metrics());
    assert.equal(m.get('x_frames_total{side="pri\\"mary"}'), 16);
  } finally {
    relay.close();
  }
});

test('the text is Prometheus exposition: HELP and TYPE once per family, escapes, engine_up last', async () => {
  const relay = new EngineMetricsRelay(new Set());
  const c = await engine(1, 2, 3);
  try {
    relay.attach(c);
    const text = await relay.metrics();
    assert.match(text, /^# HELP x_frames_total Frames\.\\nSecond line with a \\\\ backslash\.\n# TYPE x_frames_total counter\nx_frames_total\{side="pri\\"mary"\} 1\n/);
    assert.match(text, /\n# TYPE x_held_frames gauge\nx_held_frames 2\n/);
    assert.match(text, /# TYPE colo_proxy_engine_up gauge\ncolo_proxy_engine_up 1\n$/);
    for (const name of ['x_frames_total', 'x_held_frames', 'x_kernel_total', 'x_losses_total']) assert.equal(text.split(`# TYPE ${name} `).length, 2, name);
  } finally {
    c.kill();
    await once(c, 'close');
    relay.detach();
    relay.close();
  }
});
