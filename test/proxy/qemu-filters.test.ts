// Wire compatibility with what QEMU's own filters write (issue 4): a real QEMU 7.2 with a NIC and
// a netdev, CPU stopped, `filter-mirror` and `filter-redirector` on the netdev (queue=tx, see
// test/support/qemu-filters.ts for why tx and why both), writing to socket chardevs the test
// listens on. Frames built with the wire emitters are injected into the netdev; the two real
// filter streams are (1) parsed by hand and checked field by field, (2) decoded with our
// QemuFrameDecoder and re-encoded with our encoder, byte-identical, and (3) relayed chunk for
// chunk, unmodified, into our `colo-proxy compare`: the mirror's stream to primary_in, the
// redirector's to secondary_in. Compare must release every frame, and its outdev stream must be
// byte-identical to the primary's filter stream (same LEN, VNET_LEN, vnet header, frame, order).
//
// Variants: a `-netdev stream` without and with vnet_hdr_support (a stream netdev has no vnet
// header: QEMU writes VNET_LEN 0), and a tap with vnet_hdr=on and virtio-net-pci with
// vnet_hdr_support (QEMU writes VNET_LEN 10 and the 10-byte header the kernel gave it).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { emitTcp, emitUdp, TCP_ACK, TCP_PSH, TCP_SYN } from '../../compare/index.js';
import { encodeQemuFrames, QemuFrameDecoder, type QemuFrame } from '../../proxy/framing/qemu-frames.js';
import { CLIENT, CLIENT_PORT, GUEST, GUEST_PORT } from '../support/twins.js';
import { QEMU_INSTALL_LINE, withoutQemu } from '../support/qemu-colo-compare.js';
import { FILTERS, startQemuFilters, type QemuFiltersOptions } from '../support/qemu-filters.js';
import { startRawColoProxyCompare } from '../support/colo-proxy-compare.js';

const ISN = 2_000_000;

/** Guest output of one TCP connection and a UDP flow, as a guest would send it (what colo-compare sees). */
const FRAMES: readonly Uint8Array[] = [
  emitTcp({
    src: GUEST, dst: CLIENT, srcPort: GUEST_PORT, dstPort: CLIENT_PORT,
    seq: ISN, ack: 5001, flags: TCP_SYN | TCP_ACK, options: { mss: 1460, sackPermitted: true, windowScale: 7 },
  }),
  emitTcp({ src: GUEST, dst: CLIENT, srcPort: GUEST_PORT, dstPort: CLIENT_PORT, seq: ISN + 1, ack: 5001, flags: TCP_ACK | TCP_PSH, payload: 'hello' }),
  emitTcp({ src: GUEST, dst: CLIENT, srcPort: GUEST_PORT, dstPort: CLIENT_PORT, seq: ISN + 6, ack: 5001, flags: TCP_ACK, payload: 'x'.repeat(1400) }),
  emitUdp({ src: GUEST, dst: CLIENT, srcPort: 53, dstPort: 5353, payload: 'udp from the guest' }),
  emitUdp({ src: GUEST, dst: CLIENT, srcPort: 53, dstPort: 5353, payload: '' }),
];

/** One frame of a filter stream, parsed by hand (no decoder under test). */
interface Parsed {
  offset: number;
  len: number;
  vnetLen: number | undefined;
  vnetHeader: Buffer;
  frame: Buffer;
}

/** Walks a whole stream: LEN (4 BE), VNET_LEN (4 BE) when `vnet`, then LEN bytes. */
function parseByHand(stream: Buffer, vnet: boolean): Parsed[] {
  const out: Parsed[] = [];
  let at = 0;
  while (at < stream.length) {
    const offset = at;
    assert.ok(at + (vnet ? 8 : 4) <= stream.length, `stream ends inside the length fields at ${at}`);
    const len = stream.readUInt32BE(at);
    at += 4;
    let vnetLen: number | undefined;
    if (vnet) {
      vnetLen = stream.readUInt32BE(at);
      at += 4;
    }
    assert.ok(at + len <= stream.length, `stream ends inside the frame at ${offset} (LEN ${len})`);
    const v = vnetLen ?? 0;
    out.push({ offset, len, vnetLen, vnetHeader: stream.subarray(at, at + v), frame: stream.subarray(at + v, at + len) });
    at += len;
  }
  return out;
}

/** Decodes with our decoder, fed the chunks exactly as QEMU's writes arrived. */
function decode(chunks: readonly Buffer[], vnet: boolean): QemuFrame[] {
  const d = new QemuFrameDecoder({ vnetHeader: vnet });
  const frames: QemuFrame[] = [];
  for (const c of chunks) {
    for (const f of d.push(c)) frames.push({ ...f, packet: f.packet.slice(), vnetHeader: f.vnetHeader.slice() });
    assert.equal(d.error, undefined);
  }
  d.end();
  return frames;
}

interface Expect {
  /** VNET_LEN QEMU writes; undefined when the filters have no vnet_hdr_support. */
  vnetLen: number | undefined;
}

async function roundTrip(t: TestContext, options: QemuFiltersOptions, expect: Expect): Promise<void> {
  const vnet = options.vnetHeader === true;
  const [qemu, ours] = await Promise.all([startQemuFilters(options), startRawColoProxyCompare({ vnetHeader: vnet })]);
  t.after(() => qemu.close());
  t.after(() => ours.close());
  t.diagnostic(`QEMU: ${qemu.commandLine.join(' ')}`);

  const chunks = new Map(FILTERS.map((f) => [f, [] as Buffer[]]));
  for (const f of FILTERS) qemu.subscribe(f, (c) => chunks.get(f)!.push(c));
  // The real filter streams go into our compare unmodified, chunk for chunk as QEMU wrote them.
  qemu.subscribe('mirror', (c) => ours.write('primary_in', c));
  qemu.subscribe('redirector', (c) => ours.write('secondary_in', c));

  await qemu.inject(FRAMES);
  const v = expect.vnetLen ?? 0;
  const streamLength = FRAMES.reduce((a, f) => a + (vnet ? 8 : 4) + v + f.length, 0);
  await qemu.waitForBytes(streamLength);

  for (const f of FILTERS) {
    const stream = qemu.bytes(f);
    assert.equal(stream.length, streamLength, `${f}: stream length`);
    // (1) By hand: LEN counts the vnet header and the frame; VNET_LEN is the netdev's header length.
    const parsed = parseByHand(stream, vnet);
    assert.equal(parsed.length, FRAMES.length, `${f}: frame count`);
    parsed.forEach((p, i) => {
      assert.equal(p.len, v + FRAMES[i]!.length, `${f} frame ${i}: LEN`);
      assert.equal(p.vnetLen, expect.vnetLen, `${f} frame ${i}: VNET_LEN`);
      assert.deepEqual(p.vnetHeader, Buffer.alloc(v), `${f} frame ${i}: vnet header bytes`);
      assert.deepEqual(p.frame, Buffer.from(FRAMES[i]!), `${f} frame ${i}: Ethernet frame as injected`);
    });
    t.diagnostic(`${f}: LEN ${parsed.map((p) => p.len).join(',')} VNET_LEN ${parsed.map((p) => p.vnetLen ?? '-').join(',')}; ` +
      `first 12 bytes ${stream.subarray(0, 12).toString('hex')}; ${chunks.get(f)!.length} read(s)`);
    // (2) Our decoder, on QEMU's chunks, agrees with the hand parse; our encoder rebuilds the stream byte for byte.
    const decoded = decode(chunks.get(f)!, vnet);
    assert.deepEqual(decoded.map((d) => [d.offset, Buffer.from(d.vnetHeader), Buffer.from(d.packet)]), parsed.map((p) => [p.offset, p.vnetHeader, p.frame]), `${f}: decoder`);
    assert.deepEqual(Buffer.from(encodeQemuFrames(decoded, vnet)), stream, `${f}: our encoder reproduces QEMU's bytes`);
  }
  assert.deepEqual(qemu.bytes('mirror'), qemu.bytes('redirector'), 'filter-mirror and filter-redirector write the same bytes');

  // (3) Our compare releases every frame, in order, and its outdev is byte-identical to the primary's stream.
  await ours.waitForOutdev(streamLength);
  const released = ours.outdev();
  assert.deepEqual(released, qemu.bytes('mirror'), 'outdev byte-identical to the filter-mirror stream');
  const releasedFrames = parseByHand(released, vnet);
  assert.deepEqual(releasedFrames.map((p) => p.frame), FRAMES.map((f) => Buffer.from(f)));
  assert.deepEqual(releasedFrames.map((p) => p.vnetLen), FRAMES.map(() => expect.vnetLen), 'VNET_LEN preserved');
}

test('qemu filters: fail (never skip) without qemu-system-x86_64, naming the apt-get line', async () => {
  await withoutQemu(() => assert.rejects(startQemuFilters(), (e: Error) => e.message.includes(QEMU_INSTALL_LINE) && e.message.includes('qemu-system-x86_64')));
});

test('qemu filters: -netdev stream, no vnet: LEN only; our compare releases the real streams byte-identical', async (t) => {
  await roundTrip(t, { netdev: 'stream' }, { vnetLen: undefined });
});

test('qemu filters: -netdev stream, vnet_hdr_support=on: VNET_LEN 0 (a stream netdev has no header); released byte-identical', async (t) => {
  await roundTrip(t, { netdev: 'stream', vnetHeader: true }, { vnetLen: 0 });
});

test('qemu filters: tap vnet_hdr=on + virtio-net-pci, vnet_hdr_support=on: VNET_LEN 10 with the header; released byte-identical', async (t) => {
  await roundTrip(t, { netdev: 'tap', vnetHeader: true }, { vnetLen: 10 });
});
