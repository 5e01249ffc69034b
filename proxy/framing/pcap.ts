/**
 * Classic libpcap capture files (draft-ietf-opsawg-pcap): a 24-byte file header, then records of
 * a 16-byte header and the captured bytes. Pure; see capture.ts for the decoder contract.
 *
 * The reader takes both byte orders and both the microsecond (0xa1b2c3d4) and nanosecond
 * (0xa1b23c4d) magics, and requires major version 2. A record whose captured length exceeds
 * max(snaplen, 262144) (and never more than MAX_RECORD_BYTES) is corrupt. Taken as libpcap and
 * Wireshark take them, without error: the `thiszone` and `sigfigs` fields (ignored); the FCS bits
 * in the upper half of the link type field (dropped: `linkType` is the low 16 bits); a fraction
 * field of 10^6 µs or 10^9 ns and more (added as is); an original length smaller than the
 * captured one (reported as recorded).
 *
 * The writer emits little-endian files, nanosecond by default. Its misuse (a record before the
 * header, a time outside what the format can hold, data longer than the snaplen) throws
 * RangeError or Error: those are programmer errors, not bad input.
 */

import {
  CaptureFormatError, CaptureFramer, captureTruncated, checkU32, DEFAULT_SNAPLEN, MAX_RECORD_BYTES, readU16Order, readU32Order, writeU16LE, writeU32LE,
} from './capture.js';
import { CapturedFrame } from './captured-frame.js';
import type { CaptureDecoder, CaptureUnits } from './capture.js';
import type { ChunkViews } from './unit-framer.js';

/** File magic of a microsecond-resolution pcap, as a number in the file's own byte order. */
export const PCAP_MAGIC_MICROS = 0xa1b2c3d4;
/** File magic of a nanosecond-resolution pcap. */
export const PCAP_MAGIC_NANOS = 0xa1b23c4d;

const FILE_HEADER = 24;
const RECORD_HEADER = 16;

/** A decoder for classic pcap input only (use `createCaptureDecoder` to detect the format). */
export function createPcapDecoder(): CaptureDecoder {
  return new CaptureFramer(new PcapUnits());
}

class PcapUnits implements CaptureUnits {
  readonly format = 'pcap';
  readonly prefixLength = 0;
  started = false;
  private le = true;
  private fracNs = 1000;
  private linkType = 0;
  private snaplen = 0;
  private maxRecord = 0;

  unitLength(b: Uint8Array, at: number, have: number, fileOffset: number): number {
    if (!this.started) return have < FILE_HEADER ? 0 : FILE_HEADER;
    if (have < RECORD_HEADER) return 0;
    const incl = readU32Order(b, at + 8, this.le);
    if (incl > this.maxRecord) {
      throw new CaptureFormatError(
        'capture.record_too_large', fileOffset,
        `pcap record claims ${incl} captured bytes, over the limit of ${this.maxRecord} (snaplen ${this.snaplen})`,
      );
    }
    return RECORD_HEADER + incl;
  }

  unit(b: Uint8Array, at: number, length: number, fileOffset: number, out: CapturedFrame[], views: ChunkViews): void {
    if (!this.started) {
      this.fileHeader(b, at, fileOffset);
      return;
    }
    const le = this.le;
    out.push(new CapturedFrame(
      0, this.linkType, readU32Order(b, at, le), readU32Order(b, at + 4, le) * this.fracNs,
      views.of(at + RECORD_HEADER, length - RECORD_HEADER), readU32Order(b, at + 12, le), undefined, fileOffset,
    ));
  }

  private fileHeader(b: Uint8Array, at: number, fileOffset: number): void {
    const asLE = readU32Order(b, at, true);
    this.le = asLE === PCAP_MAGIC_MICROS || asLE === PCAP_MAGIC_NANOS;
    const m = readU32Order(b, at, this.le);
    if (m !== PCAP_MAGIC_MICROS && m !== PCAP_MAGIC_NANOS) {
      throw new CaptureFormatError('capture.bad_magic', fileOffset, `not a pcap file (magic 0x${readU32Order(b, at, false).toString(16)})`);
    }
    this.fracNs = m === PCAP_MAGIC_NANOS ? 1 : 1000;
    const major = readU16Order(b, at + 4, this.le);
    if (major !== 2) {
      throw new CaptureFormatError('capture.unsupported_version', fileOffset + 4, `pcap version ${major}.${readU16Order(b, at + 6, this.le)} (only 2.x is defined)`);
    }
    this.snaplen = readU32Order(b, at + 16, this.le);
    this.maxRecord = Math.min(Math.max(this.snaplen, DEFAULT_SNAPLEN), MAX_RECORD_BYTES);
    this.linkType = readU32Order(b, at + 20, this.le) & 0xffff;
    this.started = true;
  }

  truncated(fileOffset: number, have: number, length: number): CaptureFormatError | undefined {
    return captureTruncated(this, fileOffset, have, length);
  }
}

/** Options of a classic pcap file header. */
export interface PcapHeaderOptions {
  /** Largest captured length a record may have; default 262144. */
  snaplen?: number;
  /** Nanosecond timestamps (magic 0xa1b23c4d); default true. False writes microseconds, truncating. */
  nanosecond?: boolean;
}

/** Encodes a classic little-endian pcap file: `header` once, then `record` per frame. */
export class PcapWriter {
  private snaplen = -1;
  private nanosecond = true;

  /** The 24-byte file header. Call once, first. */
  header(linkType: number, options: PcapHeaderOptions = {}): Uint8Array {
    if (this.snaplen >= 0) throw new Error('PcapWriter: header() called twice');
    const snaplen = options.snaplen ?? DEFAULT_SNAPLEN;
    checkU32('snaplen', snaplen);
    checkU32('linkType', linkType);
    this.snaplen = snaplen;
    this.nanosecond = options.nanosecond ?? true;
    const h = new Uint8Array(FILE_HEADER);
    writeU32LE(h, 0, this.nanosecond ? PCAP_MAGIC_NANOS : PCAP_MAGIC_MICROS);
    writeU16LE(h, 4, 2);
    writeU16LE(h, 6, 4);
    writeU32LE(h, 16, snaplen);
    writeU32LE(h, 20, linkType);
    return h;
  }

  /** One record: 16-byte header and a copy of `data`. `timeNs` must lie in [0, 2^32) seconds. */
  record(timeNs: bigint, data: Uint8Array, originalLength = data.length): Uint8Array {
    if (this.snaplen < 0) throw new Error('PcapWriter: record() before header()');
    if (data.length > this.snaplen) throw new RangeError(`PcapWriter: ${data.length} bytes exceed the snaplen ${this.snaplen}`);
    if (originalLength < data.length) throw new RangeError(`PcapWriter: originalLength ${originalLength} < captured length ${data.length}`);
    checkU32('originalLength', originalLength);
    const sec = timeNs / 1_000_000_000n;
    if (timeNs < 0n || sec > 0xffffffffn) throw new RangeError(`PcapWriter: time ${timeNs} ns is outside [0, 2^32) seconds`);
    const ns = Number(timeNs - sec * 1_000_000_000n);
    const r = new Uint8Array(RECORD_HEADER + data.length);
    writeU32LE(r, 0, Number(sec));
    writeU32LE(r, 4, this.nanosecond ? ns : Math.floor(ns / 1000));
    writeU32LE(r, 8, data.length);
    writeU32LE(r, 12, originalLength);
    r.set(data, RECORD_HEADER);
    return r;
  }
}
