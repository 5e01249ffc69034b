/**
 * pcapng capture files (draft-ietf-opsawg-pcapng): a sequence of blocks, each framed by its type,
 * a total length repeated at both ends, and 32-bit padding. Pure; see capture.ts for the decoder
 * contract.
 *
 * Read: the Section Header Block in either byte order; a later SHB starts a new section with its
 * own byte order and a fresh interface list (interface ids restart at 0). Interface Description
 * Blocks with `if_tsresol` (powers of 10 and of 2; default 10^-6) and `if_tsoffset` (signed
 * seconds, so `timeNs` can be negative). Enhanced, Simple and the obsolete (type 2) Packet Blocks
 * yield frames. Every other block type is checked for framing and skipped. Times finer than a
 * nanosecond are truncated towards zero before `if_tsoffset` is added.
 *
 * A Simple Packet Block has no interface id and no timestamp: it belongs to interface 0, its
 * captured length is min(original length, that interface's snaplen, unless 0), and its `timeNs`
 * is that of the previous frame of the input, so replay time never jumps; before any frame with a
 * time it is `untimed` (time 0).
 *
 * Errors: `capture.bad_magic` (no SHB first, unknown byte-order magic), `capture.unsupported_version`
 * (major version not 1), `capture.bad_block_length` (under 12 or not a multiple of 4, trailing copy
 * differs, too short for its type, packet data overrunning the block),
 * `capture.record_too_large` (block over MAX_RECORD_BYTES), `capture.unknown_interface`,
 * `capture.bad_option` (an option overrunning its block, a wrongly sized if_tsresol/if_tsoffset).
 * A comment that is not valid UTF-8 is decoded with U+FFFD replacements.
 *
 * The writer emits little-endian sections. Its misuse throws RangeError or Error.
 */

import {
  CaptureFormatError, CaptureFramer, captureTruncated, checkU32, DEFAULT_SNAPLEN, MAX_RECORD_BYTES, readU16Order, readU32Order, writeU16LE, writeU32LE,
} from './capture.js';
import { CapturedFrame } from './captured-frame.js';
import type { CaptureDecoder, CaptureUnits } from './capture.js';
import type { ChunkViews } from './unit-framer.js';

/** Block type of a Section Header Block; a palindrome, so it reads the same in both byte orders. */
export const PCAPNG_BLOCK_SHB = 0x0a0d0d0a;
export const PCAPNG_BLOCK_IDB = 1;
/** The obsolete Packet Block. */
export const PCAPNG_BLOCK_OPB = 2;
export const PCAPNG_BLOCK_SPB = 3;
export const PCAPNG_BLOCK_EPB = 6;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const OPT_SHB_HARDWARE = 2;
const OPT_SHB_OS = 3;
const OPT_SHB_USERAPPL = 4;
const OPT_IF_NAME = 2;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** A decoder for pcapng input only (use `createCaptureDecoder` to detect the format). */
export function createPcapngDecoder(): CaptureDecoder {
  return new CaptureFramer(new PcapngUnits());
}

/** An interface of the current section, with its timestamp units turned into ns arithmetic. */
interface Interface {
  linkType: number;
  snaplen: number;
  /** A raw timestamp t is `((t * mul / div) >> shift) + offsetNs` ns. */
  mul: bigint;
  div: bigint;
  shift: bigint;
  offsetNs: bigint;
  /**
   * Units per second when they are a power of ten up to 10^9 (µs by default, ns as we write) and
   * there is no offset: times are then read with plain numbers (`decimalTime`). 0 otherwise.
   */
  unitsPerSecond: number;
}

class PcapngUnits implements CaptureUnits {
  readonly format = 'pcapng';
  readonly prefixLength = 0;
  started = false;
  private le = true;
  private interfaces: Interface[] = [];
  /** Time of the input's latest packet, for a following Simple Packet Block. */
  private lastSeconds = 0;
  private lastNanoseconds = 0;
  /** A packet with a timestamp was read: `lastSeconds`/`lastNanoseconds` hold a real time. */
  private timed = false;

  unitLength(b: Uint8Array, at: number, have: number, fileOffset: number): number {
    if (have < 12) return 0;
    const type = readU32Order(b, at, this.le);
    let le = this.le;
    if (type === PCAPNG_BLOCK_SHB) le = sectionByteOrder(b, at, fileOffset);
    else if (!this.started) {
      throw new CaptureFormatError('capture.bad_magic', fileOffset, `pcapng input must start with a section header block, not type 0x${type.toString(16)}`);
    }
    const length = readU32Order(b, at + 4, le);
    if (length < 12 || length % 4 !== 0) {
      throw new CaptureFormatError('capture.bad_block_length', fileOffset, `pcapng block total length ${length} is under 12 or not a multiple of 4`);
    }
    if (length > MAX_RECORD_BYTES) {
      throw new CaptureFormatError('capture.record_too_large', fileOffset, `pcapng block claims ${length} bytes, over the limit of ${MAX_RECORD_BYTES}`);
    }
    return length;
  }

  unit(b: Uint8Array, at: number, length: number, fileOffset: number, out: CapturedFrame[], views: ChunkViews): void {
    const type = readU32Order(b, at, this.le);
    if (type === PCAPNG_BLOCK_SHB) this.le = sectionByteOrder(b, at, fileOffset);
    const le = this.le;
    const trailing = readU32Order(b, at + length - 4, le);
    if (trailing !== length) {
      throw new CaptureFormatError('capture.bad_block_length', fileOffset, `pcapng block total length ${length} differs from its trailing copy ${trailing}`);
    }
    switch (type) {
      case PCAPNG_BLOCK_EPB: {
        minLength(length, 32, 'enhanced packet', fileOffset);
        const id = readU32Order(b, at + 8, le);
        this.packet(b, at, length, fileOffset, id, this.iface(id, fileOffset), out, views);
        return;
      }
      case PCAPNG_BLOCK_SPB: {
        minLength(length, 16, 'simple packet', fileOffset);
        const iface = this.iface(0, fileOffset);
        const originalLength = readU32Order(b, at + 8, le);
        const captured = iface.snaplen !== 0 && originalLength > iface.snaplen ? iface.snaplen : originalLength;
        if (captured > length - 16) {
          throw new CaptureFormatError('capture.bad_block_length', fileOffset, `simple packet of ${captured} captured bytes overruns its ${length}-byte block`);
        }
        out.push(new CapturedFrame(
          0, iface.linkType, this.lastSeconds, this.lastNanoseconds, views.of(at + 12, captured), originalLength, undefined, fileOffset, !this.timed,
        ));
        return;
      }
      case PCAPNG_BLOCK_OPB: {
        minLength(length, 32, 'obsolete packet', fileOffset);
        const id = readU16Order(b, at + 8, le);
        this.packet(b, at, length, fileOffset, id, this.iface(id, fileOffset), out, views);
        return;
      }
      case PCAPNG_BLOCK_IDB:
        minLength(length, 20, 'interface description', fileOffset);
        this.interfaces.push(this.interfaceDescription(b, at, length, fileOffset));
        return;
      case PCAPNG_BLOCK_SHB: {
        minLength(length, 28, 'section header', fileOffset);
        const major = readU16Order(b, at + 12, le);
        if (major !== 1) {
          throw new CaptureFormatError('capture.unsupported_version', fileOffset, `pcapng version ${major}.${readU16Order(b, at + 14, le)} (only 1.x is defined)`);
        }
        walkOptions(b, at + 24, at + length - 4, le, fileOffset - at, () => {});
        this.interfaces = [];
        this.started = true;
        return;
      }
      default:
        return;
    }
  }

  truncated(fileOffset: number, have: number, length: number): CaptureFormatError | undefined {
    return captureTruncated(this, fileOffset, have, length);
  }

  /** EPB and OPB share their layout from offset 12 on: time high, low, captured, original, data, options. */
  private packet(
    b: Uint8Array, at: number, length: number, fileOffset: number,
    interfaceId: number, iface: Interface, out: CapturedFrame[], views: ChunkViews,
  ): void {
    const le = this.le;
    const captured = readU32Order(b, at + 20, le);
    if (captured > length - 32) {
      throw new CaptureFormatError('capture.bad_block_length', fileOffset, `packet of ${captured} captured bytes overruns its ${length}-byte block`);
    }
    this.timed = true;
    this.packetTime(iface, readU32Order(b, at + 12, le), readU32Order(b, at + 16, le));
    const dataAt = at + 28;
    const optionsAt = dataAt + ((captured + 3) & ~3);
    const end = at + length - 4;
    let comment: string | undefined;
    if (optionsAt < end) {
      walkOptions(b, optionsAt, end, le, fileOffset - at, (code, v, n) => {
        if (code === OPT_COMMENT && comment === undefined) comment = utf8Decoder.decode(b.subarray(v, v + n));
      });
    }
    out.push(new CapturedFrame(
      interfaceId, iface.linkType, this.lastSeconds, this.lastNanoseconds, views.of(dataAt, captured),
      readU32Order(b, at + 24, le), comment, fileOffset,
    ));
  }

  /**
   * Sets `lastSeconds`/`lastNanoseconds` from a packet's raw 64-bit timestamp: with plain numbers
   * for decimal units and no offset (every file we write, and the default µs), else with the exact
   * BigInt arithmetic, which cost about half the time of reading a nanosecond pcapng.
   */
  private packetTime(iface: Interface, high: number, low: number): void {
    if (iface.unitsPerSecond !== 0) {
      this.decimalTime(iface.unitsPerSecond, high, low);
      return;
    }
    let t = (BigInt(high) << 32n) | BigInt(low);
    if (iface.mul !== 1n) t *= iface.mul;
    if (iface.div !== 1n) t /= iface.div;
    if (iface.shift !== 0n) t >>= iface.shift;
    if (iface.offsetNs !== 0n) t += iface.offsetNs;
    let seconds = t / 1_000_000_000n;
    if (seconds * 1_000_000_000n > t) seconds -= 1n; // floor, for times before the epoch
    this.lastSeconds = Number(seconds);
    this.lastNanoseconds = Number(t - seconds * 1_000_000_000n);
  }

  /**
   * The timestamp `high * 2^32 + low` in units of 1/`units` s, divided by `units` by long division
   * in base 2^16: each step's dividend is below `units * 2^16` <= 2^46, so every step is exact in a
   * double, and summing the quotient digits rounds once, as `Number` of the exact BigInt quotient
   * does (seconds past 2^53 cannot be exact either way).
   */
  private decimalTime(units: number, high: number, low: number): void {
    let cur = high >>> 16;
    const q3 = Math.floor(cur / units);
    cur = (cur - q3 * units) * 65536 + (high & 0xffff);
    const q2 = Math.floor(cur / units);
    cur = (cur - q2 * units) * 65536 + (low >>> 16);
    const q1 = Math.floor(cur / units);
    cur = (cur - q1 * units) * 65536 + (low & 0xffff);
    const q0 = Math.floor(cur / units);
    this.lastSeconds = ((q3 * 65536 + q2) * 65536 + q1) * 65536 + q0;
    this.lastNanoseconds = (cur - q0 * units) * (1_000_000_000 / units);
  }

  private interfaceDescription(b: Uint8Array, at: number, length: number, fileOffset: number): Interface {
    const le = this.le;
    const iface: Interface = {
      linkType: readU16Order(b, at + 8, le),
      snaplen: readU32Order(b, at + 12, le),
      mul: 1000n,
      div: 1n,
      shift: 0n,
      offsetNs: 0n,
      unitsPerSecond: 0,
    };
    walkOptions(b, at + 16, at + length - 4, le, fileOffset - at, (code, v, n) => {
      if (code === OPT_IF_TSRESOL) {
        if (n !== 1) throw new CaptureFormatError('capture.bad_option', fileOffset - at + v - 4, `if_tsresol of ${n} bytes (must be 1)`);
        const r = b[v]!;
        const exponent = r & 0x7f;
        if (r & 0x80) {
          iface.mul = 1_000_000_000n;
          iface.div = 1n;
          iface.shift = BigInt(exponent);
        } else {
          iface.mul = exponent <= 9 ? 10n ** BigInt(9 - exponent) : 1n;
          iface.div = exponent > 9 ? 10n ** BigInt(exponent - 9) : 1n;
          iface.shift = 0n;
        }
      } else if (code === OPT_IF_TSOFFSET) {
        if (n !== 8) throw new CaptureFormatError('capture.bad_option', fileOffset - at + v - 4, `if_tsoffset of ${n} bytes (must be 8)`);
        const first = BigInt(readU32Order(b, v, le));
        const second = BigInt(readU32Order(b, v + 4, le));
        iface.offsetNs = BigInt.asIntN(64, le ? (second << 32n) | first : (first << 32n) | second) * 1_000_000_000n;
      }
    });
    // Decimal units of 10^-e s for e <= 9 are exactly those with div 1 and no shift.
    if (iface.div === 1n && iface.shift === 0n && iface.offsetNs === 0n) iface.unitsPerSecond = 1_000_000_000 / Number(iface.mul);
    return iface;
  }

  private iface(id: number, fileOffset: number): Interface {
    const iface = this.interfaces[id];
    if (iface === undefined) {
      throw new CaptureFormatError('capture.unknown_interface', fileOffset, `packet names interface ${id}, but its section describes ${this.interfaces.length}`);
    }
    return iface;
  }
}

/** Byte order of the section whose SHB is at `at`: true for little-endian. */
function sectionByteOrder(b: Uint8Array, at: number, fileOffset: number): boolean {
  const m = readU32Order(b, at + 8, true);
  if (m === BYTE_ORDER_MAGIC) return true;
  if (readU32Order(b, at + 8, false) === BYTE_ORDER_MAGIC) return false;
  throw new CaptureFormatError('capture.bad_magic', fileOffset + 8, `pcapng byte-order magic 0x${readU32Order(b, at + 8, false).toString(16)} is neither order of 0x1a2b3c4d`);
}

function minLength(length: number, least: number, what: string, fileOffset: number): void {
  if (length < least) {
    throw new CaptureFormatError('capture.bad_block_length', fileOffset, `${what} block of ${length} bytes is shorter than its fixed part (${least})`);
  }
}

/**
 * Calls `visit(code, valueAt, valueLength)` for each option in `b[from, to)` up to opt_endofopt;
 * `origin` maps array to file offsets. Both ends are 4-aligned, so a value that fits has its
 * padding in range too.
 */
function walkOptions(
  b: Uint8Array, from: number, to: number, le: boolean, origin: number,
  visit: (code: number, valueAt: number, valueLength: number) => void,
): void {
  let p = from;
  while (p < to) {
    const code = readU16Order(b, p, le);
    const n = readU16Order(b, p + 2, le);
    if (code === OPT_ENDOFOPT) return;
    if (p + 4 + n > to) throw new CaptureFormatError('capture.bad_option', origin + p, `option ${code} of ${n} bytes overruns its block`);
    visit(code, p + 4, n);
    p += 4 + ((n + 3) & ~3);
  }
}

/** Options of a section header. */
export interface PcapngSectionOptions {
  /** shb_userappl; default 'colo-proxy'. */
  application?: string;
  /** shb_os. */
  os?: string;
  /** shb_hardware. */
  hardware?: string;
  /** opt_comment of the section. */
  comment?: string;
}

/** Options of an interface description. */
export interface PcapngInterfaceOptions {
  /** Largest captured length of its packets, 0 for no limit; default 262144. */
  snaplen?: number;
  /** if_name. */
  name?: string;
  /** Timestamp unit as a power of ten, 10^-tsresol s, 0..9; default 9 (nanoseconds). */
  tsresol?: number;
}

/** Options of one enhanced packet. */
export interface PcapngPacketOptions {
  /** Length on the wire; default the captured length. */
  originalLength?: number;
  /** opt_comment, UTF-8. */
  comment?: string;
}

/**
 * Encodes a little-endian pcapng stream. Call order: `sectionHeader`, then `interfaceDescription`
 * and `enhancedPacket` in any order, a packet naming only an interface already described in its
 * section; another `sectionHeader` starts a new section with no interfaces.
 */
export class PcapngWriter {
  private interfaces: { snaplen: number; unitsPerNs: bigint }[] = [];
  private started = false;

  /** Interfaces described so far in the current section; the next one gets this id. */
  get interfaceCount(): number {
    return this.interfaces.length;
  }

  /** A Section Header Block of unspecified section length. */
  sectionHeader(options: PcapngSectionOptions = {}): Uint8Array {
    const opts = encodeOptions([
      [OPT_COMMENT, options.comment],
      [OPT_SHB_HARDWARE, options.hardware],
      [OPT_SHB_OS, options.os],
      [OPT_SHB_USERAPPL, options.application ?? 'colo-proxy'],
    ]);
    const block = newBlock(PCAPNG_BLOCK_SHB, 16 + opts.length);
    writeU32LE(block, 8, BYTE_ORDER_MAGIC);
    writeU16LE(block, 12, 1);
    writeU16LE(block, 14, 0);
    block.fill(0xff, 16, 24);
    block.set(opts, 24);
    this.interfaces = [];
    this.started = true;
    return block;
  }

  /** An Interface Description Block; its id is the `interfaceCount` before the call. */
  interfaceDescription(linkType: number, options: PcapngInterfaceOptions = {}): Uint8Array {
    if (!this.started) throw new Error('PcapngWriter: interfaceDescription() before sectionHeader()');
    const snaplen = options.snaplen ?? DEFAULT_SNAPLEN;
    const tsresol = options.tsresol ?? 9;
    checkU32('snaplen', snaplen);
    if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) throw new RangeError(`linkType ${linkType} is not an unsigned 16-bit integer`);
    if (!Number.isInteger(tsresol) || tsresol < 0 || tsresol > 9) throw new RangeError(`tsresol ${tsresol} is not an integer in 0..9`);
    const opts = encodeOptions([
      [OPT_IF_NAME, options.name],
      [OPT_IF_TSRESOL, tsresol === 6 ? undefined : Uint8Array.of(tsresol)],
    ]);
    const block = newBlock(PCAPNG_BLOCK_IDB, 8 + opts.length);
    writeU16LE(block, 8, linkType);
    writeU32LE(block, 12, snaplen);
    block.set(opts, 16);
    this.interfaces.push({ snaplen, unitsPerNs: 10n ** BigInt(9 - tsresol) });
    return block;
  }

  /** An Enhanced Packet Block holding a copy of `data`; `timeNs` must not be negative. */
  enhancedPacket(interfaceId: number, timeNs: bigint, data: Uint8Array, options: PcapngPacketOptions = {}): Uint8Array {
    const iface = this.interfaces[interfaceId];
    if (iface === undefined) throw new RangeError(`PcapngWriter: interface ${interfaceId} is not described in this section`);
    if (iface.snaplen !== 0 && data.length > iface.snaplen) {
      throw new RangeError(`PcapngWriter: ${data.length} bytes exceed the snaplen ${iface.snaplen} of interface ${interfaceId}`);
    }
    const originalLength = options.originalLength ?? data.length;
    checkU32('originalLength', originalLength);
    if (originalLength < data.length) throw new RangeError(`PcapngWriter: originalLength ${originalLength} < captured length ${data.length}`);
    const ts = timeNs / iface.unitsPerNs;
    if (timeNs < 0n || ts > 0xffffffffffffffffn) throw new RangeError(`PcapngWriter: time ${timeNs} ns is outside what 64 bits of its unit hold`);
    const opts = options.comment === undefined ? undefined : encodeOptions([[OPT_COMMENT, options.comment]]);
    const padded = (data.length + 3) & ~3;
    const block = newBlock(PCAPNG_BLOCK_EPB, 20 + padded + (opts?.length ?? 0));
    writeU32LE(block, 8, interfaceId);
    writeU32LE(block, 12, Number(ts >> 32n));
    writeU32LE(block, 16, Number(ts & 0xffffffffn));
    writeU32LE(block, 20, data.length);
    writeU32LE(block, 24, originalLength);
    block.set(data, 28);
    if (opts) block.set(opts, 28 + padded);
    return block;
  }
}

/** A zeroed block with its type and both copies of its total length (12 + `bodyLength`) set. */
function newBlock(type: number, bodyLength: number): Uint8Array {
  const length = 12 + bodyLength;
  const block = new Uint8Array(length);
  writeU32LE(block, 0, type);
  writeU32LE(block, 4, length);
  writeU32LE(block, length - 4, length);
  return block;
}

/** Encodes the options that are set, strings as UTF-8, ending with opt_endofopt; empty if none is set. */
function encodeOptions(options: [code: number, value: string | Uint8Array | undefined][]): Uint8Array {
  const values: [number, Uint8Array][] = [];
  for (const [code, value] of options) {
    if (value === undefined) continue;
    const bytes = typeof value === 'string' ? utf8Encoder.encode(value) : value;
    if (bytes.length > 0xffff) throw new RangeError(`pcapng option ${code} of ${bytes.length} bytes exceeds 65535`);
    values.push([code, bytes]);
  }
  if (values.length === 0) return new Uint8Array(0);
  let size = 4;
  for (const [, bytes] of values) size += 4 + ((bytes.length + 3) & ~3);
  const out = new Uint8Array(size);
  let p = 0;
  for (const [code, bytes] of values) {
    writeU16LE(out, p, code);
    writeU16LE(out, p + 2, bytes.length);
    out.set(bytes, p + 4);
    p += 4 + ((bytes.length + 3) & ~3);
  }
  return out;
}
