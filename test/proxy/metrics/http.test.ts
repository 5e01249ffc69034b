// The metrics endpoint's bounds on what scrapers cost: one rendering at a time, shared by the
// requests that come meanwhile, and a connection piling up unanswered (pipelined) requests closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_PIPELINED, closeMetrics, serveMetrics, type MetricsSource } from '../../../proxy/metrics/http.js';

/** A source whose renderings take `ms` and are counted; each says its number. */
function slowSource(ms: number): MetricsSource & { renderings: number } {
  return {
    renderings: 0,
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    async metrics() {
      const n = ++this.renderings;
      await sleep(ms);
      return `rendering ${n}\n`;
    },
  };
}

const GET = 'GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n';

/** Connects, writes `text` in one write, and collects what comes back until the server closes or `ms` pass. */
async function exchange(port: number, text: string, ms: number): Promise<{ reply: string; closedByServer: boolean }> {
  const s: Socket = connect(port, '127.0.0.1');
  s.on('error', () => undefined); // a reset is a close too (the server drops what it did not read)
  await once(s, 'connect');
  let reply = '';
  s.setEncoding('utf8').on('data', (d: string) => (reply += d));
  s.write(text);
  const closed = new Promise<boolean>((resolve) => s.once('close', () => resolve(true)));
  const closedByServer = await Promise.race([closed, sleep(ms).then(() => false)]);
  s.destroy();
  return { reply, closedByServer };
}

const answers = (reply: string): string[] => [...reply.matchAll(/rendering \d+/g)].map((m) => m[0]);

test('metrics http: requests while a rendering is in flight share it; one after it renders afresh', async () => {
  const source = slowSource(50);
  const server = await serveMetrics(source, '127.0.0.1', 0);
  const { port } = server.address() as AddressInfo;
  try {
    const many = await Promise.all(Array.from({ length: 20 }, () => exchange(port, GET, 300)));
    assert.equal(source.renderings, 1, 'twenty scrapers at once, one rendering');
    for (const m of many) assert.deepEqual(answers(m.reply), ['rendering 1']);
    const later = await exchange(port, GET, 300);
    assert.deepEqual(answers(later.reply), ['rendering 2'], 'not a cached answer');
  } finally {
    closeMetrics(server);
  }
});

test(`metrics http: a connection with more than ${MAX_PIPELINED} requests unanswered is closed, after one rendering; others are served`, async () => {
  const source = slowSource(20);
  const server = await serveMetrics(source, '127.0.0.1', 0);
  const { port } = server.address() as AddressInfo;
  try {
    const flood = await exchange(port, GET.repeat(1800), 2000);
    assert.equal(flood.closedByServer, true, 'closed');
    assert.equal(source.renderings, 1);
    assert.ok(answers(flood.reply).length <= MAX_PIPELINED, `${answers(flood.reply).length} answers`);
    // Within the limit, pipelined requests are all answered, and the connection stays open.
    const fine = await exchange(port, GET.repeat(MAX_PIPELINED), 300);
    assert.equal(answers(fine.reply).length, MAX_PIPELINED);
    assert.equal(fine.closedByServer, false);
  } finally {
    closeMetrics(server);
  }
});
