/**
 * Cutting an unfragmented IPv4 or IPv6 frame (made with the wire emitters) into IP fragments, for
 * tests: `split(whole, [cuts])` gives the fragment frames, first to last, with lengths, flags,
 * offsets and the IPv4 header checksum set as a real stack would (IPv6 gets a Fragment header).
 */

import assert from 'node:assert/strict';
import { readU16, writeU16, writeU32 } from '../../compare/wire/bytes.js';
import { fillIpv4HeaderChecksum } from '../../compare/wire/checksum.js';
import { Ipv4View } from '../../compare/wire/ipv4.js';
import { Ipv6View } from '../../compare/wire/ipv6.js';
import { decoded } from './decoded.js';

/** Where the parts of an unfragmented frame are, for cutting it. */
export interface Layout {
  ipAt: number;
  v6: boolean;
  /** End of the headers every fragment repeats (IPv6: the unfragmentable part). */
  keep: number;
  /** End of the IP packet. */
  end: number;
  /** IPv6: the next-header field naming the first fragmentable header. */
  nextAt: number;
}

export function layout(whole: Uint8Array, unfragmentable: number): Layout {
  const f = decoded(whole);
  const ipAt = f.networkOffset;
  if (f.network instanceof Ipv4View) {
    return { ipAt, v6: false, keep: f.network.payloadOffset, end: ipAt + f.network.totalLength, nextAt: -1 };
  }
  assert.ok(f.network instanceof Ipv6View);
  const keep = ipAt + 40 + 8 * unfragmentable;
  return { ipAt, v6: true, keep, end: ipAt + 40 + f.network.payloadLength, nextAt: unfragmentable === 0 ? ipAt + 6 : keep - 8 };
}

export interface Cut {
  /** IPv6: how many of the extension headers stay in every fragment. */
  unfragmentable?: number;
  /** IPv6 fragment identification. */
  id?: number;
  /** Pad each fragment frame to this length with 0xee bytes (never payload). */
  padTo?: number;
}

/** One fragment of `whole` carrying `data` at payload offset `offset` (a multiple of 8), More Fragments = `more`. */
export function fragment(whole: Uint8Array, offset: number, data: Uint8Array, more: boolean, c: Cut = {}): Uint8Array {
  const l = layout(whole, c.unfragmentable ?? 0);
  const fragmentHeader = l.v6 ? 8 : 0;
  const length = l.keep + fragmentHeader + data.length;
  const out = new Uint8Array(Math.max(length, c.padTo ?? 0)).fill(0xee);
  out.set(whole.subarray(0, l.keep));
  out.set(data, l.keep + fragmentHeader);
  if (l.v6) {
    out[l.keep] = whole[l.nextAt]!;
    out[l.keep + 1] = 0;
    writeU16(out, l.keep + 2, offset | (more ? 1 : 0));
    writeU32(out, l.keep + 4, c.id ?? 0xdecaf);
    out[l.nextAt] = 44;
    writeU16(out, l.ipAt + 4, length - l.ipAt - 40);
  } else {
    writeU16(out, l.ipAt + 2, length - l.ipAt);
    writeU16(out, l.ipAt + 6, (readU16(whole, l.ipAt + 6) & 0xc000) | (more ? 0x2000 : 0) | (offset / 8));
    fillIpv4HeaderChecksum(out, l.ipAt);
  }
  return out;
}

/** `whole` cut at the ascending payload offsets `cuts` (multiples of 8) into fragments, first to last. */
export function split(whole: Uint8Array, cuts: number[], c: Cut = {}): Uint8Array[] {
  const l = layout(whole, c.unfragmentable ?? 0);
  const bounds = [0, ...cuts, l.end - l.keep];
  return bounds.slice(1).map((to, i) => fragment(whole, bounds[i]!, whole.subarray(l.keep + bounds[i]!, l.keep + to), i < cuts.length, c));
}

