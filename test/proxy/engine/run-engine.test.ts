// RunEngine in-process, no interface opened: what its metrics say across a restore, which
// replaces the comparator core, and what they say of the --secondary-socket link (only that
// socket started, a test peer as the bridge).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emitUdp } from '../../../compare/index.js';
import { RunEngine } from '../../../proxy/engine/run-engine.js';
import { warmUpEvents } from '../../../proxy/engine/warm-up-traffic.js';
import { encodeQemuFrames } from '../../../proxy/framing/qemu-frames.js';
import { parseEndpoint } from '../../../proxy/ports/endpoint.js';
import { dial, waitFor } from '../../support/socket-peer.js';

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

test('run --secondary-socket: the link\'s frames received, sent and dropped, and its framing errors, are in the metrics', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'colo-run-engine-'));
  const path = join(dir, 'bridge.sock');
  const engine = new RunEngine({ clientIf: 'lo', primaryIf: 'lo', secondary: { kind: 'socket', endpoint: parseEndpoint('--secondary-socket', `unix:${path},server`) }, notifyDev: undefined, comparator: {}, lostAfter: 3, controllerTimeoutMs: 0, log: () => {} });
  try {
    const ingest = (side: 'client' | 'primary' | 'secondary', frame: Uint8Array): void => (engine as unknown as { ingest(s: string, f: Uint8Array): void }).ingest(side, frame);
    const metric = async (series: string): Promise<number> => {
      const line = (await engine.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
      return Number(line?.slice(series.length + 1));
    };
    const udp = emitUdp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5353, dstPort: 53, payload: 'q' });
    await engine.secondarySocket!.start();
    ingest('client', udp); // no bridge yet: dropped
    assert.equal(await metric('colo_proxy_secondary_socket_frames_total{direction="dropped"}'), 1);
    const bridge = await dial(path);
    try {
      await waitFor('the bridge to be taken', () => engine.secondarySocket!.connected);
      bridge.write(encodeQemuFrames([{ packet: emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: 'a' }) }], false));
      bridge.write(Uint8Array.of(0xff, 0xff, 0xff, 0xff)); // a length past QEMU's limit
      await waitFor('the framing error', () => engine.secondarySocket!.framingErrors === 1);
      assert.equal(await metric('colo_proxy_secondary_socket_frames_total{direction="received"}'), 1);
      assert.equal(await metric('colo_proxy_framing_errors_total{port="secondary-socket",code="qemu.frame_too_long"}'), 1);
    } finally {
      bridge.destroy();
    }
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
