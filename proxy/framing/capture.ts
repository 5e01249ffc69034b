/**
 * Capture files, format-neutral: the frame record every capture decoder yields, the one error
 * class decoders throw, the incremental framer both formats share, and `createCaptureDecoder`,
 * which tells classic pcap from pcapng by the first four bytes.
 *
 * Decoders are pure and incremental. Push bytes in chunks of any size (a chunk may end anywhere,
 * even inside a header); each `push` returns the frames that chunk completed, in file order. Call
 * `end()` once when the input is over: it throws if the input stopped inside a header or a
 * record. Corrupt input throws `CaptureFormatError`, never anything else, and the frames before the
 * damage are all delivered whatever the chunking: a `push` that completed frames before hitting
 * the damage returns them, and the error comes from the next call. After that the decoder is dead
 * and rethrows the same error on every call. `push` after `end` is incorrect use.
 *
 * Memory stays bounded by the largest single record or block (never more than
 * `MAX_RECORD_BYTES`), whatever the size of the file; the buffer for a record that straddles
 * chunks grows only as its bytes arrive, so a lying length field costs no more than the input.
 *
 * Zero-copy: a frame's `data` is a subarray of the pushed chunk when the record lies wholly inside
 * it, and a private copy otherwise. A decoder never writes to a chunk and never keeps one after
 * `push` returns, so frames stay valid for as long as the caller leaves those chunk bytes alone;
 * a caller that reuses one read buffer must copy the frames it keeps before the next read. A kept
 * frame keeps its whole chunk alive, so long-lived queues should copy (ARCHITECTURE: "copied once,
 * at the queue boundary").
 *
 * pcap.ts and pcapng.ts import from this module, and this module touches them only inside
 * `createCaptureDecoder`, so the import cycle is harmless at load time; keep it that way.
 */

import { createPcapDecoder, PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS } from './pcap.js';
import { createPcapngDecoder, PCAPNG_BLOCK_SHB } from './pcapng.js';

/** One captured packet, as read from a pcap or pcapng file. */
export interface CapturedFrame {
  /** pcapng interface id within its section; 0 for classic pcap. */
  interfaceId: number;
  /** LINKTYPE_* of that interface. */
  linkType: number;
  /** Capture time in nanoseconds since the Unix epoch, exact (finer resolutions truncated). */
  timeNs: bigint;
  /** Captured bytes; shorter than `originalLength` when the capture was snapped. */
  data: Uint8Array;
  /** Length of the packet on the wire, as recorded. */
  originalLength: number;
  /** First pcapng `opt_comment` of the packet block; undefined otherwise. */
  comment: string | undefined;
  /** Byte offset in the input where the frame's record or block starts. */
  fileOffset: number;
}

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
export class CaptureFormatError extends Error {
  override readonly name = 'CaptureFormatError';

  constructor(
    /** Stable dotted code, `capture.<problem>`. */
    readonly code: string,
    /** Byte offset in the input where the faulty record, block, option or field starts. */
    readonly offset: number,
    /** One-line description of the problem, without the offset. */
    readonly problem: string,
    /** The file the input came from, when known. */
    readonly path?: string,
  ) {
    super(`${path !== undefined ? `${path}: ` : ''}${problem} at byte ${offset} (${code})`);
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

/**
 * The per-format half of a `UnitFramer`: how long the next unit (file header, record or block) is,
 * and what it contains. A file is a sequence of such units, each announcing its length in its
 * first `headLength` bytes.
 */
export interface UnitFormat {
  readonly format: 'pcap' | 'pcapng';
  /** Bytes of the next unit needed before `unitLength` may be asked (at most 32). */
  readonly headLength: number;
  /** True once the file header has been decoded. */
  readonly started: boolean;
  /** Total length (>= headLength) of the unit at `b[at]`, from its head alone; no side effects. Throws CaptureFormatError. */
  unitLength(b: Uint8Array, at: number, fileOffset: number): number;
  /** Decodes the complete unit `b[at, at + length)`, appending its frame, if any, to `out`. */
  unit(b: Uint8Array, at: number, length: number, fileOffset: number, out: CapturedFrame[]): void;
}

/** First allocation for a unit that straddles chunks; it doubles from here up to the unit's length. */
const STRADDLE_START = 1 << 20;

/** Turns a `UnitFormat` into a `CaptureDecoder` that accepts any chunking. */
export class UnitFramer implements CaptureDecoder {
  /** Input offset of the first byte of the chunk being pushed. */
  private base = 0;
  /** Bytes of a unit that started in an earlier chunk: in `head` until its length is known, then in `buf`. */
  private pendLen = 0;
  private pendStart = 0;
  /** Length of the pending unit, 0 while its head is incomplete. */
  private unitLen = 0;
  private readonly head = new Uint8Array(32);
  private buf = this.head;
  private failure: CaptureFormatError | undefined = undefined;
  private ended = false;

  constructor(private readonly units: UnitFormat) {}

  get format(): 'pcap' | 'pcapng' {
    return this.units.format;
  }

  push(chunk: Uint8Array): CapturedFrame[] {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('CaptureDecoder: push() after end()');
    const out: CapturedFrame[] = [];
    try {
      let pos = 0;
      if (this.pendLen > 0) pos = this.fill(chunk, 0, out);
      if (this.pendLen === 0) pos = this.scan(chunk, pos, out);
      if (pos < chunk.length) {
        this.pendStart = this.base + pos;
        this.fill(chunk, pos, out);
      }
    } catch (e) {
      if (!(e instanceof CaptureFormatError)) throw e;
      this.failure = e;
      if (out.length === 0) throw e;
    }
    this.base += chunk.length;
    return out;
  }

  end(): void {
    if (this.failure) throw this.failure;
    this.ended = true;
    if (this.pendLen > 0) {
      const what = this.unitLen > 0 ? `a ${this.unitLen}-byte unit` : 'a header';
      this.failure = new CaptureFormatError(
        'capture.truncated', this.pendStart,
        `${this.units.format} input ends after ${this.pendLen} bytes of ${what}`,
      );
    } else if (!this.units.started) {
      this.failure = new CaptureFormatError('capture.truncated', this.base, `${this.units.format} input ends before its file header`);
    }
    if (this.failure) throw this.failure;
  }

  /** Decodes every unit lying wholly in `chunk` from `pos`; returns where the first incomplete one starts. */
  private scan(chunk: Uint8Array, pos: number, out: CapturedFrame[]): number {
    const units = this.units;
    for (;;) {
      const avail = chunk.length - pos;
      if (avail < units.headLength) return pos;
      const len = units.unitLength(chunk, pos, this.base + pos);
      if (avail < len) return pos;
      units.unit(chunk, pos, len, this.base + pos, out);
      pos += len;
    }
  }

  /** Adds bytes from `chunk[pos..]` to the pending unit, decoding it if complete; returns the new position. */
  private fill(chunk: Uint8Array, pos: number, out: CapturedFrame[]): number {
    const units = this.units;
    if (this.unitLen === 0) {
      const n = Math.min(units.headLength - this.pendLen, chunk.length - pos);
      this.head.set(chunk.subarray(pos, pos + n), this.pendLen);
      this.pendLen += n;
      pos += n;
      if (this.pendLen < units.headLength) return pos;
      this.unitLen = units.unitLength(this.head, 0, this.pendStart);
      this.buf = new Uint8Array(Math.min(this.unitLen, STRADDLE_START));
      this.buf.set(this.head.subarray(0, this.pendLen));
    }
    const n = Math.min(this.unitLen - this.pendLen, chunk.length - pos);
    if (this.pendLen + n > this.buf.length) {
      const grown = new Uint8Array(Math.min(this.unitLen, Math.max(this.pendLen + n, 2 * this.buf.length)));
      grown.set(this.buf.subarray(0, this.pendLen));
      this.buf = grown;
    }
    this.buf.set(chunk.subarray(pos, pos + n), this.pendLen);
    this.pendLen += n;
    pos += n;
    if (this.pendLen === this.unitLen) {
      const unit = this.buf;
      this.pendLen = 0;
      this.unitLen = 0;
      this.buf = this.head;
      units.unit(unit, 0, unit.length, this.pendStart, out);
    }
    return pos;
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
