/**
 * Capture files, format-neutral: the frame record every capture decoder yields, the one error
 * class decoders throw, what pcap.ts and pcapng.ts plug into the shared framer (unit-framer.ts),
 * and `createCaptureDecoder`, which tells classic pcap from pcapng by the first four bytes.
 *
 * Decoders are pure and have the framer's contract: chunks of any size, frames in file order
 * whatever the chunking, corrupt input a `CaptureFormatError` (never anything else) thrown after
 * the frames before the damage are all delivered, then dead; `end()` throws if the input stopped
 * inside a header or a record. Memory stays bounded by the largest single record or block (never
 * more than `MAX_RECORD_BYTES`), whatever the size of the file.
 *
 * Zero-copy: a frame's `data` is a view of the pushed chunk (a plain Uint8Array, even when the
 * chunk is a Buffer) when the record lies wholly inside it, and of a private copy otherwise, so
 * frames stay valid for as long as the caller leaves those chunk bytes alone; a caller that reuses
 * one read buffer must copy the frames it keeps before the next read. A kept frame keeps its
 * whole chunk alive, so long-lived queues should copy (ARCHITECTURE: "copied once, at the queue
 * boundary").
 *
 * pcap.ts and pcapng.ts import from this module, and this module touches them only inside
 * `createCaptureDecoder`, so the import cycle is harmless at load time; keep it that way (they
 * implement `CaptureUnits` rather than extend a class from here).
 */

import { createPcapDecoder, PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS } from './pcap.js';
import { createPcapngDecoder, PCAPNG_BLOCK_SHB } from './pcapng.js';
import { FramingError, UnitFramer } from './unit-framer.js';
import type { UnitFormat } from './unit-framer.js';
import type { CapturedFrame } from './captured-frame.js';

export { CapturedFrame } from './captured-frame.js';

/** Incremental decoder of one capture stream. Call order: `push`* then `end` once. */
export interface CaptureDecoder {
  /** Decodes the next chunk of input; returns the frames it completed. Throws CaptureFormatError (see the module header for when). */
  push(chunk: Uint8Array): CapturedFrame[];
  /** Declares the input over; throws CaptureFormatError('capture.truncated') if it stopped mid-record. */
  end(): void;
  /** The detected format, known once the first four bytes have been seen. */
  readonly format: 'pcap' | 'pcapng' | undefined;
}

/**
 * Corrupt or unsupported capture input. `code` is stable (`capture.truncated`, `capture.bad_magic`,
 * `capture.unsupported_version`, `capture.bad_block_length`, `capture.record_too_large`,
 * `capture.unknown_interface`, `capture.bad_option`); `offset` is the byte offset in the input of
 * the record or block at fault, or, more precisely, of the faulty option or header field.
 */
export class CaptureFormatError extends FramingError {
  override readonly name = 'CaptureFormatError';

  constructor(
    code: string,
    offset: number,
    problem: string,
    /** The file the input came from, when known. */
    readonly path?: string,
  ) {
    super(code, offset, problem, path);
  }
}

/** Default snaplen of both writers, and the least record limit of the pcap reader (libpcap's MAXIMUM_SNAPLEN). */
export const DEFAULT_SNAPLEN = 262144;

/** No record or block may be larger than this (64 MiB), whatever its header claims. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** Reads an unsigned 32-bit integer at `at` in the given byte order; no bounds check. */
export function readU32Order(b: Uint8Array, at: number, littleEndian: boolean): number {
  return littleEndian
    ? (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0
    : ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Reads an unsigned 16-bit integer at `at` in the given byte order; no bounds check. */
export function readU16Order(b: Uint8Array, at: number, littleEndian: boolean): number {
  return littleEndian ? b[at]! | (b[at + 1]! << 8) : (b[at]! << 8) | b[at + 1]!;
}

/** Writes the low 32 bits of `v` little-endian at `at`. */
export function writeU32LE(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

/** Writes the low 16 bits of `v` little-endian at `at`. */
export function writeU16LE(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}

/** Throws RangeError unless `v` is an integer in [0, 2^32); for writers' arguments. */
export function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} ${v} is not an unsigned 32-bit integer`);
}

/** A capture format's half of a `UnitFramer`: its units are the file header, then records or blocks, decoded whole. */
export interface CaptureUnits extends UnitFormat<CapturedFrame, CaptureFormatError> {
  readonly format: 'pcap' | 'pcapng';
  /** True once the file header has been decoded. */
  readonly started: boolean;
}

/** `truncated` of both capture formats. */
export function captureTruncated(units: CaptureUnits, fileOffset: number, have: number, length: number): CaptureFormatError | undefined {
  if (have > 0) {
    const what = length > 0 ? `a ${length}-byte unit` : 'a header';
    return new CaptureFormatError('capture.truncated', fileOffset, `${units.format} input ends after ${have} bytes of ${what}`);
  }
  return units.started ? undefined : new CaptureFormatError('capture.truncated', fileOffset, `${units.format} input ends before its file header`);
}

/** The `CaptureDecoder` of one capture format. */
export class CaptureFramer extends UnitFramer<CapturedFrame, CaptureFormatError> implements CaptureDecoder {
  readonly format: 'pcap' | 'pcapng';

  constructor(units: CaptureUnits) {
    super(units, 'CaptureDecoder');
    this.format = units.format;
  }
}

/** A decoder that detects classic pcap (either byte order, µs or ns) or pcapng from the first 4 bytes. */
export function createCaptureDecoder(): CaptureDecoder {
  return new DetectingDecoder();
}

class DetectingDecoder implements CaptureDecoder {
  private inner: CaptureDecoder | undefined = undefined;
  private readonly magic = new Uint8Array(4);
  private seen = 0;
  private failure: CaptureFormatError | undefined = undefined;

  get format(): 'pcap' | 'pcapng' | undefined {
    return this.inner?.format;
  }

  push(chunk: Uint8Array): CapturedFrame[] {
    if (this.inner) return this.inner.push(chunk);
    if (this.failure) throw this.failure;
    const n = Math.min(4 - this.seen, chunk.length);
    this.magic.set(chunk.subarray(0, n), this.seen);
    this.seen += n;
    if (this.seen < 4) return [];
    try {
      this.inner = detect(this.magic);
    } catch (e) {
      this.failure = e as CaptureFormatError;
      throw e;
    }
    if (n === 4) return this.inner.push(chunk);
    const frames = this.inner.push(this.magic);
    return frames.concat(this.inner.push(chunk.subarray(n)));
  }

  end(): void {
    if (this.inner) return this.inner.end();
    this.failure ??= new CaptureFormatError('capture.truncated', 0, `capture input ends after ${this.seen} bytes, before its magic number`);
    throw this.failure;
  }
}

function detect(magic: Uint8Array): CaptureDecoder {
  const le = readU32Order(magic, 0, true);
  const be = readU32Order(magic, 0, false);
  if (be === PCAPNG_BLOCK_SHB) return createPcapngDecoder();
  if (le === PCAP_MAGIC_MICROS || le === PCAP_MAGIC_NANOS || be === PCAP_MAGIC_MICROS || be === PCAP_MAGIC_NANOS) {
    return createPcapDecoder();
  }
  throw new CaptureFormatError('capture.bad_magic', 0, `not a pcap or pcapng file (magic 0x${be.toString(16).padStart(8, '0')})`);
}
