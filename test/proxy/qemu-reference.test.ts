// QEMU's own colo-compare (qemu-system-x86_64, Debian's QEMU 7.2) as the reference peer: these
// tests prove the harness in test/support/qemu-colo-compare.ts and record what QEMU does on a
// set of scenarios, as facts. `colo-proxy compare` is later played the same scenarios; where QEMU
// is wrong (COLO-REFERENCE §5) the difference is stated there, not here. Everything is black box
// over sockets: `sync()` is a barrier proving QEMU has processed all input sent so far (see the
// harness), so "nothing released" and "exactly N DO_CHECKPOINT" are exact, not timing guesses.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { emitArp, emitTcp, emitUdp, TCP_ACK, TCP_PSH, TCP_SYN, type TcpFields } from '../../compare/index.js';
import { COLO_COMPARE_GET_XEN_INIT, COLO_USERSPACE_PROXY_INIT, DO_CHECKPOINT, encodeNotify } from '../../proxy/framing/notify.js';
import { CLIENT, CLIENT_PORT, GUEST, GUEST_PORT } from '../support/twins.js';
import { QEMU_INSTALL_LINE, startQemuColoCompare, withoutQemu, type QemuColoCompare, type QemuColoCompareOptions, type ReleasedFrame } from '../support/qemu-colo-compare.js';

const ISN = 1_000_000;

/** A guest -> client segment of the one flow (10.0.0.2:80 -> 10.0.0.1:40000), data from ISN + 1. */
function out(offset: number, payload: string, extra: Partial<TcpFields> = {}): Uint8Array {
  return emitTcp({
    src: GUEST, dst: CLIENT, srcPort: GUEST_PORT, dstPort: CLIENT_PORT,
    seq: ISN + 1 + offset, ack: 5001, flags: TCP_ACK | (payload.length > 0 ? TCP_PSH : 0), payload, ...extra,
  });
}

const SYN_ACK = emitTcp({
  src: GUEST, dst: CLIENT, srcPort: GUEST_PORT, dstPort: CLIENT_PORT,
  seq: ISN, ack: 5001, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, windowScale: 7 },
});

function udp(payload: string): Uint8Array {
  return emitUdp({ src: GUEST, dst: CLIENT, srcPort: 53, dstPort: 5353, payload });
}

async function qemu(t: TestContext, options: QemuColoCompareOptions = {}): Promise<QemuColoCompare> {
  const q = await startQemuColoCompare(options);
  t.after(() => q.close());
  return q;
}

/** Both guests' SYN-ACK, so the flow is established on both sides; the PVM's is released. */
async function establish(q: QemuColoCompare): Promise<void> {
  await q.sendPrimary(SYN_ACK);
  await q.sendSecondary(SYN_ACK);
  await q.waitForReleased(1);
  q.takeReleased();
}

function packets(frames: ReleasedFrame[]): Buffer[] {
  return frames.map((f) => Buffer.from(f.packet));
}

function checkpointRequests(q: QemuColoCompare): number {
  return q.notifyMessages.filter((m) => m === DO_CHECKPOINT).length;
}

test('qemu reference: the harness fails (never skips) without qemu-system-x86_64, naming the apt-get line', async () => {
  await withoutQemu(() => assert.rejects(startQemuColoCompare(), (e: Error) => e.message.includes(QEMU_INSTALL_LINE) && e.message.includes('qemu-system-x86_64')));
});

test('qemu reference: the notify handshake is answered byte-exact, and QEMU starts with no machine or guest', async (t) => {
  const q = await qemu(t);
  assert.deepEqual(q.notifyMessages, [COLO_COMPARE_GET_XEN_INIT]);
  assert.deepEqual(q.commandLine.slice(1, 7), ['-machine', 'none', '-nodefaults', '-display', 'none', '-S']);
  assert.match(q.commandLine.at(-1)!, /^colo-compare,id=comp0,primary_in=primary_in,secondary_in=secondary_in,outdev=outdev,iothread=iothread0,notify_dev=notify_dev$/);
});

test('qemu reference: identical TCP segments are released in order, byte-identical to the primary frames', async (t) => {
  const q = await qemu(t);
  // Fact: a zero-payload PVM segment (here the SYN-ACK) is held until the SVM has sent anything on
  // the connection, then released; the SVM's copy is dropped.
  await q.sendPrimary(SYN_ACK);
  await q.sync();
  assert.equal(q.released.length, 0, 'PVM SYN-ACK held while the SVM has sent nothing');
  await q.sendSecondary(SYN_ACK);
  await q.waitForReleased(1);

  const chunks = ['GET-reply part one ', 'part two ', 'and the end\n'];
  const primary: Uint8Array[] = [];
  let offset = 0;
  for (const c of chunks) {
    primary.push(out(offset, c, { ipId: 100 + primary.length }));
    // The SVM's frames differ in IP ID and TTL, which QEMU ignores for TCP: the released bytes show whose frame went out.
    await q.sendSecondary(out(offset, c, { ipId: 900 + primary.length, ttl: 63 }));
    offset += c.length;
  }
  for (const p of primary) await q.sendPrimary(p);
  await q.waitForReleased(4);
  await q.sync();
  assert.deepEqual(packets(q.released), packets([{ packet: SYN_ACK, vnetHeader: new Uint8Array(0) }]).concat(primary.map((p) => Buffer.from(p))));
  assert.equal(checkpointRequests(q), 0);
});

test('qemu reference: a one-byte payload difference sends DO_CHECKPOINT and holds the PVM segment until COLO_CHECKPOINT', async (t) => {
  const q = await qemu(t);
  await establish(q);
  const first = out(0, 'same bytes ');
  await q.sendPrimary(first);
  await q.sendSecondary(first);
  const pvm = out(11, 'answer=42\n');
  await q.sendPrimary(pvm);
  await q.sendSecondary(out(11, 'answer=43\n'));
  await q.waitForNotify(DO_CHECKPOINT);
  await q.sync();
  assert.deepEqual(packets(q.released), [Buffer.from(first)], 'only the matched segment is out; the mismatched one is held');
  assert.equal(checkpointRequests(q), 1);

  await q.checkpointDone();
  await q.waitForReleased(2);
  assert.deepEqual(packets(q.released), [Buffer.from(first), Buffer.from(pvm)], 'the held PVM segment is released on COLO_CHECKPOINT');

  // The SVM's differing segment was discarded: the next identical segment matches at once.
  const next = out(21, 'after the checkpoint\n');
  await q.sendPrimary(next);
  await q.sendSecondary(next);
  await q.waitForReleased(3);
  await q.sync();
  assert.deepEqual(packets(q.released).at(-1), Buffer.from(next));
  assert.equal(checkpointRequests(q), 1, 'no further request');
});

test('qemu reference: DO_CHECKPOINT is repeated, not coalesced, while a mismatch is queued; the flush releases in sequence order', async (t) => {
  const q = await qemu(t);
  await establish(q);
  const p = [out(0, 'abc'), out(3, 'def'), out(6, 'ghi')];
  await q.sendPrimary(p[0]!);
  await q.sendSecondary(out(0, 'abd'));
  await q.sync();
  assert.equal(checkpointRequests(q), 1);
  // Fact: every further frame on the connection re-compares the stuck head and sends DO_CHECKPOINT
  // again (three frames here), with no COLO_CHECKPOINT in between.
  await q.sendPrimary(p[1]!);
  await q.sendSecondary(out(3, 'def'));
  await q.sendPrimary(p[2]!);
  await q.sync();
  assert.equal(checkpointRequests(q), 4);
  assert.equal(q.released.length, 0, 'everything after the mismatch is held, even the matching bytes');

  await q.checkpointDone();
  await q.waitForReleased(3);
  await q.sync();
  assert.deepEqual(packets(q.released), p.map((f) => Buffer.from(f)));
  assert.equal(checkpointRequests(q), 4);
});

test('qemu reference: UDP with the PVM two datagrams ahead gives false mismatches and reverses the release order', async (t) => {
  const q = await qemu(t);
  const p = [udp('datagram 1'), udp('datagram 2'), udp('datagram 3')];
  for (const d of p) await q.sendPrimary(d);
  await q.sync();
  // Observed (COLO-REFERENCE §5, weakness 3): QEMU compares its newest queued PVM datagram against
  // the SVM's queue, so an SVM that is merely behind looks like a mismatch: one DO_CHECKPOINT on
  // each of the first two SVM datagrams although every datagram is identical on both sides.
  await q.sendSecondary(udp('datagram 1'));
  await q.sync();
  assert.equal(checkpointRequests(q), 1, 'false mismatch on SVM datagram 1');
  assert.equal(q.released.length, 0);
  await q.sendSecondary(udp('datagram 2'));
  await q.sync();
  assert.equal(checkpointRequests(q), 2, 'false mismatch on SVM datagram 2');
  assert.equal(q.released.length, 0);
  // When the SVM catches up, all three match and go out newest first: the client sees them reversed.
  await q.sendSecondary(udp('datagram 3'));
  await q.waitForReleased(3);
  await q.sync();
  assert.deepEqual(packets(q.released), [p[2]!, p[1]!, p[0]!].map((d) => Buffer.from(d)));
  assert.equal(checkpointRequests(q), 2);
});

test('qemu reference: Ethernet padding is compared as TCP payload', async (t) => {
  const q = await qemu(t, { compareTimeoutMs: 300, scanIntervalMs: 50 });
  await establish(q);
  // Padded alike on both sides: matched and released with its padding (the primary's 60 bytes).
  const padded = out(0, 'hi', { padTo: 60 });
  assert.equal(padded.length, 60);
  await q.sendPrimary(padded);
  await q.sendSecondary(out(0, 'hi', { padTo: 60, ipId: 7 }));
  await q.waitForReleased(1);
  assert.deepEqual(packets(q.released), [Buffer.from(padded)]);

  // PVM padded, SVM not (56 bytes): QEMU counts the 4 padding bytes as payload the SVM has not
  // sent yet, holds the PVM segment with no DO_CHECKPOINT, and asks only when compare_timeout expires.
  const pvm = out(2, 'yo', { padTo: 60 });
  const sent = Date.now();
  await q.sendPrimary(pvm);
  await q.sendSecondary(out(2, 'yo'));
  await q.sync();
  assert.equal(checkpointRequests(q), 0, 'no immediate request');
  assert.equal(q.released.length, 1, 'PVM segment held');
  await q.waitForNotify(DO_CHECKPOINT, 3000);
  assert.ok(Date.now() - sent >= 290, `DO_CHECKPOINT only after compare_timeout (300 ms), got it after ${Date.now() - sent} ms`);
  await q.checkpointDone();
  await q.waitForReleased(2);
  assert.deepEqual(packets(q.released).at(-1), Buffer.from(pvm));
});

test('qemu reference: SVM-only padding releases the PVM segment, then mismatches the next one', async (t) => {
  const q = await qemu(t);
  await establish(q);
  const first = out(0, 'yo');
  await q.sendPrimary(first);
  await q.sendSecondary(out(0, 'yo', { padTo: 60 }));
  await q.waitForReleased(1);
  await q.sync();
  assert.equal(checkpointRequests(q), 0);
  // The SVM's 4 padding bytes stay queued as its bytes 2..5, so identical real data there differs:
  // one DO_CHECKPOINT on the PVM's frame and one more on the SVM's.
  await q.sendPrimary(out(2, 'zz'));
  await q.sync();
  assert.equal(checkpointRequests(q), 1);
  await q.sendSecondary(out(2, 'zz'));
  await q.sync();
  assert.equal(checkpointRequests(q), 2);
  assert.deepEqual(packets(q.released), [Buffer.from(first)]);
});

test('qemu reference: non-IPv4 frames (ARP) go out from the PVM uncompared; the SVM ones are dropped', async (t) => {
  const q = await qemu(t);
  const pvmArp = emitArp({ senderIp: GUEST, targetIp: CLIENT });
  await q.sendPrimary(pvmArp);
  await q.waitForReleased(1);
  await q.sendSecondary(emitArp({ senderIp: GUEST, targetIp: '10.0.0.99' }));
  await q.sync();
  assert.deepEqual(packets(q.released), [Buffer.from(pvmArp)]);
  assert.equal(checkpointRequests(q), 0, 'a different SVM ARP is never compared');
});

test('qemu reference: with vnet_hdr_support the released frame keeps the PVM vnet header, and notify_dev expects VNET_LEN too', async (t) => {
  // The harness frames its hello with VNET_LEN 0 here, and QEMU's reply arrives without one.
  const q = await qemu(t, { vnetHeader: true });
  assert.deepEqual(q.notifyMessages, [COLO_COMPARE_GET_XEN_INIT]);
  await establish(q);
  const pvmHeader = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const seg = out(0, 'with vnet');
  await q.sendPrimary(seg, pvmHeader);
  await q.sendSecondary(seg, new Uint8Array(10));
  await q.waitForReleased(1);
  assert.deepEqual(Buffer.from(q.released[0]!.packet), Buffer.from(seg));
  assert.deepEqual(Buffer.from(q.released[0]!.vnetHeader), Buffer.from(pvmHeader), 'the PVM header, not compared with the SVM one');
  await q.sendPrimary(out(9, 'x'));
  await q.sendSecondary(out(9, 'y'));
  await q.waitForNotify(DO_CHECKPOINT);
  await q.checkpointDone();
  await q.waitForReleased(2);
});

test('qemu reference: with vnet_hdr_support a Xen-framed hello (no VNET_LEN) desynchronises notify_dev', async (t) => {
  const q = await qemu(t, { vnetHeader: true, skipHello: true });
  // The hello as the Xen controller frames it, then as QEMU's reader wants it (VNET_LEN 0): QEMU
  // takes "COLO" as VNET_LEN, reads two garbage messages and answers neither hello.
  await q.sendNotifyBytes(encodeNotify(COLO_USERSPACE_PROXY_INIT));
  await q.sendNotify(COLO_USERSPACE_PROXY_INIT);
  await q.waitForStderr(/COLO compare got unsupported instruction\n(.*\n)*.*COLO compare got unsupported instruction/);
  assert.deepEqual(q.notifyMessages, [], 'no COLO_COMPARE_GET_XEN_INIT');
});
