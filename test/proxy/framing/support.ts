/**
 * Shared checks for the capture decoder tests: decoding under any chunking, every split point,
 * every truncated prefix. Frames are compared as plain values with `data` in hex.
 */

import assert from 'node:assert/strict';
import { toHex } from '../../../compare/wire/bytes.js';
import { CaptureFormatError, createCaptureDecoder } from '../../../proxy/framing/capture.js';
import type { CaptureDecoder, CapturedFrame } from '../../../proxy/framing/capture.js';

export interface FrameValue {
  interfaceId: number;
  linkType: number;
  timeNs: bigint;
  data: string;
  originalLength: number;
  comment: string | undefined;
  fileOffset: number;
}

/** `f` as a plain value with its data as hex, for deep equality. */
export function value(f: CapturedFrame): FrameValue {
  return {
    interfaceId: f.interfaceId, linkType: f.linkType, timeNs: f.timeNs, data: toHex(f.data),
    originalLength: f.originalLength, comment: f.comment, fileOffset: f.fileOffset,
  };
}

/** A little-endian pcapng block of `type` around `body` (already padded), both lengths filled in. */
export function pcapngBlock(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, out.length, true);
  out.set(body, 8);
  v.setUint32(out.length - 4, out.length, true);
  return out;
}

/** A little-endian section header block (version 1.0, section length unknown). */
export function pcapngSection(): Uint8Array {
  const shb = new DataView(new ArrayBuffer(16));
  shb.setUint32(0, 0x1a2b3c4d, true);
  shb.setUint16(4, 1, true);
  shb.setBigInt64(8, -1n, true);
  return pcapngBlock(0x0a0d0d0a, new Uint8Array(shb.buffer));
}

/** An interface description block (snaplen 0), with `if_tsoffset` when `offsetS` is given. */
export function pcapngInterface(linkType: number, offsetS?: number): Uint8Array {
  const idb = new DataView(new ArrayBuffer(offsetS === undefined ? 8 : 24));
  idb.setUint16(0, linkType, true);
  if (offsetS !== undefined) {
    idb.setUint16(8, 14, true); // if_tsoffset
    idb.setUint16(10, 8, true);
    idb.setBigInt64(12, BigInt(offsetS), true); // then opt_endofopt
  }
  return pcapngBlock(1, new Uint8Array(idb.buffer));
}

/** An enhanced packet block of interface `iface` at `timeUs` (in the interface's default microseconds). */
export function pcapngPacket(iface: number, timeUs: number | bigint, data: Uint8Array): Uint8Array {
  const epb = new Uint8Array(20 + ((data.length + 3) & ~3));
  const v = new DataView(epb.buffer);
  v.setUint32(0, iface, true);
  v.setUint32(4, Number(BigInt(timeUs) >> 32n), true);
  v.setUint32(8, Number(BigInt(timeUs) & 0xffffffffn), true);
  v.setUint32(12, data.length, true);
  v.setUint32(16, data.length, true);
  epb.set(data, 20);
  return pcapngBlock(6, epb);
}

/** A simple packet block (interface 0, no time). */
export function pcapngSimplePacket(data: Uint8Array): Uint8Array {
  const spb = new Uint8Array(4 + ((data.length + 3) & ~3));
  new DataView(spb.buffer).setUint32(0, data.length, true);
  spb.set(data, 4);
  return pcapngBlock(3, spb);
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Pushes each chunk then ends; returns every frame, read only after the last push (so aliasing shows). */
export function decode(chunks: Uint8Array[], decoder: CaptureDecoder = createCaptureDecoder()): FrameValue[] {
  const frames: CapturedFrame[] = [];
  for (const c of chunks) frames.push(...decoder.push(c));
  decoder.end();
  return frames.map(value);
}

/** `input` split before each offset in `cuts` (ascending). */
export function split(input: Uint8Array, cuts: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const c of cuts) {
    chunks.push(input.subarray(from, c));
    from = c;
  }
  chunks.push(input.subarray(from));
  return chunks;
}

/** Asserts that every two-piece split and 1-byte chunking of `input` decode to `expected`. */
export function assertAnyChunking(input: Uint8Array, expected: FrameValue[], make: () => CaptureDecoder = createCaptureDecoder): void {
  assert.deepEqual(decode([input], make()), expected, 'one chunk');
  for (let k = 0; k <= input.length; k++) {
    assert.deepEqual(decode(split(input, [k]), make()), expected, `split at ${k}`);
  }
  assert.deepEqual(decode(split(input, Array.from({ length: input.length }, (_, i) => i + 1)), make()), expected, '1-byte chunks');
}

/**
 * Asserts that each prefix of `input` ending on a unit boundary decodes cleanly to the frames it
 * holds, and that every other prefix fails in `end()` with `capture.truncated` at the offset of the
 * unit it cuts. `boundaries` are the end offsets of the units (file header, records, blocks).
 */
export function assertTruncations(input: Uint8Array, boundaries: number[], make: () => CaptureDecoder = createCaptureDecoder): void {
  const all = decode([input], make());
  for (let p = 0; p < input.length; p++) {
    const d = make();
    const frames = d.push(input.subarray(0, p));
    if (boundaries.includes(p)) {
      d.end();
      assert.deepEqual(frames.map(value), all.filter((f) => f.fileOffset < p), `prefix ${p}`);
      continue;
    }
    const unitStart = Math.max(0, ...boundaries.filter((b) => b <= p));
    assert.throws(() => d.end(), (e: unknown) => {
      assert.ok(e instanceof CaptureFormatError, `prefix ${p}: ${String(e)}`);
      assert.equal(e.code, 'capture.truncated', `prefix ${p}: ${e.message}`);
      assert.equal(e.offset, unitStart, `prefix ${p}: ${e.message}`);
      return true;
    });
  }
}

/**
 * Asserts that decoding `input`, whole or in 1-byte chunks, throws CaptureFormatError with `code`
 * at `offset`, after delivering the same frames, all from before `offset`.
 */
export function assertCorrupt(input: Uint8Array, code: string, offset: number, make: () => CaptureDecoder = createCaptureDecoder): void {
  const delivered: FrameValue[][] = [];
  for (const chunks of [[input], split(input, Array.from({ length: input.length }, (_, i) => i + 1))]) {
    const d = make();
    const frames: CapturedFrame[] = [];
    assert.throws(() => {
      for (const c of chunks) frames.push(...d.push(c));
      d.end();
    }, (e: unknown) => {
      assert.ok(e instanceof CaptureFormatError, String(e));
      assert.equal(e.code, code, e.message);
      assert.equal(e.offset, offset, e.message);
      assert.match(e.message, new RegExp(`at byte ${offset} \\(${code.replace('.', '\\.')}\\)$`));
      return true;
    });
    assert.throws(() => d.end(), CaptureFormatError, 'a failed decoder stays failed');
    assert.ok(frames.every((f) => f.fileOffset < offset), 'no frame from the damage on');
    delivered.push(frames.map(value));
  }
  assert.deepEqual(delivered[0], delivered[1], 'the frames before the damage do not depend on chunking');
}
