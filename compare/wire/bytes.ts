/**
 * Big-endian field access on a `Uint8Array`, the one representation of a frame in colo-proxy.
 *
 * These helpers do no bounds checking: callers check lengths once, when a view is made, and
 * after that every read is in range (smoltcp's `new_checked` discipline). Reading past the end
 * of the array yields `undefined`-derived garbage (NaN/0), never an exception, so a bug here is
 * a wrong value, not a crash. 32-bit reads return unsigned numbers in [0, 2^32).
 */

/** Reads an unsigned 16-bit big-endian integer at `at`. */
export function readU16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

/** Reads an unsigned 32-bit big-endian integer at `at`. */
export function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Writes the low 16 bits of `v` big-endian at `at`. */
export function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

/** Writes the low 32 bits of `v` big-endian at `at`. */
export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/**
 * A copy of `b[from, to)` in a fresh Uint8Array that nothing else shares. Not `b.slice`: on a
 * Node.js Buffer, `slice` is a view of the same memory, and a front end that reuses its receive
 * buffer (libpcap through cap does, for every frame) would then change what was "copied".
 */
export function copyBytes(b: Uint8Array, from = 0, to = b.length): Uint8Array {
  const out = new Uint8Array(to - from);
  out.set(b.subarray(from, to));
  return out;
}

/** Formats `len` bytes from `at` as lowercase hex with no separators. */
export function toHex(b: Uint8Array, at = 0, len = b.length - at): string {
  let s = '';
  for (let i = at; i < at + len; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

/** Parses hex (whitespace and `:` ignored) into bytes; throws on odd length or a non-hex digit. */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
    throw new TypeError(`fromHex: not an even-length hex string: ${JSON.stringify(hex.slice(0, 40))}`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}
