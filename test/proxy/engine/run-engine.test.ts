// RunEngine in-process, nothing opened (no interfaces, no sockets): what its metrics say across
// a restore, which replaces the comparator core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunEngine } from '../../../proxy/engine/run-engine.js';
import { warmUpEvents } from '../../../proxy/engine/warm-up-traffic.js';

test('run: a restore (SIGUSR2) starts a fresh core, but the metrics\' totals go on from where they were', async () => {
  const engine = new RunEngine({ clientIf: 'lo', primaryIf: 'lo', secondary: { kind: 'interface', name: 'lo' }, notifyDev: undefined, comparator: {}, lostAfter: 3, controllerTimeoutMs: 0, log: () => {} });
  try {
    // The engine's own path for captured frames, without the capture (its private `ingest`).
    const ingest = (side: 'client' | 'primary' | 'secondary', frame: Uint8Array): void => (engine as unknown as { ingest(s: string, f: Uint8Array): void }).ingest(side, frame);
    const feed = (events: ReturnType<typeof warmUpEvents>): void => {
      for (const e of events) {
        if (e.kind === 'client') ingest('client', e.frame);
        else {
          ingest('primary', e.primary);
          ingest('secondary', e.secondary);
        }
      }
    };
    const metric = async (series: string): Promise<number> => {
      const line = (await engine.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
      return Number(line?.slice(series.length + 1));
    };
    feed(warmUpEvents(true).slice(0, 400));
    const released = await metric('colo_proxy_released_frames_total');
    const compared = await metric('colo_proxy_compared_bytes_total');
    assert.ok(released > 0 && compared > 0, `${released} released, ${compared} bytes compared`);
    engine.passThrough = 'secondary lost';
    engine.restore();
    assert.equal(await metric('colo_proxy_released_frames_total'), released);
    assert.equal(await metric('colo_proxy_compared_bytes_total'), compared);
    feed(warmUpEvents(true).slice(0, 400));
    assert.ok(await metric('colo_proxy_released_frames_total') > released, 'and count on');
  } finally {
    await engine.close();
  }
});
