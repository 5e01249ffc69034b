import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LINKTYPE_ETHERNET } from '../../../compare/wire/link.js';
import { CapturedFrame, createCaptureDecoder } from '../../../proxy/framing/capture.js';
import { PcapngWriter } from '../../../proxy/framing/pcapng.js';
import { PcapWriter } from '../../../proxy/framing/pcap.js';
import { concat } from './support.js';

const at = (seconds: number, nanoseconds: number): CapturedFrame =>
  new CapturedFrame(0, LINKTYPE_ETHERNET, seconds, nanoseconds, new Uint8Array(0), 0, undefined, 0);

test('captured frame: timeNs is exact past 2^53 ns, and a fraction of a second or more carries into the seconds', () => {
  assert.equal(at(4_294_967_295, 999_999_999).timeNs, 4_294_967_295_999_999_999n);
  const carried = at(10, 4_294_967_295_000); // a µs pcap's fraction field at its maximum, times 1000
  assert.deepEqual([carried.seconds, carried.nanoseconds, carried.timeNs], [4_304, 967_295_000, 4_304_967_295_000n]);
  assert.equal(at(-2, 500_000_000).timeNs, -1_500_000_000n);
});

test('captured frame: before and msSince agree with the exact BigInt times', () => {
  const time = fc.tuple(fc.integer({ min: -(2 ** 33), max: 2 ** 33 }), fc.integer({ min: 0, max: 999_999_999 }));
  fc.assert(fc.property(time, time, ([s1, n1], [s2, n2]) => {
    const a = at(s1, n1);
    const b = at(s2, n2);
    assert.equal(a.before(b), a.timeNs < b.timeNs);
    const exact = Number(a.timeNs - b.timeNs) / 1e6;
    // As close as a double can say it: to the ns over any span a replay has, relatively beyond.
    assert.ok(Math.abs(a.msSince(b) - exact) <= 1e-6 + Math.abs(exact) * 4 * Number.EPSILON, `${a.msSince(b)} vs ${exact}`);
  }), { numRuns: 500 });
});

test('capture: µs pcapng times on both sides of the plain-number limit (2^53 µs) decode exactly', () => {
  const w = new PcapngWriter();
  const parts = [w.sectionHeader(), w.interfaceDescription(LINKTYPE_ETHERNET, { tsresol: 6 })];
  // Raw µs timestamps with the high word just under and at 2^21 (2^53 µs), and the largest the writer takes in ns.
  const micros = [(0x1fffffn << 32n) | 0xffffffffn, (0x200000n << 32n) | 1n, ((1n << 64n) - 1n) / 1000n, 1_700_000_000_123_456n];
  for (const us of micros) parts.push(w.enhancedPacket(0, us * 1000n, new Uint8Array([1])));
  const decoder = createCaptureDecoder();
  const frames = decoder.push(concat(...parts));
  decoder.end();
  assert.deepEqual(frames.map((f) => f.timeNs), micros.map((us) => us * 1000n));
  assert.deepEqual(frames.map((f) => f.nanoseconds < 1e9 && f.nanoseconds >= 0), micros.map(() => true));
});

test('capture: pcap times decode exactly to the nanosecond in both resolutions', () => {
  for (const nanosecond of [true, false]) {
    const w = new PcapWriter();
    const times = [0n, 1_700_000_000_123_456_789n, 4_294_967_295_999_999_999n];
    const input = concat(w.header(LINKTYPE_ETHERNET, { nanosecond }), ...times.map((t) => w.record(t, new Uint8Array([2]))));
    const decoder = createCaptureDecoder();
    const frames = decoder.push(input);
    decoder.end();
    assert.deepEqual(frames.map((f) => f.timeNs), times.map((t) => (nanosecond ? t : t - (t % 1000n))));
  }
});
