/**
 * SendThread's failure paths, without a network: a thread that cannot start is reported once,
 * with its reason; what was queued before is counted as refused, and later frames are refused at
 * once ('gone') rather than waited on. A frame too long for the ring is refused, not thrown.
 * (Frames actually sent, in order, through a ring that wraps and fills: pcap-interface.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendThread } from '../../../proxy/ports/send-thread.js';
import { loadPacketSocket, packetSocketPath } from '../../../proxy/ports/packet-socket.js';

const addon = loadPacketSocket();

test('a send thread that cannot load the addon: said once, queued frames counted as refused, later ones refused at once', async () => {
  assert.ok(addon !== null, 'the packet socket addon is built (npm run setup)');
  const reasons: string[] = [];
  let failed!: () => void;
  const dead = new Promise<void>((resolve) => (failed = resolve));
  const thread = new SendThread(addon, '/nonexistent/packet_socket.node', (why) => {
    reasons.push(why);
    failed();
  }, 64 * 1024);
  const slot = thread.addPort();
  const frame = new Uint8Array(100).fill(7);
  let queued = 0;
  while (thread.send(slot, 1, frame) === 'queued') {
    queued++;
    if (queued % 100 === 0) await new Promise((r) => setImmediate(r));
    assert.ok(queued < 1_000_000, 'the thread never reported its death');
  }
  await dead;
  assert.equal(thread.send(slot, 1, frame), 'gone');
  assert.equal(reasons.length, 1, reasons.join('\n'));
  assert.match(reasons[0]!, /^the send thread failed: .*nonexistent/);
  assert.equal(thread.counters(slot).sent, 0);
  assert.equal(thread.counters(slot).errors, queued, 'every frame queued before the death is counted as refused');
  await thread.close();
});

test('a frame longer than half the ring is refused, not thrown', async () => {
  assert.ok(addon !== null);
  const thread = new SendThread(addon, packetSocketPath(), () => {}, 16 * 1024);
  assert.equal(thread.send(thread.addPort(), 1, new Uint8Array(9000)), 'too-long');
  await thread.close();
});
