/**
 * Generates the hand-made golden cases for `colo-proxy replay`: one folder per case under
 * captures/<case>/ holding `primary.pcapng` (the PVM's output), `secondary.pcapng` (the SVM's
 * output), `case.json` (extra replay flags and the expected outcome) and `NOTE.md` (how the case
 * was made, what the sides differ in, what a correct comparator must do and why).
 *
 *   npx tsx scripts/make-golden-captures.ts             # every case
 *   npx tsx scripts/make-golden-captures.ts gso vlan    # just these
 *
 * Deterministic on purpose: fixed timestamps (from 2026-01-01T00:00:00Z), fixed initial sequence
 * numbers, payloads from a PRNG seeded with the case's name, no clock and no Math.random; a
 * rerun rewrites every file byte for byte (check with `git diff --stat captures/`).
 *
 * Conventions shared by all cases: Ethernet frames; the twin guests share one MAC and address
 * (GUEST_MAC / 10.0.0.2, fd00::2 over IPv6) and talk to a client (CLIENT_MAC / 10.0.0.1). The
 * captures hold only what the guests sent (client frames are not in them). Each secondary frame
 * sits near its primary counterpart in time, a little before or after, because replay merges
 * both files by timestamp into one virtual clock. Where a case expects a checkpoint, both guests
 * go quiet for CHECKPOINT_GAP_US afterwards (the VMs are paused while the checkpoint runs, and
 * replay answers a checkpoint request 30 ms later), and the SVM's output after the gap is the
 * PVM's again, since the checkpoint made the SVM a copy of the PVM.
 *
 * The expectations in case.json are what a correct COLO comparator must do (COLO-REFERENCE.md),
 * not whatever the current core happens to do; `released` is always the primary's frame count,
 * since every primary frame leaves exactly once (verified, or flushed at a checkpoint).
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LINKTYPE_ETHERNET, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN,
  emitArp, emitIcmpEcho, emitTcp, emitUdp, fillIpv4HeaderChecksum, readU16, writeU16,
  type MismatchReason, type TcpFields, type TcpOptions, type UdpFields,
} from '../compare/index.js';
import { createCaptureFileWriter } from '../proxy/ports/capture-file.js';
import { concat } from '../test/proxy/framing/support.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CAPTURES = join(ROOT, 'captures');
const SCRIPT = 'scripts/make-golden-captures.ts';

/** 2026-01-01T00:00:00Z in nanoseconds: every case's clock starts here. */
const EPOCH_NS = 1_767_225_600_000_000_000n;
const GUEST_MAC = '52:54:00:12:34:56';
const CLIENT_MAC = '52:54:00:ab:cd:ef';
const GUEST = '10.0.0.2';
const CLIENT = '10.0.0.1';
const GUEST6 = 'fd00::2';
const CLIENT6 = 'fd00::1';
/** Quiet time after a mismatch: longer than replay's default --checkpoint-ms 30. */
const CHECKPOINT_GAP_US = 60_000;
const MSS_PAYLOAD = 1448; // MSS 1460 minus 12 bytes of TCP timestamps

// --- deterministic randomness ------------------------------------------------------------------

/** mulberry32: small, fast, and the same numbers on every platform. */
class Rng {
  private a: number;

  constructor(seed: number) {
    this.a = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

/** FNV-1a of the case name: each case has its own stream, so adding a case changes no other. */
function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** An HTTP response of exactly `length` bytes: fixed headers, then pseudo-random body bytes. */
function httpResponse(rng: Rng, length: number): Uint8Array {
  const head = ascii(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${String(length).padStart(6, '0')}\r\n\r\n`);
  return concat(head, rng.bytes(length - head.length)).subarray(0, length);
}

// --- the timeline of one case ------------------------------------------------------------------

interface Stamped {
  /** Microseconds since EPOCH_NS. */
  us: number;
  data: Uint8Array;
  comment: string;
}

/** Frames of both sides with their times; `finish` orders them and removes ties. */
class Timeline {
  readonly primary: Stamped[] = [];
  readonly secondary: Stamped[] = [];
  /** The current time, microseconds since EPOCH_NS. */
  t = 1000;

  constructor(readonly rng: Rng) {}

  wait(us: number): void {
    this.t += us;
  }

  /** A primary frame at the current time plus `dt`. */
  p(data: Uint8Array, comment: string, dt = 0): void {
    this.primary.push({ us: this.t + dt, data, comment });
  }

  /** A secondary frame at the current time plus `dt`. */
  s(data: Uint8Array, comment: string, dt = 0): void {
    this.secondary.push({ us: this.t + dt, data, comment });
  }

  /** A small offset for a secondary frame: 20..120 us before or after. */
  jitter(): number {
    const m = this.rng.int(20, 120);
    return this.rng.next() < 0.5 ? -m : m;
  }

  /**
   * Steps 200..400 us on, puts the primary frame there and the secondary frame near it. The
   * comment is both frames', or [primary's, secondary's].
   */
  pair(pf: Uint8Array | null, sf: Uint8Array | null, comment: string | [string, string], step = this.rng.int(200, 400)): void {
    this.t += step;
    const [pc, sc] = typeof comment === 'string' ? [comment, comment] : comment;
    if (pf !== null) this.p(pf, pc);
    if (sf !== null) this.s(sf, sc, this.jitter());
  }

  /** The same frame from both guests. */
  both(frame: Uint8Array, comment: string, step?: number): void {
    this.pair(frame, frame, comment, step);
  }

  /** Each side sorted by time (stable), strictly increasing, and no time shared across sides. */
  finish(): { primary: Stamped[]; secondary: Stamped[] } {
    const order = (list: Stamped[]): Stamped[] => {
      const sorted = list.map((f, i) => ({ f, i })).sort((a, b) => a.f.us - b.f.us || a.i - b.i).map((x) => x.f);
      for (let i = 1; i < sorted.length; i++) if (sorted[i]!.us <= sorted[i - 1]!.us) sorted[i]!.us = sorted[i - 1]!.us + 1;
      return sorted;
    };
    const primary = order(this.primary);
    const taken = new Set(primary.map((f) => f.us));
    const secondary = order(this.secondary);
    let last = -Infinity;
    for (const f of secondary) {
      if (f.us <= last) f.us = last + 1;
      while (taken.has(f.us)) f.us++;
      last = f.us;
    }
    return { primary, secondary };
  }
}

// --- frame builders ----------------------------------------------------------------------------

interface TcpConnOptions {
  guest?: string;
  client?: string;
  guestPort?: number;
  clientPort?: number;
  /** The guest's initial sequence number. */
  isn: number;
  /** The client's initial sequence number. */
  clientIsn: number;
  /** Bytes the client sent before the guest's output (a request); default 100. */
  request?: number;
  vlan?: number[];
  mss?: number;
  windowScale?: number;
  /** TCP timestamps on every segment; default true. */
  timestamps?: boolean;
  /** The guest's TSval at stream offset 0; it ticks once per 4 KiB of output. */
  tsBase?: number;
  /** The client's TSval (echoed as TSecr); default 700000. */
  clientTs?: number;
  ttl?: number;
  tos?: number;
  /** Window field of data segments; default 502 (scaled). */
  window?: number;
  /** IPv4 identification base; a frame's ID is this plus its stream offset / 1024 (so twins agree); default 0x4000. */
  ipId?: number;
}

/**
 * One guest's side of one TCP connection. Sequence numbers are stream offsets from the guest's
 * first data byte (offset 0 = ISN + 1); `ackNo` is the client data acknowledged so far.
 */
class TcpConn {
  readonly o: Required<Omit<TcpConnOptions, 'vlan'>> & Pick<TcpConnOptions, 'vlan'>;
  ackNo: number;

  constructor(options: TcpConnOptions) {
    const v6 = (options.guest ?? GUEST).includes(':');
    this.o = {
      guest: GUEST, client: CLIENT, guestPort: 80, clientPort: 40000, request: 100,
      mss: v6 ? 1440 : 1460, windowScale: 7, timestamps: true, tsBase: 1_000_000, clientTs: 700_000,
      ttl: 64, tos: 0, window: 502, ipId: 0x4000, ...options,
    };
    this.ackNo = (this.o.clientIsn + 1 + this.o.request) >>> 0;
  }

  /** A copy with other options (the twin guest), acknowledging the same client data. */
  twin(changes: Partial<TcpConnOptions>): TcpConn {
    const t = new TcpConn({ ...this.o, ...changes });
    t.ackNo = this.ackNo;
    return t;
  }

  seq(off: number): number {
    return (this.o.isn + 1 + off) >>> 0;
  }

  /** The client acknowledged as having sent `n` more bytes (or a FIN, n = 1). */
  clientSent(n: number): void {
    this.ackNo = (this.ackNo + n) >>> 0;
  }

  /** Fields of a segment at stream offset `off` (-1: the SYN or SYN-ACK). */
  private fields(off: number, ack: number, flags: number, options: TcpOptions | undefined, payload: Uint8Array, over: Partial<TcpFields>): TcpFields {
    const f: TcpFields = {
      src: this.o.guest, dst: this.o.client, srcMac: GUEST_MAC, dstMac: CLIENT_MAC,
      srcPort: this.o.guestPort, dstPort: this.o.clientPort, seq: off < 0 ? this.o.isn : this.seq(off), ack, flags,
      window: this.o.window, ttl: this.o.ttl, tos: this.o.tos, payload, ...over,
    };
    if (options !== undefined) f.options = options;
    if (!this.o.guest.includes(':')) f.ipId = over.ipId ?? ((this.o.ipId + 1 + Math.floor(off / 1024)) & 0xffff);
    if (this.o.vlan !== undefined) f.vlan = this.o.vlan;
    return f;
  }

  private ts(off: number): TcpOptions | undefined {
    if (!this.o.timestamps) return undefined;
    return { timestamp: [(this.o.tsBase + Math.floor(off / 4096)) >>> 0, (this.o.clientTs + Math.floor(off / 8192)) >>> 0] };
  }

  synAck(over: Partial<TcpFields> = {}): Uint8Array {
    const options: TcpOptions = { mss: this.o.mss, sackPermitted: true, windowScale: this.o.windowScale };
    if (this.o.timestamps) options.timestamp = [this.o.tsBase >>> 0, this.o.clientTs];
    return emitTcp(this.fields(-1, (this.o.clientIsn + 1) >>> 0, TCP_SYN | TCP_ACK, options, new Uint8Array(0), { window: 65160, ...over }));
  }

  /** The guest's SYN of an active open (it connects out). */
  syn(over: Partial<TcpFields> = {}): Uint8Array {
    const options: TcpOptions = { mss: this.o.mss, sackPermitted: true, windowScale: this.o.windowScale };
    if (this.o.timestamps) options.timestamp = [this.o.tsBase >>> 0, 0];
    return emitTcp(this.fields(-1, 0, TCP_SYN, options, new Uint8Array(0), { window: 64240, ...over }));
  }

  /** A data segment carrying `payload` at stream offset `off`. */
  data(off: number, payload: Uint8Array, over: Partial<TcpFields> = {}): Uint8Array {
    return emitTcp(this.fields(off, this.ackNo, TCP_ACK, this.ts(off), payload, over));
  }

  /** A bare FIN at stream offset `off` (the end of the data). */
  fin(off: number, over: Partial<TcpFields> = {}): Uint8Array {
    return emitTcp(this.fields(off, this.ackNo, TCP_FIN | TCP_ACK, this.ts(off), new Uint8Array(0), over));
  }

  /** A pure ACK; `off` is the guest's next sequence offset (one past its FIN once it sent one). */
  ack(off: number, over: Partial<TcpFields> = {}): Uint8Array {
    return emitTcp(this.fields(off, this.ackNo, TCP_ACK, this.ts(off), new Uint8Array(0), over));
  }

  /** An RST|ACK at stream offset `off` (no timestamps, as Linux sends it). */
  rst(off: number, over: Partial<TcpFields> = {}): Uint8Array {
    return emitTcp(this.fields(off, this.ackNo, TCP_RST | TCP_ACK, undefined, new Uint8Array(0), { window: 0, ...over }));
  }

  /**
   * The segments of `stream[from, to)` cut at `cuts` (absolute offsets), PSH on the last one and,
   * with `fin`, FIN on it too. Returns [frame, comment] pairs.
   */
  segments(stream: Uint8Array, bounds: number[], options: { fin?: boolean; label?: string } = {}): [Uint8Array, string][] {
    const out: [Uint8Array, string][] = [];
    for (let i = 1; i < bounds.length; i++) {
      const a = bounds[i - 1]!;
      const b = bounds[i]!;
      const last = i === bounds.length - 1;
      const flags = TCP_ACK | (last ? TCP_PSH : 0) | (last && options.fin === true ? TCP_FIN : 0);
      out.push([this.data(a, stream.subarray(a, b), { flags }), `${options.label ?? 'data'} [${a}, ${b})${last && options.fin === true ? ' + FIN' : ''}`]);
    }
    return out;
  }
}

/** Offsets from `from` to `to` in steps of `size` (the last step shorter). */
function evenBounds(from: number, to: number, size: number): number[] {
  const b = [from];
  for (let at = from + size; at < to; at += size) b.push(at);
  b.push(to);
  return b;
}

/** Offsets from `from` to `to` in random steps of `min..max`. */
function randomBounds(rng: Rng, from: number, to: number, min: number, max: number): number[] {
  const b = [from];
  for (let at = from + rng.int(min, max); at < to; at += rng.int(min, max)) b.push(at);
  b.push(to);
  return b;
}

/** A DNS response (RFC 1035 §4.1) with one question and one A record answering it. */
/** A DNS message header and the question for `name` (type A, class IN). */
function dnsHead(id: number, flags: number, answers: number, name: string): Uint8Array {
  const header = new Uint8Array(12);
  writeU16(header, 0, id);
  writeU16(header, 2, flags);
  writeU16(header, 4, 1);
  writeU16(header, 6, answers);
  const labels = concat(...name.split('.').map((l) => concat(Uint8Array.of(l.length), ascii(l))), Uint8Array.of(0));
  return concat(header, labels, Uint8Array.of(0, 1, 0, 1));
}

function dnsAnswer(id: number, name: string, address: number[], ttl: number): Uint8Array {
  // A response, recursion desired and available, no error.
  const answer = Uint8Array.of(0xc0, 12, 0, 1, 0, 1, ttl >>> 24, (ttl >>> 16) & 0xff, (ttl >>> 8) & 0xff, ttl & 0xff, 0, 4, ...address);
  return concat(dnsHead(id, 0x8180, 1, name), answer);
}

/** A standard query for `name`, recursion desired. */
function dnsQuery(id: number, name: string): Uint8Array {
  return dnsHead(id, 0x0100, 0, name);
}

/** Base fields of a UDP datagram from the guest. */
function udpFrom(srcPort: number, dstPort: number, payload: Uint8Array, over: Partial<UdpFields> = {}): Uint8Array {
  return emitUdp({ src: GUEST, dst: CLIENT, srcMac: GUEST_MAC, dstMac: CLIENT_MAC, srcPort, dstPort, payload, ...over });
}

/** `frame` lengthened to `to` bytes with the given padding bytes (never payload: IP lengths exclude them). */
function padWith(frame: Uint8Array, to: number, fill: Uint8Array): Uint8Array {
  if (frame.length >= to) return frame;
  const out = new Uint8Array(to);
  out.set(frame);
  out.set(fill.subarray(0, to - frame.length), frame.length);
  return out;
}

/**
 * An unfragmented Ethernet/IPv4 frame cut into IP fragments at the IP payload offsets `cuts`
 * (multiples of 8), first to last, lengths, flags, offsets and header checksums as a stack sets them.
 */
function ipv4Fragments(whole: Uint8Array, cuts: number[]): Uint8Array[] {
  const ipAt = 14;
  const ihl = (whole[ipAt]! & 0x0f) * 4;
  const total = readU16(whole, ipAt + 2);
  const payload = whole.subarray(ipAt + ihl, ipAt + total);
  const bounds = [0, ...cuts, payload.length];
  return bounds.slice(1).map((end, i) => {
    const start = bounds[i]!;
    if (start % 8 !== 0) throw new Error(`fragment offset ${start} is not a multiple of 8`);
    const more = i < cuts.length;
    const out = new Uint8Array(ipAt + ihl + end - start);
    out.set(whole.subarray(0, ipAt + ihl));
    out.set(payload.subarray(start, end), ipAt + ihl);
    writeU16(out, ipAt + 2, ihl + end - start);
    writeU16(out, ipAt + 6, (more ? 0x2000 : 0) | (start / 8));
    fillIpv4HeaderChecksum(out, ipAt);
    return out;
  });
}

// --- cases ---------------------------------------------------------------------------------------

type Checkpoints = Partial<Record<MismatchReason, number>>;

interface Case {
  name: string;
  /** The function that built it (named in NOTE.md). */
  fn: string;
  summary: string;
  args: string[];
  checkpoints: Checkpoints;
  /** NOTE.md sections, Markdown. */
  made: string;
  differs: string;
  correct: string;
  timeline: Timeline;
}

type CaseMaker = (rng: Rng) => Omit<Case, 'name' | 'fn'>;

/** A passive open with the usual shape: SYN-ACK, then the response to a 100-byte request. */
function handshake(tl: Timeline, p: TcpConn, s: TcpConn = p): void {
  tl.pair(p.synAck(), s.synAck(), 'SYN-ACK');
  tl.wait(800); // the client's ACK and request travel
}

/** The teardown after the guest's FIN: the client's FIN arrives and both guests acknowledge it. */
function closeAck(tl: Timeline, p: TcpConn, s: TcpConn, end: number, step = 1500): void {
  p.clientSent(1);
  if (s !== p) s.clientSent(1);
  tl.pair(p.ack(end + 1), s.ack(end + 1), 'ACK of the client\'s FIN', step);
}

/** Sends the same segment list from both guests, paired one to one. */
function pairSegments(tl: Timeline, p: [Uint8Array, string][], s: [Uint8Array, string][]): void {
  if (p.length !== s.length) throw new Error('pairSegments: different counts');
  for (let i = 0; i < p.length; i++) tl.pair(p[i]![0], s[i]![0], p[i]![1]);
}

const cases: Record<string, { fn: string; make: CaseMaker }> = {};
function define(name: string, make: CaseMaker): void {
  cases[name] = { fn: make.name, make };
}

define('identical', function caseIdentical(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x1a2b3c4d, clientIsn: 0x5e6f7081, request: 120 });
  const body = httpResponse(rng, 9000);
  handshake(tl, c);
  const segs = c.segments(body, evenBounds(0, 9000, MSS_PAYLOAD));
  pairSegments(tl, segs, segs);
  tl.both(c.fin(9000), 'FIN');
  closeAck(tl, c, c, 9000);
  return {
    summary: 'one TCP connection sent byte for byte the same by both guests: SYN-ACK, 9000 bytes in MSS segments, FIN, ACK',
    args: [],
    checkpoints: {},
    made: 'The guest (10.0.0.2:80) accepts a connection from 10.0.0.1:40000, answers a 120-byte request with a 9000-byte HTTP response (fixed headers, seeded random body) in six 1448-byte segments and one of 312, sends a bare FIN, and acknowledges the client\'s FIN. Both captures hold the very same frames (same ISN, timestamps, IP IDs), each secondary frame 20-120 us before or after its primary twin.',
    differs: 'Nothing but the capture times.',
    correct: 'Release every primary frame once the secondary has sent the same bytes (and the same FIN, and acknowledged as much of the client\'s data), never ask for a checkpoint. This is the baseline: anything else here is a false mismatch.',
    timeline: tl,
  };
});

define('resegmented', function caseResegmented(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x0badcafe, clientIsn: 0x31415926 });
  const total = 2896 + 2896 + 1448 + 1448 + 20000;
  const body = httpResponse(rng, total);
  handshake(tl, c);
  // Each side's segments are placed by stream offset, so the bytes of one side come out near the
  // same bytes of the other whatever the cuts.
  const pBounds = [0, 2896, 4344, 5792, 7240, 7964, 8688, ...randomBounds(rng, 8688, total, 1, 1448).slice(1)];
  const sBounds = [0, 1448, 2896, 5792, 6516, 7240, 8688, ...randomBounds(rng, 8688, total, 1, 1448).slice(1)];
  const start = tl.t;
  const place = (bounds: number[], side: 'p' | 's', fin: boolean): void => {
    const segs = c.segments(body, bounds, { fin });
    segs.forEach(([frame, comment], i) => {
      const us = start + Math.floor(bounds[i]! / 5) + 30 * i + (side === 's' ? tl.jitter() : 0);
      (side === 'p' ? tl.primary : tl.secondary).push({ us, data: frame, comment });
    });
  };
  place(pBounds, 'p', true);
  place(sBounds, 's', false);
  tl.t = start + Math.floor(total / 5) + 30 * Math.max(pBounds.length, sBounds.length);
  tl.s(c.fin(total), 'bare FIN', 150);
  tl.wait(400);
  closeAck(tl, c, c, total);
  return {
    summary: 'the same bytes cut differently: 1x2896 vs 2x1448 and the reverse, 1x1448 vs 2x724 and the reverse, then 20000 bytes cut at random on each side; FIN on the last data segment vs a bare FIN',
    args: [],
    checkpoints: {},
    made: `One connection (10.0.0.2:80 <> 10.0.0.1:40000) sends ${total} bytes. Primary cuts: [0, 2896) in one segment, then 2x1448, 1x1448, 2x724, then 20000 bytes at random lengths 1..1448. Secondary cuts: 2x1448, 1x2896, 2x724, 1x1448, then the same 20000 bytes at its own, independent random lengths. The primary sets FIN on its last data segment; the secondary sends its last data segment and then a bare FIN at the same sequence number. Frames are timed by stream offset (about 5 bytes per microsecond), so each side's bytes pass near the other's.`,
    differs: 'Only where the byte stream is cut into segments, and whether the FIN rides on the last data segment or comes alone. Every byte, and the point of the FIN, are the same.',
    correct: 'Compare by sequence range, not segment by segment: release each primary segment once the secondary has sent all the bytes it covers, however cut; compare the FIN as one unit at the end of the stream. No checkpoint (COLO-REFERENCE §5, §9: "1x1448 vs 2x724 and the reverse").',
    timeline: tl,
  };
});

define('gso', function caseGso(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x600dd00d, clientIsn: 0x2718281a });
  const half = 45 * MSS_PAYLOAD; // 65160 bytes: the largest multiple of the MSS in one IPv4 packet
  const total = 2 * half + 1000;
  const body = httpResponse(rng, total);
  handshake(tl, c);
  // First half: the PVM hands one 64 KB GSO frame to its tap, the SVM 45 MSS segments.
  tl.t += 300;
  const gsoAt = tl.t;
  tl.p(c.data(0, body.subarray(0, half), { flags: TCP_ACK | TCP_PSH }), `GSO frame [0, ${half})`);
  evenBounds(0, half, MSS_PAYLOAD).slice(1).forEach((end, i) => {
    tl.s(c.data(end - MSS_PAYLOAD, body.subarray(end - MSS_PAYLOAD, end), { flags: TCP_ACK | (end === half ? TCP_PSH : 0) }), `MSS segment [${end - MSS_PAYLOAD}, ${end})`, -400 + 25 * i + rng.int(0, 10));
  });
  // Second half: the other way round.
  tl.t = gsoAt + 2000;
  const second = evenBounds(half, 2 * half, MSS_PAYLOAD);
  second.slice(1).forEach((end, i) => {
    tl.p(c.data(end - MSS_PAYLOAD, body.subarray(end - MSS_PAYLOAD, end), { flags: TCP_ACK | (end === 2 * half ? TCP_PSH : 0) }), `MSS segment [${end - MSS_PAYLOAD}, ${end})`, 25 * i + rng.int(0, 10));
  });
  tl.s(c.data(half, body.subarray(half, 2 * half), { flags: TCP_ACK | TCP_PSH }), `GSO frame [${half}, ${2 * half})`, 700);
  tl.t += 45 * 25 + 200;
  const tail = c.segments(body, [2 * half, total], { fin: true, label: 'tail' });
  tl.both(tail[0]![0], tail[0]![1]);
  closeAck(tl, c, c, total);
  return {
    summary: 'a 64 KB GSO frame on one side against 45 MSS segments on the other, both ways round',
    args: [],
    checkpoints: {},
    made: `One connection sends ${total} bytes. Bytes [0, ${half}) leave the PVM as one GSO/TSO frame (IPv4 total length ${20 + 32 + half}, frame ${14 + 20 + 32 + half} bytes) and the SVM as 45 segments of 1448, spread from 0.4 ms before to 0.7 ms after the PVM's frame. Bytes [${half}, ${2 * half}) come the other way round: 45 MSS segments from the PVM, one GSO frame from the SVM in the middle of them. The last 1000 bytes with FIN, and the ACK of the client's FIN, are identical.`,
    differs: 'Segmentation only: a guest with offloads on hands its tap frames of up to 64 KB, the other cuts at the MSS (COLO-REFERENCE §9: "64 KB GSO frame vs MSS segments").',
    correct: 'Hold the 64 KB primary frame until all 45 secondary segments have matched it, then release it; release each primary MSS segment as soon as the secondary\'s GSO frame covers it. No checkpoint, and no queue limit reached (45 frames).',
    timeline: tl,
  };
});

define('retransmitted', function caseRetransmitted(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x13572468, clientIsn: 0x24681357 });
  const total = 10 * MSS_PAYLOAD;
  const body = httpResponse(rng, total);
  const seg = (a: number, b: number, flags = TCP_ACK): Uint8Array => c.data(a, body.subarray(a, b), { flags });
  const m = MSS_PAYLOAD;
  handshake(tl, c);
  for (let i = 0; i < 3; i++) tl.both(seg(i * m, (i + 1) * m), `data [${i * m}, ${(i + 1) * m})`);
  // verified = 4344
  tl.pair(seg(0, m), null, `retransmission of verified [0, ${m})`);
  tl.pair(null, seg(m, 2 * m), `retransmission of verified [${m}, ${2 * m})`);
  tl.pair(seg(3 * m, 4 * m), seg(3620, 5068), [`data [${3 * m}, ${4 * m})`, `re-cut retransmission [3620, 5068) straddling the verified point ${3 * m}`]);
  tl.pair(null, seg(5068, 4 * m), `data [5068, ${4 * m})`);
  // verified = 7240 once the secondary's [5792, 6516) and the primary's [5792, 7240) are in: 6516
  tl.pair(seg(4 * m, 5 * m), seg(4 * m, 6516), [`data [${4 * m}, ${5 * m})`, `data [${4 * m}, 6516)`]);
  tl.pair(seg(6000, 6 * m), null, `re-cut retransmission [6000, ${6 * m}) straddling the verified point 6516, with new bytes`);
  tl.pair(null, seg(6516, 6 * m), `data [6516, ${6 * m})`);
  tl.pair(seg(6 * m, 7 * m), seg(6 * m, 7 * m), `data [${6 * m}, ${7 * m})`);
  tl.pair(null, seg(6 * m, 7 * m), `duplicate of verified [${6 * m}, ${7 * m})`);
  tl.pair(seg(7 * m, 8 * m), null, `data [${7 * m}, ${8 * m})`);
  tl.pair(seg(7 * m, 8 * m), null, `retransmission of unverified [${7 * m}, ${8 * m})`);
  tl.pair(null, seg(7 * m, 8 * m), `data [${7 * m}, ${8 * m})`);
  tl.both(seg(8 * m, 9 * m), `data [${8 * m}, ${9 * m})`);
  tl.both(seg(9 * m, total, TCP_ACK | TCP_PSH | TCP_FIN), `data [${9 * m}, ${total}) + FIN`);
  tl.pair(seg(9 * m, total, TCP_ACK | TCP_PSH | TCP_FIN), null, 'retransmission of the verified last segment and FIN');
  closeAck(tl, c, c, total);
  return {
    summary: 'retransmissions of verified bytes on both sides, re-cut retransmissions straddling the verified point on both sides, a duplicate of unverified primary bytes',
    args: [],
    checkpoints: {},
    made: `One connection, ${total} bytes in 1448-byte segments, then FIN. After three segments match (verified point 4344): the PVM retransmits [0, 1448) and the SVM [1448, 2896) (both already verified). The SVM then sends [3620, 5068), re-cut across the verified point 4344 (Linux retransmits with new boundaries after a partial ACK), and [5068, 5792). Later the PVM sends [5792, 7240) but the SVM only [5792, 6516) (verified point 6516); the PVM then retransmits [6000, 8688), straddling that point while carrying the new bytes [7240, 8688), and the SVM sends [6516, 8688). The SVM repeats verified [8688, 10136); the PVM sends [10136, 11584) twice before the SVM sends it once. Finally the PVM retransmits its last segment with FIN after it was verified.`,
    differs: 'Which ranges are sent more than once and where the retransmissions are cut. The bytes at every sequence number are the same on both sides.',
    correct: 'A retransmission below the verified point is released at once (primary) or ignored (secondary); one straddling it is compared from the verified point on; a primary duplicate of bytes not yet verified waits with the first copy. No checkpoint. QEMU\'s colo-compare gives a false mismatch on the straddling ones (COLO-REFERENCE §5, weakness 1).',
    timeline: tl,
  };
});

define('reordered', function caseReordered(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x7eadbeef, clientIsn: 0x0000a000 });
  const m = MSS_PAYLOAD;
  const total = 10 * m;
  const body = httpResponse(rng, total);
  handshake(tl, c);
  const unit = (k: number | 'fin'): [Uint8Array, string] => (k === 'fin'
    ? [c.fin(total), 'bare FIN']
    : [c.data(k * m, body.subarray(k * m, (k + 1) * m), { flags: TCP_ACK | (k === 9 ? TCP_PSH : 0) }), `data [${k * m}, ${(k + 1) * m}) (segment ${k})`]);
  const pOrder: (number | 'fin')[] = [0, 2, 1, 3, 5, 4, 6, 8, 7, 'fin', 9];
  const sOrder: (number | 'fin')[] = [1, 0, 3, 2, 4, 7, 5, 6, 9, 8, 'fin'];
  for (let i = 0; i < pOrder.length; i++) {
    const [pf, pc] = unit(pOrder[i]!);
    const [sf, sc] = unit(sOrder[i]!);
    tl.pair(pf, sf, [pc, sc]);
  }
  closeAck(tl, c, c, total);
  return {
    summary: 'out-of-order segments on both sides, in different orders, the primary\'s FIN overtaking its last data segment',
    args: [],
    checkpoints: {},
    made: `One connection, ten 1448-byte segments and a bare FIN. The PVM's frames leave in the order 0 2 1 3 5 4 6 8 7 FIN 9; the SVM's in the order 1 0 3 2 4 7 5 6 9 8 FIN (multi-queue NICs and retransmissions reorder). The i-th frame of each side sits near the other's i-th frame in time.`,
    differs: 'Only the order in which segments (and the FIN) leave each guest.',
    correct: 'Reassemble each side by sequence number and compare the streams; hold a primary segment that arrives ahead of a gap until the bytes before it are verified, and release primary frames in the primary\'s own order. The FIN before segment 9 is not data past a FIN: it is at offset 14480, the end of segment 9. No checkpoint.',
    timeline: tl,
  };
});

define('wraparound', function caseWraparound(rng) {
  const tl = new Timeline(rng);
  const isn = 0xfffff000;
  const clientIsn = 0xffffff80;
  const c = new TcpConn({ isn, clientIsn, request: 200, tsBase: 0xfffffffe, clientTs: 0xffffff00 });
  const dataAck = c.ackNo;
  const m = MSS_PAYLOAD;
  const total = 12 * m;
  const body = httpResponse(rng, total);
  handshake(tl, c);
  const wrapAt = 0x100000000 - (isn + 1); // stream offset whose sequence number is 0
  const pBounds = evenBounds(0, total, m);
  const sBounds = [0, m, 4000, wrapAt - 3, wrapAt + 5, 6000, ...evenBounds(6000, total, m).slice(1)];
  const pSegs = c.segments(body, pBounds, { fin: true });
  const sSegs = c.segments(body, sBounds, { fin: true });
  const n = Math.max(pSegs.length, sSegs.length);
  for (let i = 0; i < n; i++) tl.pair(pSegs[i]?.[0] ?? null, sSegs[i]?.[0] ?? null, [pSegs[i]?.[1] ?? '', sSegs[i]?.[1] ?? '']);
  closeAck(tl, c, c, total);
  return {
    summary: 'sequence numbers (and the client\'s, so ACK numbers, and timestamps) wrap past 2^32 mid-stream, with the sides cut differently around the wrap',
    args: [],
    checkpoints: {},
    made: `The guest's ISN is 0x${isn.toString(16)}, so its stream offset ${wrapAt} has sequence number 0; the client's ISN 0x${clientIsn.toString(16)} and a 200-byte request put the guest's ACK number at 0x${dataAck.toString(16)} (the SYN-ACK acknowledges 0x${((clientIsn + 1) >>> 0).toString(16)}); TSval starts at 0xfffffffe, so it wraps too. The PVM sends ${total} bytes in 1448-byte segments with FIN on the last; the SVM cuts [1448, 4000), [4000, ${wrapAt - 3}), [${wrapAt - 3}, ${wrapAt + 5}) (a segment straddling sequence number 0) and so on.`,
    differs: 'Segmentation around the wrap point only.',
    correct: `Sequence and ACK arithmetic modulo 2^32 (RFC 9293 §3.4): the segment after 0xffffffff is not "before" the ones that preceded it, and an ACK of 0x${dataAck.toString(16)} is above 0x${((clientIsn + 1) >>> 0).toString(16)}. No checkpoint.`,
    timeline: tl,
  };
});

define('padding', function casePadding(rng) {
  const tl = new Timeline(rng);
  // An interactive connection without timestamps: 54-byte headers, so short segments are padded.
  const c = new TcpConn({ isn: 0x00c0ffee, clientIsn: 0x77665544, guestPort: 23, clientPort: 40023, request: 0, timestamps: false });
  const garbage = (): Uint8Array => rng.bytes(16);
  const zero = new Uint8Array(16);
  tl.both(c.synAck(), 'SYN-ACK (66 bytes with its options: no padding)');
  tl.wait(800);
  let off = 0;
  const keys = ['l', 'o', 'g', 'i', 'n', ': ', '\r\n', '$ ', 'ok\r\n'];
  keys.forEach((k, i) => {
    c.clientSent(1); // a keystroke arrived; the guest echoes it
    const frame = c.data(off, ascii(k), { flags: TCP_ACK | TCP_PSH });
    const sf = i % 3 === 0 ? frame : padWith(frame, 60, i % 3 === 1 ? garbage() : new Uint8Array(16).fill(0xee));
    const what = `echo ${JSON.stringify(k)} (${frame.length} bytes)`;
    tl.pair(padWith(frame, 60, zero), sf, [`${what}, zero padding`, `${what}, ${['no', 'random', '0xee'][i % 3]} padding`], 1200);
    off += k.length;
  });
  c.clientSent(3);
  const pureAck = c.ack(off);
  tl.pair(padWith(pureAck, 60, zero), padWith(pureAck, 60, garbage()), ['pure ACK (54 bytes), zero padding', 'pure ACK (54 bytes), random padding']);
  // Small UDP datagrams and an ARP reply, padded differently.
  const dgram = (i: number): Uint8Array => udpFrom(7, 40007, ascii(`ok${i}`));
  for (let i = 0; i < 3; i++) tl.pair(padWith(dgram(i), 60, zero), i === 1 ? dgram(i) : padWith(dgram(i), 60, garbage()), `UDP echo datagram ${i} (45 bytes before padding)`);
  const arp = emitArp({ operation: 2, srcMac: GUEST_MAC, dstMac: CLIENT_MAC, senderIp: GUEST, targetMac: CLIENT_MAC, targetIp: CLIENT });
  tl.pair(padWith(arp, 60, zero), arp, ['ARP reply (42 bytes), zero padding', 'ARP reply (42 bytes), no padding']);
  const ping = emitIcmpEcho({ src: GUEST, dst: CLIENT, srcMac: GUEST_MAC, dstMac: CLIENT_MAC, id: 7, sequence: 1, reply: true });
  tl.pair(padWith(ping, 60, zero), padWith(ping, 60, garbage()), 'ICMP echo reply without data (42 bytes)');
  tl.pair(padWith(c.fin(off), 60, zero), padWith(c.fin(off), 60, garbage()), 'bare FIN (54 bytes)', 2000);
  c.clientSent(1);
  tl.pair(padWith(c.ack(off + 1), 60, zero), c.ack(off + 1), 'ACK of the client\'s FIN (54 bytes)');
  return {
    summary: 'short frames padded to 60 bytes differently on each side (zeros, garbage, none): TCP echoes, pure ACKs, FIN, UDP, ARP, ICMP',
    args: [],
    checkpoints: {},
    made: 'A telnet-like connection (10.0.0.2:23 <> 10.0.0.1:40023) without TCP timestamps, so its headers are 54 bytes: the guest echoes keystrokes of 1-4 bytes, sends a pure ACK, a bare FIN and the ACK of the client\'s FIN. Then three 3-byte UDP datagrams (from the echo port 7), an ARP reply (42 bytes) and an ICMP echo reply with no data (42 bytes). The PVM pads every frame under 60 bytes with zeros up to 60, as a NIC or virtio backend does; the SVM leaves some unpadded, pads some with 0xee and some with random bytes (real NICs leak old buffer contents into padding).',
    differs: 'Only the bytes after the end of the IP packet (or of the ARP payload). IP total length, UDP length and the ARP fields are the same on both sides.',
    correct: 'Take payload lengths from the IP header (ARP: from its fixed layout), never from the frame length, so padding is never payload. No checkpoint. QEMU\'s colo-compare counts padding as data (COLO-REFERENCE §5, weakness 2).',
    timeline: tl,
  };
});

define('header-noise', function caseHeaderNoise(rng) {
  const tl = new Timeline(rng);
  const p = new TcpConn({ isn: 0x2468ace0, clientIsn: 0x13579bdf, ipId: 0x3a00, ttl: 64, window: 502, tsBase: 1_000_000 });
  const s = p.twin({ ipId: 0x91c0, ttl: 63, window: 509, tsBase: 3_200_000_000, tos: 0x10 });
  const total = 6 * MSS_PAYLOAD + 500;
  const body = httpResponse(rng, total);
  handshake(tl, p, s);
  const bounds = evenBounds(0, total, MSS_PAYLOAD);
  pairSegments(tl, p.segments(body, bounds), s.segments(body, bounds));
  tl.pair(p.fin(total), s.fin(total, { window: 520 }), 'FIN');
  closeAck(tl, p, s, total);
  for (let i = 0; i < 3; i++) {
    const payload = rng.bytes(48);
    tl.pair(udpFrom(123, 40123, payload, { ipId: 0x3a40 + i, ttl: 64 }), udpFrom(123, 40123, payload, { ipId: 0x91f0 + 7 * i, ttl: 63, tos: 0x10 }), `UDP datagram ${i} (NTP-sized)`);
  }
  return {
    summary: 'IP ID, TTL, TOS, TCP window and TCP timestamps (TSval) differ on every frame; payloads identical',
    args: [],
    checkpoints: {},
    made: `One TCP connection (SYN-ACK, ${total} bytes, FIN, ACK) and three UDP datagrams. PVM: IP IDs counting from 0x3a00, TTL 64, TOS 0, window 502 (65160 in the SYN-ACK), TSval from 1000000. SVM: IP IDs from 0x91c0, TTL 63, TOS 0x10, window 509 (520 on its FIN), TSval from 3200000000. TSecr (the client's clock) is the same on both. Checksums differ accordingly.`,
    differs: 'Header fields that two correct guests legitimately choose differently; every payload byte, port, sequence and ACK number is the same.',
    correct: 'Compare payload by sequence range and ignore IP ID, TTL, TOS, window, timestamps and checksums (QEMU ignores them too for TCP; COLO-REFERENCE §9: "different TCP options, timestamps, window, IP ID, TTL (must match)"). For UDP, never compare the IP header (QEMU compares the IP ID for "other" protocols). No checkpoint by default; a comparator may offer to compare chosen header fields as an opt-in.',
    timeline: tl,
  };
});

define('one-byte-difference', function caseOneByteDifference(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x31337000, clientIsn: 0x0a0b0c0d });
  const m = MSS_PAYLOAD;
  const total = 8 * m;
  const body = httpResponse(rng, total);
  const other = body.slice();
  const flipAt = 3 * m + 700;
  other[flipAt] = other[flipAt]! ^ 0x20;
  handshake(tl, c);
  const bounds = evenBounds(0, total, m);
  const pSegs = c.segments(body, bounds);
  const sSegs = c.segments(other, bounds);
  for (let i = 0; i < 4; i++) tl.pair(pSegs[i]![0], sSegs[i]![0], [pSegs[i]![1], sSegs[i]![1] + (i === 3 ? ` (byte ${flipAt} differs)` : '')]);
  tl.wait(CHECKPOINT_GAP_US);
  for (let i = 4; i < pSegs.length; i++) tl.both(pSegs[i]![0], pSegs[i]![1]);
  tl.both(c.fin(total), 'FIN');
  closeAck(tl, c, c, total);
  return {
    summary: `one payload byte differs (offset ${flipAt}); after the checkpoint both guests continue identically`,
    args: [],
    checkpoints: { 'tcp.payload': 1 },
    made: `One connection, ${total} bytes in 1448-byte segments. In segment 3 ([${3 * m}, ${4 * m})) the SVM's byte at stream offset ${flipAt} has bit 0x20 flipped. Both guests then pause ${CHECKPOINT_GAP_US / 1000} ms (the checkpoint), after which the SVM, now a copy of the PVM, sends the rest of the stream, the FIN and the final ACK exactly like the PVM.`,
    differs: `One byte at stream offset ${flipAt}.`,
    correct: `Detect the difference as soon as both sides' byte ${flipAt} is known and ask for one checkpoint (reason tcp.payload, sequence number 0x${c.seq(flipAt).toString(16)}). Segment 3 of the PVM must not be released before the checkpoint; the checkpoint flushes it. Afterwards comparison restarts from the PVM's position and everything matches. Exactly one checkpoint.`,
    timeline: tl,
  };
});

define('fin-vs-rst', function caseFinVsRst(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x51f0a0e0, clientIsn: 0x600d0001 });
  const total = 4 * MSS_PAYLOAD;
  const body = httpResponse(rng, total);
  handshake(tl, c);
  const segs = c.segments(body, evenBounds(0, total, MSS_PAYLOAD));
  pairSegments(tl, segs, segs);
  tl.pair(c.fin(total), c.rst(total), [`bare FIN at ${total}`, `RST|ACK at ${total}`]);
  tl.wait(CHECKPOINT_GAP_US);
  closeAck(tl, c, c, total);
  return {
    summary: 'after identical data the PVM closes with FIN, the SVM resets with RST at the same point',
    args: [],
    checkpoints: { 'tcp.fin_rst': 1 },
    made: `One connection, ${total} bytes in identical segments. Then the PVM sends a bare FIN at offset ${total}, the SVM an RST|ACK with the same sequence number (its application aborted the connection, SO_LINGER 0). After a ${CHECKPOINT_GAP_US / 1000} ms pause both guests (the SVM now a copy of the PVM) acknowledge the client's FIN.`,
    differs: 'How the connection ends: FIN against RST.',
    correct: 'Compare FIN and RST as units at their sequence points: a FIN on one side against an RST on the other is a difference (tcp.fin_rst), one checkpoint, the PVM\'s FIN flushed by it. QEMU never compares zero-payload segments, so it misses this (COLO-REFERENCE §5).',
    timeline: tl,
  };
});

define('extra-bytes', function caseExtraBytes(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x0e0e0e0e, clientIsn: 0x7f000001 });
  const total = 3000;
  const body = httpResponse(rng, total);
  const extra = ascii('X-Debug: secondary-only header line, 96 bytes long, that the primary never wrote..............\r\n');
  if (extra.length !== 96) throw new Error(`extra is ${extra.length} bytes`);
  const longer = concat(body, extra);
  handshake(tl, c);
  const pSegs = c.segments(body, [0, 1448, 2896, total], { fin: true });
  const sSegs = c.segments(longer, [0, 1448, 2896, total + 96], { fin: true });
  pairSegments(tl, pSegs, sSegs);
  tl.wait(CHECKPOINT_GAP_US);
  closeAck(tl, c, c, total);
  return {
    summary: 'the SVM sends 96 bytes more than the PVM before its FIN: the same first 3000 bytes, then PVM FIN against SVM data',
    args: [],
    checkpoints: { 'tcp.length': 1 },
    made: `One connection. The PVM sends ${total} bytes ([0, 1448), [1448, 2896), [2896, 3000) with FIN). The SVM sends the same first two segments, then [2896, 3096) with FIN: the same 104 bytes followed by 96 extra ones. After a ${CHECKPOINT_GAP_US / 1000} ms pause both acknowledge the client's FIN.`,
    differs: `Stream length: the SVM's stream has 96 more bytes, so at offset ${total} the PVM has its FIN and the SVM has data.`,
    correct: `Every byte both sides sent at the same offsets is equal; the first difference is at offset ${total}, where one stream ends (FIN) and the other goes on. That is a length difference, reason tcp.length ("one side ended its byte stream (FIN) where the other sent more data"), not tcp.payload (no byte differs) and not tcp.fin_rst (both ended with FIN, just at different points; the core reports FINs at two points as tcp.length since at the earlier one the other side has data). One checkpoint, which flushes the PVM's last segment.`,
    timeline: tl,
  };
});

define('udp-ahead', function caseUdpAhead(rng) {
  const tl = new Timeline(rng);
  const answers = Array.from({ length: 10 }, (_, i) => dnsAnswer(0x1000 + i, `host${i}.example`, [10, 0, rng.int(0, 255), rng.int(1, 254)], rng.int(60, 3600)));
  const dgram = (i: number): Uint8Array => udpFrom(53, 5353, answers[i]!);
  tl.wait(500);
  // Burst 1: the PVM answers six queries before the SVM answers any.
  for (let i = 0; i < 6; i++) tl.p(dgram(i), `DNS answer ${i}`, 100 * i);
  for (let i = 0; i < 6; i++) tl.s(dgram(i), `DNS answer ${i}`, 2000 + 150 * i);
  // Burst 2, 50 ms later: the SVM is four ahead this time.
  tl.wait(50_000);
  for (let i = 6; i < 10; i++) tl.s(dgram(i), `DNS answer ${i}`, 100 * (i - 6));
  for (let i = 6; i < 10; i++) tl.p(dgram(i), `DNS answer ${i}`, 1500 + 120 * (i - 6));
  return {
    summary: 'the PVM sends six UDP datagrams before the SVM sends any (then the SVM four before the PVM): held and released in order, no mismatch',
    args: [],
    checkpoints: {},
    made: 'One UDP flow (10.0.0.2:53 -> 10.0.0.1:5353, DNS answers: one A record each, names host0.example to host9.example). Burst 1: the PVM sends answers 0-5 within 0.5 ms, the SVM the same six 2.0-2.75 ms later. Burst 2, 50 ms later: the SVM sends answers 6-9 first, the PVM 1.5 ms later.',
    differs: 'Only timing: one guest runs several datagrams ahead of the other.',
    correct: 'Match datagrams of a flow in FIFO order: hold the PVM\'s answers until the SVM\'s n-th answer arrives, release them in order; keep the SVM\'s until the PVM\'s arrive. No checkpoint (well within the 3 s compare timeout). QEMU compares against the newest packet and gives a false mismatch (COLO-REFERENCE §5, weakness 3).',
    timeline: tl,
  };
});

define('udp-difference', function caseUdpDifference(rng) {
  const tl = new Timeline(rng);
  const lines = Array.from({ length: 8 }, (_, i) => ascii(`<14>Jan  1 00:00:0${i} guest app[42]: request ${1000 + i} served in ${3 + i} ms`));
  const other = lines[4]!.slice();
  other[other.length - 4] = 0x39; // "7 ms" -> "9 ms"
  tl.wait(500);
  for (let i = 0; i < 5; i++) tl.pair(udpFrom(514, 514, lines[i]!), udpFrom(514, 514, i === 4 ? other : lines[i]!), [`syslog datagram ${i}`, `syslog datagram ${i}${i === 4 ? ' (one byte differs)' : ''}`], 1000);
  tl.wait(CHECKPOINT_GAP_US);
  for (let i = 5; i < 8; i++) tl.both(udpFrom(514, 514, lines[i]!), `syslog datagram ${i}`, 1000);
  return {
    summary: 'the fifth of eight UDP datagrams differs in one byte; after the checkpoint both guests send the same',
    args: [],
    checkpoints: { 'udp.payload': 1 },
    made: `One UDP flow (10.0.0.2:514 -> 10.0.0.1:514), syslog lines about 1 ms apart. Datagram 4 says "served in 9 ms" on the SVM where the PVM says "7 ms". Both guests pause ${CHECKPOINT_GAP_US / 1000} ms (the checkpoint), then send datagrams 5-7 identically.`,
    differs: 'One payload byte of datagram 4.',
    correct: 'Compare the n-th datagram of each side; datagram 4 differs: one checkpoint (reason udp.payload), the PVM\'s datagram 4 flushed by it, not released before. Datagrams 5-7 match after the checkpoint.',
    timeline: tl,
  };
});

define('udp-size-difference', function caseUdpSizeDifference(rng) {
  const tl = new Timeline(rng);
  const msgs = Array.from({ length: 6 }, (_, i) => concat(ascii(`metric.requests:${100 + i}|c`), rng.bytes(8)));
  const longer = concat(msgs[2]!, ascii('\n'));
  tl.wait(500);
  for (let i = 0; i < 3; i++) tl.pair(udpFrom(8125, 8125, msgs[i]!), udpFrom(8125, 8125, i === 2 ? longer : msgs[i]!), [`statsd datagram ${i}`, `statsd datagram ${i}${i === 2 ? ' (one byte longer)' : ''}`], 800);
  tl.wait(CHECKPOINT_GAP_US);
  for (let i = 3; i < 6; i++) tl.both(udpFrom(8125, 8125, msgs[i]!), `statsd datagram ${i}`, 800);
  return {
    summary: 'one UDP datagram is one byte longer on the SVM (a trailing newline), the bytes before it equal',
    args: [],
    checkpoints: { 'udp.payload': 1 },
    made: `One UDP flow (10.0.0.2:8125 -> 10.0.0.1:8125). Datagram 2 carries a trailing "\\n" on the SVM only: UDP length ${8 + longer.length} against ${8 + msgs[2]!.length}, all common bytes equal. After a ${CHECKPOINT_GAP_US / 1000} ms pause datagrams 3-5 are identical.`,
    differs: 'The length of datagram 2.',
    correct: 'A datagram whose length differs is different even when one is a prefix of the other (COLO-REFERENCE §9: "size differs"): one checkpoint, reason udp.payload.',
    timeline: tl,
  };
});

define('silent-secondary', function caseSilentSecondary(rng) {
  const tl = new Timeline(rng);
  const a = new TcpConn({ isn: 0x0a0a0a0a, clientIsn: 0x10000000, clientPort: 40001 });
  const b = new TcpConn({ isn: 0x0b0b0b0b, clientIsn: 0x20000000, clientPort: 40002, ipId: 0x6000 });
  const bodyA = httpResponse(rng, 3 * MSS_PAYLOAD);
  const bodyB = httpResponse(rng, 3 * MSS_PAYLOAD);
  tl.both(a.synAck(), 'connection A: SYN-ACK');
  tl.pair(b.synAck(), null, 'connection B: SYN-ACK (the SVM never answers)');
  tl.wait(800);
  const segA = a.segments(bodyA, evenBounds(0, bodyA.length, MSS_PAYLOAD));
  const segB = b.segments(bodyB, evenBounds(0, bodyB.length, MSS_PAYLOAD));
  for (let i = 0; i < 3; i++) {
    tl.both(segA[i]![0], `connection A: ${segA[i]![1]}`);
    tl.pair(segB[i]![0], null, `connection B: ${segB[i]![1]}`);
  }
  tl.both(a.fin(bodyA.length), 'connection A: FIN');
  tl.pair(b.fin(bodyB.length), null, 'connection B: FIN');
  closeAck(tl, a, a, bodyA.length);
  return {
    summary: 'two connections; the SVM answers one normally and never sends anything on the other: one timeout checkpoint',
    args: [],
    checkpoints: { timeout: 1 },
    made: `Connection A (client port 40001) is identical on both sides. On connection B (client port 40002) the PVM sends a SYN-ACK, ${bodyB.length} bytes in three segments and a FIN within a few milliseconds; the SVM's capture has nothing for it (its guest hung, or its mirror lost the client's SYN).`,
    differs: 'The SVM sends nothing at all on connection B.',
    correct: `Release connection A as it matches. Hold B's primary frames: there is nothing to compare them with. After compare-timeout (3000 ms, checked every expired-scan-cycle of 1000 ms; replay runs virtual time on past the end of the input until nothing is held) ask for one checkpoint, reason timeout; its flush releases all of B's frames at once. Never release them unverified, never drop them. Exactly one checkpoint: all of B's frames are in before it is requested.`,
    timeline: tl,
  };
});

define('icmp-echo', function caseIcmpEcho(rng) {
  const tl = new Timeline(rng);
  for (let i = 1; i <= 5; i++) {
    const stamp = new Uint8Array(8);
    writeU16(stamp, 2, 0x6955);
    writeU16(stamp, 6, 1000 + 37 * i);
    const data = concat(stamp, Uint8Array.from({ length: 48 }, (_, k) => 0x10 + k));
    const reply = emitIcmpEcho({ src: GUEST, dst: CLIENT, srcMac: GUEST_MAC, dstMac: CLIENT_MAC, id: 0x04d2, sequence: i, reply: true, ipId: 0x1100 + i, dontFragment: false, payload: data });
    tl.both(reply, `echo reply id 0x4d2 seq ${i}`, i === 1 ? 300 : 1_000_000);
  }
  return {
    summary: 'five ICMP echo replies (ping -c 5), one second apart, identical on both sides',
    args: [],
    checkpoints: {},
    made: 'The client pings the guest five times, one second apart (the requests are not in the captures); each guest answers with an echo reply id 0x4d2, sequence 1-5, 56 data bytes (an 8-byte timeval and the 0x10.. pattern ping uses), IP IDs 0x1101-0x1105, DF clear. Both captures hold the same frames.',
    differs: 'Nothing but the capture times.',
    correct: 'Compare each echo reply with the other side\'s reply in the same flow (ICMP id), type, code, rest of header and data; release each when matched. No checkpoint.',
    timeline: tl,
  };
});

define('ipv6', function caseIpv6(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ guest: GUEST6, client: CLIENT6, isn: 0x36363636, clientIsn: 0x66006600 });
  const seg = 1440 - 12;
  const total = 8 * seg + 333;
  const body = httpResponse(rng, total);
  handshake(tl, c);
  const segs = c.segments(body, evenBounds(0, total, seg));
  pairSegments(tl, segs, segs);
  tl.both(c.fin(total), 'FIN');
  closeAck(tl, c, c, total);
  for (let i = 1; i <= 2; i++) {
    const reply = emitIcmpEcho({ src: GUEST6, dst: CLIENT6, srcMac: GUEST_MAC, dstMac: CLIENT_MAC, id: 0x0606, sequence: i, reply: true, payload: rng.bytes(56) });
    tl.both(reply, `ICMPv6 echo reply seq ${i}`, 200_000);
  }
  return {
    summary: 'a TCP connection over IPv6 (and two ICMPv6 echo replies), identical on both sides',
    args: [],
    checkpoints: {},
    made: `The guest [fd00::2]:80 accepts a connection from [fd00::1]:40000 (MSS 1440, so 1428-byte segments with timestamps) and sends ${total} bytes, a FIN and the ACK of the client's FIN; then it answers two pings with ICMPv6 echo replies. Both captures hold the same frames.`,
    differs: 'Nothing but the capture times.',
    correct: 'Parse IPv6 fully and compare its TCP and ICMPv6 like IPv4\'s: release everything, no checkpoint. QEMU\'s colo-compare forwards IPv6 uncompared (COLO-REFERENCE §5), which would also release it, but unverified.',
    timeline: tl,
  };
});

define('vlan', function caseVlan(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x00100100, clientIsn: 0x64646464, vlan: [100] });
  const total = 5 * MSS_PAYLOAD;
  const body = httpResponse(rng, total);
  handshake(tl, c);
  const segs = c.segments(body, evenBounds(0, total, MSS_PAYLOAD), { fin: true });
  pairSegments(tl, segs, segs);
  closeAck(tl, c, c, total);
  for (let i = 0; i < 2; i++) {
    const d = udpFrom(53, 5353, dnsAnswer(0x2000 + i, `vlan${i}.example`, [192, 0, 2, 10 + i], 300), { vlan: [100] });
    tl.both(d, `UDP datagram ${i}, VLAN 100`);
  }
  return {
    summary: '802.1Q-tagged traffic (VLAN 100): a TCP connection and two UDP datagrams, identical on both sides',
    args: [],
    checkpoints: {},
    made: `Every frame carries one 802.1Q tag, VLAN id 100 (TPID 0x8100, priority 0). A TCP connection sends ${total} bytes (FIN on the last segment) and the ACK of the client's FIN; then two UDP datagrams. Both captures hold the same frames.`,
    differs: 'Nothing but the capture times.',
    correct: 'Decode the VLAN tag and compare what is inside it (and the tags themselves): everything matches, no checkpoint. QEMU\'s colo-compare cannot parse VLAN frames and sends them out uncompared (COLO-REFERENCE §5).',
    timeline: tl,
  };
});

define('vlan-difference', function caseVlanDifference(rng) {
  const tl = new Timeline(rng);
  const p = new TcpConn({ isn: 0x0c0c0c0c, clientIsn: 0x0d0d0d0d, vlan: [100] });
  const sBefore = p.twin({ vlan: [200] });
  const total = 4 * MSS_PAYLOAD;
  const body = httpResponse(rng, total);
  // The SVM's SYN-ACK leaves first, tagged 200; the PVM's, tagged 100, a little later.
  tl.t += 300;
  tl.s(sBefore.synAck(), 'SYN-ACK tagged VLAN 200');
  tl.p(p.synAck(), 'SYN-ACK tagged VLAN 100', 90);
  tl.wait(CHECKPOINT_GAP_US);
  const segs = p.segments(body, evenBounds(0, total, MSS_PAYLOAD), { fin: true });
  pairSegments(tl, segs, segs);
  closeAck(tl, p, p, total);
  return {
    summary: 'the SVM tags its SYN-ACK with VLAN 200 where the PVM uses VLAN 100; after the checkpoint both tag 100',
    args: [],
    checkpoints: { vlan: 1 },
    made: `One TCP connection, every frame 802.1Q-tagged. The SVM's SYN-ACK (VLAN 200) leaves 90 us before the PVM's (VLAN 100): the guest tags its own frames (a VLAN sub-interface inside the guest) and the SVM's configuration had diverged. Both guests pause ${CHECKPOINT_GAP_US / 1000} ms (the checkpoint copies the PVM, its VLAN configuration included, to the SVM), then send ${total} bytes, FIN and the final ACK identically, all tagged VLAN 100.`,
    differs: 'The VLAN id of the first frame: 200 on the SVM, 100 on the PVM. Every later frame is the same.',
    correct: 'The tags are part of what the guest chose, so the SYN-ACKs differ: one checkpoint, reason vlan. After the checkpoint the SVM\'s frames are tagged 100 like the PVM\'s and match, so there must be no further checkpoint: the tag to compare against is the PVM\'s (or is forgotten at the checkpoint), not whichever side happened to send the connection\'s first frame. Exactly one checkpoint.',
    timeline: tl,
  };
});

define('fragments', function caseFragments(rng) {
  const tl = new Timeline(rng);
  const payloadA = rng.bytes(4000);
  const payloadB = rng.bytes(3000);
  const payloadC = rng.bytes(200);
  const whole = (payload: Uint8Array, ipId: number): Uint8Array => udpFrom(2049, 40049, payload, { dontFragment: false, ipId });
  // Datagram A: IP payload 4008 bytes. PVM cut at 1480 and 2960, SVM at 1184, 2368 and 3552.
  const pA = ipv4Fragments(whole(payloadA, 0x2001), [1480, 2960]);
  const sA = ipv4Fragments(whole(payloadA, 0x7101), [1184, 2368, 3552]);
  tl.t += 400;
  pA.forEach((f, i) => tl.p(f, `datagram A fragment ${i + 1}/${pA.length}`, 60 * i));
  sA.forEach((f, i) => tl.s(f, `datagram A fragment ${i + 1}/${sA.length}`, -70 + 50 * i));
  // Datagram B: IP payload 3008 bytes. Both cut at 1480 and 2960; the SVM sends the last fragment first.
  tl.wait(1500);
  const pB = ipv4Fragments(whole(payloadB, 0x2002), [1480, 2960]);
  const sB = ipv4Fragments(whole(payloadB, 0x7102), [1480, 2960]);
  pB.forEach((f, i) => tl.p(f, `datagram B fragment ${i + 1}/3`, 60 * i));
  [2, 0, 1].forEach((k, i) => tl.s(sB[k]!, `datagram B fragment ${k + 1}/3 (sent ${i + 1}${i === 0 ? 'st' : i === 1 ? 'nd' : 'rd'})`, 40 + 50 * i));
  // Datagram C: small, not fragmented.
  tl.wait(1500);
  tl.pair(whole(payloadC, 0x2003), whole(payloadC, 0x7103), 'datagram C, not fragmented');
  return {
    summary: 'IPv4-fragmented UDP datagrams cut at different points (and sent in a different order) on each side',
    args: [],
    checkpoints: {},
    made: 'One UDP flow (10.0.0.2:2049 -> 10.0.0.1:40049), DF clear. Datagram A (4000 bytes of data, 4008 of IP payload): the PVM fragments it at 1480 and 2960 (3 fragments), the SVM at 1184, 2368 and 3552 (4 fragments, as with a smaller path MTU). Datagram B (3000 bytes): both cut at 1480 and 2960, but the SVM sends the last fragment first. Datagram C (200 bytes) is not fragmented. The IP IDs differ between the sides (0x2001.. against 0x7101..), as two guests\' counters do.',
    differs: 'Fragment boundaries, fragment order and IP IDs; the reassembled datagrams are identical.',
    correct: `Reassemble each side's fragments per datagram and compare the whole datagrams; release the PVM's own fragments (all ${pA.length + pB.length} of them, plus datagram C) once its datagram matched. No checkpoint. QEMU compares fragment by fragment, which differs here (COLO-REFERENCE §5).`,
    timeline: tl,
  };
});

define('arp', function caseArp(rng) {
  const tl = new Timeline(rng);
  const request = emitArp({ operation: 1, srcMac: GUEST_MAC, senderIp: GUEST, targetIp: CLIENT });
  const reply = emitArp({ operation: 2, srcMac: GUEST_MAC, dstMac: CLIENT_MAC, senderIp: GUEST, targetMac: CLIENT_MAC, targetIp: CLIENT });
  const gratuitous = emitArp({ operation: 1, srcMac: GUEST_MAC, senderIp: GUEST, targetIp: GUEST });
  tl.both(gratuitous, 'gratuitous ARP (who-has 10.0.0.2 tell 10.0.0.2)');
  tl.both(request, 'ARP request who-has 10.0.0.1 tell 10.0.0.2', 2000);
  tl.both(reply, 'ARP reply 10.0.0.2 is-at 52:54:00:12:34:56', 30_000);
  tl.both(reply, 'ARP reply 10.0.0.2 is-at 52:54:00:12:34:56', 1_000_000);
  return {
    summary: 'ARP from the guest (a gratuitous ARP, a request, two replies), identical on both sides',
    args: [],
    checkpoints: {},
    made: 'The guest announces itself (gratuitous ARP request), asks for the client\'s address (broadcast request) and answers two of the client\'s requests with replies (unicast to 52:54:00:ab:cd:ef). 42-byte frames, unpadded, the same on both sides.',
    differs: 'Nothing but the capture times.',
    correct: 'Compare ARP frames in order like datagrams (from the EtherType to the end of the ARP addresses) and release them when matched; no checkpoint. QEMU forwards ARP uncompared (COLO-REFERENCE §5).',
    timeline: tl,
  };
});

define('raw-svm', function caseRawSvm(rng) {
  const tl = new Timeline(rng);
  const p = new TcpConn({ isn: 0x1a2b3c4d, clientIsn: 0x44556677, tsBase: 2_000_000 });
  const s = p.twin({ isn: 0x9e8d7c6b, tsBase: 3_900_000_000 });
  const m = MSS_PAYLOAD;
  const total = 8 * m + 200;
  const body = httpResponse(rng, total);
  handshake(tl, p, s);
  const pSegs = p.segments(body, evenBounds(0, total, m));
  const sSegs = s.segments(body, [0, m, 2 * m, 4 * m, ...evenBounds(4 * m, total, m).slice(1)]);
  const n = Math.max(pSegs.length, sSegs.length);
  for (let i = 0; i < n; i++) tl.pair(pSegs[i]?.[0] ?? null, sSegs[i]?.[0] ?? null, [pSegs[i]?.[1] ?? '', sSegs[i]?.[1] ?? '']);
  tl.pair(p.fin(total), s.fin(total), 'FIN');
  closeAck(tl, p, s, total);
  return {
    summary: 'the SVM\'s raw output, in its own sequence space (own ISN, own timestamp clock), replayed with --mode translate',
    args: ['--mode', 'translate'],
    checkpoints: {},
    made: `One connection, ${total} bytes. The PVM's ISN is 0x1a2b3c4d and its TSval starts at 2000000; the SVM's ISN is 0x9e8d7c6b and its TSval starts at 3900000000: the capture was taken on the SVM's own tap, before any sequence rewriting. The SVM sends [2896, 5792) as one segment where the PVM sends two; everything else is cut alike. ACK numbers and TSecr are the client's and the same on both sides.`,
    differs: 'Sequence numbers (offset 0x9e8d7c6b - 0x1a2b3c4d mod 2^32 on every SVM segment), TSval, and one segment boundary.',
    correct: 'Learn the offsets from the two SYN-ACKs, map every SVM segment into the PVM\'s space and compare there: no checkpoint. Without --mode translate every byte would be at the wrong place (replay should warn that the secondary looks untranslated).',
    timeline: tl,
  };
});

define('many-connections', function caseManyConnections(rng) {
  const tl = new Timeline(rng);
  const count = 200;
  let frames = 0;
  for (let i = 0; i < count; i++) {
    const c = new TcpConn({
      isn: (0x40000000 + i * 0x01234567) >>> 0, clientIsn: (0x70000000 + i * 0x00abcdef) >>> 0,
      clientPort: 41000 + i, ipId: (i * 97) & 0xffff, request: 60 + (i % 50),
    });
    const segCount = rng.int(1, 3);
    const total = (segCount - 1) * 512 + rng.int(120, 512);
    const body = httpResponse(rng, total);
    const start = 1000 + i * 500;
    const put = (us: number, frame: Uint8Array, comment: string): void => {
      tl.primary.push({ us, data: frame, comment: `conn ${i}: ${comment}` });
      const m = rng.int(10, 130);
      tl.secondary.push({ us: us + (rng.next() < 0.5 ? -m : m), data: frame, comment: `conn ${i}: ${comment}` });
      frames++;
    };
    put(start, c.synAck(), 'SYN-ACK');
    c.segments(body, evenBounds(0, total, 512)).forEach(([f, comment], k) => put(start + 1000 + 400 * k, f, comment));
    put(start + 1000 + 400 * segCount, c.fin(total), 'FIN');
    c.clientSent(1);
    put(start + 1800 + 400 * segCount, c.ack(total + 1), 'ACK of the client\'s FIN');
  }
  return {
    summary: `${count} short TCP connections, interleaved in time, identical on both sides`,
    args: [],
    checkpoints: {},
    made: `${count} connections to the guest (10.0.0.2:80) from client ports 41000-${41000 + count - 1}, one starting every 0.5 ms, each alive for about 2.5 ms, so about five are open at any moment and their frames interleave: SYN-ACK, 1-3 data segments of up to 512 bytes (a small response of random length, seeded), FIN, ACK of the client's FIN. ${frames} frames per side; each SVM frame is 10-130 us before or after its PVM twin, so the two sides interleave the connections in slightly different orders.`,
    differs: 'Nothing but the capture times (and so the order across connections).',
    correct: 'Track each connection on its own; release everything, no checkpoint, no table or queue limit reached.',
    timeline: tl,
  };
});

// --- more scenarios from COLO-REFERENCE §9 ---------------------------------------------------------

define('svm-syn-isn', function caseSvmSynIsn(rng) {
  const tl = new Timeline(rng);
  const p = new TcpConn({ isn: 0x2b2b2b2b, clientIsn: 0x3c3c3c3c });
  const s = p.twin({ isn: 0xc1c2c3c4 });
  const total = 5 * MSS_PAYLOAD;
  const body = httpResponse(rng, total);
  handshake(tl, p, s);
  const segs = p.segments(body, evenBounds(0, total, MSS_PAYLOAD), { fin: true });
  pairSegments(tl, segs, segs);
  closeAck(tl, p, p, total);
  return {
    summary: 'pre-translated SVM output as QEMU\'s filter-rewriter leaves it: the SVM\'s SYN-ACK carries its own ISN, everything after it the PVM\'s sequence numbers',
    args: [],
    checkpoints: {},
    made: `One connection, ${total} bytes. The PVM's SYN-ACK has ISN 0x2b2b2b2b, the SVM's 0xc1c2c3c4: filter-rewriter learns its offset from the SVM's SYN-ACK and rewrites only later segments, so the SYN-ACK reaches the comparator untranslated. Every later SVM frame is byte for byte the PVM's.`,
    differs: 'The sequence number of the SYN-ACK (COLO-REFERENCE §9: "different ISNs").',
    correct: 'In pre-translated mode (the default) take the data\'s sequence space from the PVM\'s SYN-ACK and do not compare the SVM\'s ISN; compare the SYN-ACKs\' options only. No checkpoint.',
    timeline: tl,
  };
});

define('ack-gate', function caseAckGate(rng) {
  const tl = new Timeline(rng);
  const p = new TcpConn({ isn: 0x0acc0acc, clientIsn: 0x5a5a5a5a });
  const s = p.twin({});
  const m = MSS_PAYLOAD;
  const total = 6 * m;
  const body = httpResponse(rng, total);
  const second = httpResponse(rng, 2 * m);
  const firstAck = p.ackNo;
  handshake(tl, p, s);
  const segs = p.segments(body, evenBounds(0, total, m));
  for (let i = 0; i < 3; i++) tl.both(segs[i]![0], segs[i]![1]);
  // The client's second (pipelined, 50-byte) request reaches the PVM now, the SVM 2 ms later.
  p.clientSent(50);
  const late = p.segments(body, evenBounds(0, total, m));
  const early = s.segments(body, evenBounds(0, total, m));
  for (let i = 3; i < 6; i++) tl.pair(late[i]![0], early[i]![0], [`${late[i]![1]}, ACK includes the second request`, `${early[i]![1]}, ACK before the second request`]);
  s.clientSent(50);
  tl.pair(null, s.ack(total), 'pure ACK of the second request', 1200);
  const more = p.segments(concat(body, second), evenBounds(total, total + 2 * m, m), { fin: true });
  pairSegments(tl, more, more);
  closeAck(tl, p, p, total + 2 * m);
  return {
    summary: 'the PVM acknowledges client data the SVM has not received yet (the ACK gate): held until the SVM\'s ACK catches up, no mismatch',
    args: [],
    checkpoints: {},
    made: `One connection answering two pipelined requests. Segments 3-5 of the first response carry ACK 0x${((firstAck + 50) >>> 0).toString(16)} from the PVM, which already received the client's second 50-byte request, but 0x${firstAck.toString(16)} from the SVM, which gets it about 1.5 ms later and then sends a pure ACK of it. The second response (2896 bytes, FIN) and the final ACK are identical.`,
    differs: 'The ACK numbers of three segments: the SVM acknowledges the second request later than the PVM.',
    correct: 'Their bytes match, but releasing the PVM\'s segments 3-5 would tell the client its second request is safe while the SVM has not received it; a failover then would lose it. Hold them until the SVM\'s highest ACK reaches theirs (its pure ACK), then release: no checkpoint. QEMU tracks the last ACK and treats a failed gate as a mismatch (COLO-REFERENCE §5).',
    timeline: tl,
  };
});

define('syn-options', function caseSynOptions(rng) {
  const tl = new Timeline(rng);
  const p = new TcpConn({ isn: 0x5e5e5e5e, clientIsn: 0x6f6f6f6f, windowScale: 7 });
  const s = p.twin({ windowScale: 9 });
  const total = 3 * MSS_PAYLOAD;
  const body = httpResponse(rng, total);
  tl.pair(p.synAck(), s.synAck(), ['SYN-ACK, wscale 7', 'SYN-ACK, wscale 9']);
  tl.wait(CHECKPOINT_GAP_US);
  const segs = p.segments(body, evenBounds(0, total, MSS_PAYLOAD), { fin: true });
  pairSegments(tl, segs, segs);
  closeAck(tl, p, p, total);
  return {
    summary: 'the SYN-ACKs announce different window scales (7 vs 9); after the checkpoint the connection is identical',
    args: [],
    checkpoints: { 'tcp.syn_options': 1 },
    made: `One connection. The PVM's SYN-ACK offers window scale 7, the SVM's 9 (its tcp_rmem had diverged); MSS and SACK-permitted agree. After a ${CHECKPOINT_GAP_US / 1000} ms pause both send ${total} bytes with FIN and the final ACK identically.`,
    differs: 'The window-scale option of the SYN-ACK.',
    correct: 'The option sets of the handshake decide how the client talks to the guest afterwards; a failover to an SVM that negotiated another scale would corrupt the connection. One checkpoint, reason tcp.syn_options; then everything matches. QEMU compares no zero-payload segment, so it misses it.',
    timeline: tl,
  };
});

define('coalesced-mismatches', function caseCoalescedMismatches(rng) {
  const tl = new Timeline(rng);
  const a = new TcpConn({ isn: 0x0aaa0aaa, clientIsn: 0x1aaa1aaa, clientPort: 40001 });
  const b = new TcpConn({ isn: 0x0bbb0bbb, clientIsn: 0x1bbb1bbb, clientPort: 40002, ipId: 0x6000 });
  const m = MSS_PAYLOAD;
  const bodyA = httpResponse(rng, 4 * m);
  const bodyB = httpResponse(rng, 4 * m);
  const otherA = bodyA.slice();
  otherA[m + 100] = otherA[m + 100]! ^ 0x01;
  const otherB = bodyB.slice();
  otherB[m + 900] = otherB[m + 900]! ^ 0x80;
  tl.both(a.synAck(), 'A: SYN-ACK');
  tl.both(b.synAck(), 'B: SYN-ACK');
  tl.wait(800);
  const bounds = evenBounds(0, 4 * m, m);
  const pa = a.segments(bodyA, bounds, { fin: true });
  const sa = a.segments(otherA, bounds, { fin: true });
  const pb = b.segments(bodyB, bounds, { fin: true });
  const sb = b.segments(otherB, bounds, { fin: true });
  for (let i = 0; i < 2; i++) {
    tl.pair(pa[i]![0], sa[i]![0], [`A: ${pa[i]![1]}`, `A: ${sa[i]![1]}${i === 1 ? ' (byte 1548 differs)' : ''}`]);
    tl.pair(pb[i]![0], sb[i]![0], [`B: ${pb[i]![1]}`, `B: ${sb[i]![1]}${i === 1 ? ' (byte 2348 differs)' : ''}`]);
  }
  tl.wait(CHECKPOINT_GAP_US);
  for (let i = 2; i < 4; i++) {
    tl.both(pa[i]![0], `A: ${pa[i]![1]}`);
    tl.both(pb[i]![0], `B: ${pb[i]![1]}`);
  }
  closeAck(tl, a, a, 4 * m);
  closeAck(tl, b, b, 4 * m, 300);
  return {
    summary: 'two connections each differ in one byte within half a millisecond: two mismatches, one checkpoint request',
    args: [],
    checkpoints: { 'tcp.payload': 1 },
    made: `Two connections (client ports 40001 and 40002), ${4 * m} bytes each. In segment 1 the SVM's byte 1548 of A and byte 2348 of B differ; the two differences are detected a few hundred microseconds apart, well inside the 30 ms the checkpoint takes. After a ${CHECKPOINT_GAP_US / 1000} ms pause both connections finish identically.`,
    differs: 'One byte in each of two connections.',
    correct: 'Report both mismatches (two tcp.payload mismatches, one per connection) but ask for one checkpoint: the second comes while the first request is outstanding and the one checkpoint covers both (COLO-REFERENCE §9: "mismatches during a checkpoint coalesce into one request"). So checkpoints {"tcp.payload": 1}.',
    timeline: tl,
  };
});

define('queue-full', function caseQueueFull(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x0f0f0f0f, clientIsn: 0x1f1f1f1f });
  const burst = 1200;
  const size = 100;
  const total = burst * size + 2 * MSS_PAYLOAD;
  const body = httpResponse(rng, total);
  handshake(tl, c);
  const start = tl.t;
  for (let i = 0; i < burst; i++) tl.primary.push({ us: start + 5 * i, data: c.data(i * size, body.subarray(i * size, (i + 1) * size), { flags: TCP_ACK | TCP_PSH }), comment: `small write ${i}: [${i * size}, ${(i + 1) * size})` });
  for (let i = 0; i < 40; i++) tl.secondary.push({ us: start + 20 + 150 * i, data: c.data(i * size, body.subarray(i * size, (i + 1) * size), { flags: TCP_ACK | TCP_PSH }), comment: `small write ${i}: [${i * size}, ${(i + 1) * size})` });
  tl.t = start + 150 * 40;
  tl.wait(CHECKPOINT_GAP_US);
  const tail = c.segments(body, evenBounds(burst * size, total, MSS_PAYLOAD), { fin: true });
  pairSegments(tl, tail, tail);
  closeAck(tl, c, c, total);
  return {
    summary: `the PVM sends ${burst} small segments in 6 ms while the lagging SVM sends 40: the primary queue passes max-queue-size 1024, a queue_full checkpoint, no frame dropped`,
    args: [],
    checkpoints: { queue_full: 1 },
    made: `One connection. The PVM writes ${burst} segments of ${size} bytes, 5 us apart (TCP_NODELAY, many small writes); the SVM lags and sends only the first 40 of them, 150 us apart, before the checkpoint stops it. After a ${CHECKPOINT_GAP_US / 1000} ms pause both send 2896 more bytes with FIN, and the final ACK, identically.`,
    differs: 'The SVM is slow: it has sent 40 segments where the PVM has sent 1200.',
    correct: `The PVM's frames beyond the SVM's output must be held, and the per-connection queue is bounded (max-queue-size, default 1024 frames, like QEMU's max_queue_size): when more than 1024 primary frames are held, ask for a checkpoint (queue_full) rather than drop the new frame as QEMU does (COLO-REFERENCE §5, weakness 5). The checkpoint releases all ${burst - 40} held frames in order; nothing is lost. Exactly one checkpoint: the limit is passed about 5 ms into the burst (around its 1060th segment, with some 36 segments matched), and the rest of the burst is held for the flush, not counted as a second overflow.`,
    timeline: tl,
  };
});

define('rst-identical', function caseRstIdentical(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x7a7a7a7a, clientIsn: 0x0b0b0b0b });
  const total = 3 * MSS_PAYLOAD + 77;
  const body = httpResponse(rng, total);
  handshake(tl, c);
  const segs = c.segments(body, evenBounds(0, total, MSS_PAYLOAD));
  pairSegments(tl, segs, segs);
  tl.both(c.rst(total), 'RST|ACK (the application aborted)');
  return {
    summary: 'both guests abort the connection with an RST at the same point after identical data',
    args: [],
    checkpoints: {},
    made: `One connection: ${total} bytes, then an RST|ACK at sequence offset ${total} from both guests (SO_LINGER 0 and close()).`,
    differs: 'Nothing but the capture times.',
    correct: 'Compare the RST as a unit at its sequence point; both reset at the same point, so release the PVM\'s RST once the SVM\'s is seen. No checkpoint.',
    timeline: tl,
  };
});

define('slow-secondary', function caseSlowSecondary(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x51095109, clientIsn: 0x0510c0de });
  const lag = 2_400_000;
  const chunks = 12;
  const total = chunks * 700;
  const body = httpResponse(rng, total);
  const segs = c.segments(body, evenBounds(0, total, 700), { fin: true });
  tl.pair(c.synAck(), c.synAck(), 'SYN-ACK');
  tl.wait(800);
  // A streaming response: one 700-byte chunk every 100 ms; the SVM sends each 2.4 s after the PVM.
  for (let i = 0; i < chunks; i++) {
    tl.p(segs[i]![0], segs[i]![1], 100_000 * i);
    tl.s(segs[i]![0], segs[i]![1], lag + 100_000 * i + tl.jitter());
  }
  tl.wait(lag + 100_000 * chunks);
  closeAck(tl, c, c, total, 500);
  return {
    summary: 'the SVM runs 2.4 s behind the PVM on a streaming response: everything held up to 2.4 s and released, no timeout',
    args: [],
    checkpoints: {},
    made: `One connection: after the SYN-ACK (answered alike at once) the guest streams ${chunks} chunks of 700 bytes, one every 100 ms, the last with FIN. The SVM (overloaded host) sends each chunk 2.4 s after the PVM does. The ACK of the client's FIN follows on both sides.`,
    differs: 'Timing only: the SVM is 2.4 s late, so up to 12 PVM segments wait at once.',
    correct: 'Hold each PVM segment until the SVM has sent the same bytes, then release it: it waited 2.4 s, less than compare-timeout (3000 ms), so no timeout checkpoint, whatever the expired-scan-cycle phase. The connection\'s queue is never empty from the first chunk to the last (about 3.5 s), so a comparator that measures the wait per connection or per queue, rather than per held frame, gives a false timeout here.',
    timeline: tl,
  };
});

define('midstream', function caseMidstream(rng) {
  const tl = new Timeline(rng);
  const c = new TcpConn({ isn: 0x4d1d4d1d, clientIsn: 0x5e1e5e1e });
  const m = MSS_PAYLOAD;
  const total = 40 * m;
  const body = httpResponse(rng, total);
  // The captures begin inside the transfer: the PVM's at segment 30, the SVM's at segment 32.
  const segs = c.segments(body, evenBounds(0, total, m), { fin: true });
  tl.wait(500);
  for (let i = 30; i < 40; i++) tl.pair(segs[i]![0], i >= 32 ? segs[i]![0] : null, segs[i]![1]);
  closeAck(tl, c, c, total);
  return {
    summary: 'the captures start in the middle of a connection, the SVM\'s two segments later than the PVM\'s: no handshake, comparison from the later start',
    args: [],
    checkpoints: {},
    made: `One connection, seen from segment 30 of ${total / m} on: the PVM's capture starts with [${30 * m}, ${31 * m}), the SVM's with [${32 * m}, ${33 * m}) (its earlier output left before the capture, or the proxy, began). The segments both captures have are identical; the last carries FIN, then the ACK of the client's FIN.`,
    differs: 'Where each capture starts: the PVM\'s two segments earlier.',
    correct: `A connection first seen without its handshake is compared from the later of the two sides' first segments (flow.midstream). The PVM's first two segments lie below that point: there is nothing to compare them with, so they are released (unverified) once the SVM's first segment shows where its stream starts, not held into a timeout. Everything after matches; no checkpoint.`,
    timeline: tl,
  };
});

define('secondary-only-output', function caseSecondaryOnlyOutput(rng) {
  const tl = new Timeline(rng);
  const lines = Array.from({ length: 4 }, (_, i) => ascii(`<14>guest app[42]: tick ${i}`));
  const extra = ascii('<11>guest app[42]: warning: cache rebuilt');
  tl.wait(500);
  for (let i = 0; i < 2; i++) tl.both(udpFrom(514, 514, lines[i]!), `syslog datagram ${i}`, 1000);
  tl.pair(null, udpFrom(514, 514, extra), 'a warning the PVM never logged', 1000);
  return {
    summary: 'the SVM sends a UDP datagram the PVM never sends: a timeout checkpoint',
    args: [],
    checkpoints: { timeout: 1 },
    made: 'One UDP flow (10.0.0.2:514 -> 10.0.0.1:514). Two syslog datagrams are identical; then the SVM alone sends a third (its application hit a code path the PVM did not). The PVM sends nothing more.',
    differs: 'The SVM has one datagram more.',
    correct: 'SVM output that the PVM never matches shows the SVM has diverged even though the client would see nothing: after compare-timeout (3000 ms) it must cost one checkpoint, reason timeout. QEMU never notices (COLO-REFERENCE README table: "SVM output the PVM never sends").',
    timeline: tl,
  };
});

define('raw-svm-active-open', function caseRawSvmActiveOpen(rng) {
  const tl = new Timeline(rng);
  // The guest connects out to 10.0.0.1:443; each guest picks its own ephemeral port and ISN.
  const serverIsn = 0x7e7e0000;
  const p = new TcpConn({ isn: 0x11112222, clientIsn: serverIsn, request: 0, guestPort: 51000, clientPort: 443, tsBase: 5_000_000 });
  const s = p.twin({ isn: 0xaaaabbbb, guestPort: 52344, tsBase: 1_234_567_890 });
  const request = concat(ascii('GET /update.bin HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n'), rng.bytes(40));
  tl.t += 300;
  tl.s(s.syn(), 'SYN from port 52344 (the SVM\'s)');
  tl.p(p.syn(), 'SYN from port 51000 (the PVM\'s)', 80);
  tl.wait(700); // the server's SYN-ACK comes back
  tl.pair(p.ack(0), s.ack(0), 'ACK of the server\'s SYN-ACK');
  tl.pair(p.data(0, request, { flags: TCP_ACK | TCP_PSH }), s.data(0, request, { flags: TCP_ACK | TCP_PSH }), `request [0, ${request.length})`);
  for (let k = 1; k <= 4; k++) {
    p.clientSent(2 * MSS_PAYLOAD);
    s.clientSent(2 * MSS_PAYLOAD);
    tl.pair(p.ack(request.length), s.ack(request.length), `ACK of ${2 * k} server segments`, 500);
  }
  tl.pair(p.fin(request.length), s.fin(request.length), 'FIN');
  p.clientSent(1);
  s.clientSent(1);
  tl.pair(p.ack(request.length + 1), s.ack(request.length + 1), 'ACK of the server\'s FIN', 900);
  return {
    summary: 'a guest-initiated connection in raw SVM output (--mode translate): the guests chose different ephemeral ports, ISNs and timestamp clocks',
    args: ['--mode', 'translate'],
    checkpoints: {},
    made: `The guest connects out to 10.0.0.1:443 (active open), sends an ${request.length}-byte request, acknowledges the server's response (the server's frames are not in the captures), closes with FIN and acknowledges the server's FIN. PVM: source port 51000, ISN 0x11112222, TSval from 5000000. SVM (raw, from its own tap): source port 52344, ISN 0xaaaabbbb, TSval from 1234567890. The SVM's SYN leaves 80 us before the PVM's.`,
    differs: 'Source port, sequence numbers and TSval of every SVM frame. Payload, flags and ACK numbers (the server\'s space) are the same.',
    correct: 'Pair the two SYNs of the same destination, learn the port map and the sequence and timestamp offsets from them, and compare the SVM\'s frames as the same connection in the PVM\'s space: no checkpoint. QEMU\'s filter-rewriter has no offset for guest-initiated connections, which costs a checkpoint (COLO-REFERENCE §6).',
    timeline: tl,
  };
});

define('fast-open-difference', function caseFastOpenDifference(rng) {
  const tl = new Timeline(rng);
  // The guest connects out with TCP Fast Open (RFC 7413): its request rides on the SYN.
  const p = new TcpConn({ isn: 0x0f0f1111, clientIsn: 0x7e7e0000, request: 0, guestPort: 51000, clientPort: 443, tsBase: 5_000_000 });
  const s = p.twin({ isn: 0xf0f02222, guestPort: 52344, tsBase: 1_234_567_890 });
  const request = (nonce: string): Uint8Array => ascii(`GET /feed?nonce=${nonce} HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n`);
  const asked = request('4f2a'), askedBySvm = request('4f2b');
  tl.t += 300;
  tl.s(s.syn({ payload: askedBySvm }), `SYN from port 52344 with ${askedBySvm.length} bytes of Fast Open data, nonce 4f2b`);
  tl.p(p.syn({ payload: asked }), `SYN from port 51000 with ${asked.length} bytes of Fast Open data, nonce 4f2a`, 80);
  tl.wait(CHECKPOINT_GAP_US);
  // The server accepted the data with the SYN; after the checkpoint the SVM is the PVM's copy.
  const acked = asked.length;
  for (let k = 1; k <= 3; k++) {
    p.clientSent(2 * MSS_PAYLOAD);
    tl.pair(p.ack(acked), p.ack(acked), `ACK of ${2 * k} server segments`, 500);
  }
  tl.pair(p.fin(acked), p.fin(acked), 'FIN');
  p.clientSent(1);
  tl.pair(p.ack(acked + 1), p.ack(acked + 1), 'ACK of the server\'s FIN', 900);
  return {
    summary: 'a guest-initiated connection with TCP Fast Open (--mode translate): the requests on the two guests\' SYNs differ in one byte',
    args: ['--mode', 'translate'],
    checkpoints: { 'tcp.payload': 1 },
    made: `The guest connects out to 10.0.0.1:443 with Fast Open: its ${asked.length}-byte request rides on the SYN. PVM: source port 51000, ISN 0x0f0f1111, nonce 4f2a; SVM (raw, from its own tap): source port 52344, ISN 0xf0f02222, nonce 4f2b, its SYN 80 us before the PVM's. After a ${CHECKPOINT_GAP_US / 1000} ms pause both guests acknowledge the server's response, close with FIN and acknowledge the server's FIN identically (the server's frames are not in the captures).`,
    differs: 'The last byte of the nonce in the data on the SYNs; ports, ISNs and TSvals differ as raw SVM output does.',
    correct: 'Data on a SYN is the first bytes of the stream: compare it once the SYNs are paired, and hold the PVM\'s SYN until it is verified. One checkpoint, reason tcp.payload, at the first byte of the stream; the SVM\'s differing request never reached the server, the PVM\'s SYN leaves at the checkpoint.',
    timeline: tl,
  };
});

define('raw-svm-guest-datagrams', function caseRawSvmGuestDatagrams(rng) {
  const tl = new Timeline(rng);
  // The guest resolves three names (a resolver's socket per query, so a random source port per
  // query and guest), then pings the server (ping's random identifier, per guest).
  const names = ['updates.example', 'mirror.example', 'time.example'];
  const pvmPorts = [40001, 43117, 38250];
  const svmPorts = [51234, 33690, 47002];
  const query = (i: number): Uint8Array => dnsQuery(0x2000 + i, names[i]!);
  tl.wait(400);
  for (let i = 0; i < names.length; i++) {
    tl.pair(udpFrom(pvmPorts[i]!, 53, query(i)), udpFrom(svmPorts[i]!, 53, query(i)), `DNS query for ${names[i]} from ${pvmPorts[i]} (PVM) and ${svmPorts[i]} (SVM)`, 3000);
  }
  const ping = (id: number, sequence: number): Uint8Array => emitIcmpEcho({
    src: GUEST, dst: CLIENT, srcMac: GUEST_MAC, dstMac: CLIENT_MAC, id, sequence, payload: Uint8Array.from({ length: 12 }, (_, k) => 0x61 + k),
  });
  for (let seq = 1; seq <= 3; seq++) tl.pair(ping(0x1111, seq), ping(0x2222, seq), `echo request ${seq}, identifier 0x1111 (PVM) and 0x2222 (SVM)`, 100_000);
  return {
    summary: 'guest-initiated DNS queries and pings in raw SVM output (--mode translate): each guest chose its own source ports and echo identifier',
    args: ['--mode', 'translate'],
    checkpoints: {},
    made: `The guest sends three DNS queries to 10.0.0.1:53 (${names.join(', ')}), each from a new socket, then three pings to 10.0.0.1 with 12 bytes of data and no timestamp. PVM: source ports ${pvmPorts.join(', ')}, echo identifier 0x1111. SVM (raw, from its own tap): source ports ${svmPorts.join(', ')}, echo identifier 0x2222. The answers are not in the captures.`,
    differs: 'The UDP source port of every query and the echo identifier of every request. Everything else is the same.',
    correct: 'Pair each guest\'s first datagram of a flow with the other\'s to the same destination, in order, and compare the flows as one, the guest\'s port (identifier) aside: no checkpoint. QEMU keys each guest\'s flow apart and never compares them: a timeout checkpoint per flow.',
    timeline: tl,
  };
});

// --- writing ---------------------------------------------------------------------------------

async function writeCapture(path: string, frames: Stamped[], side: string): Promise<void> {
  const w = await createCaptureFileWriter(path, 'pcapng', { application: 'colo-proxy make-golden-captures' });
  w.addInterface(LINKTYPE_ETHERNET, { name: side === 'primary' ? 'pvm-out' : 'svm-out' });
  for (const f of frames) await w.write({ timeNs: EPOCH_NS + BigInt(f.us) * 1000n, data: f.data, comment: f.comment });
  await w.close();
}

function reasonsText(c: Checkpoints): string {
  const entries = Object.entries(c);
  if (entries.length === 0) return 'no checkpoint';
  return entries.map(([r, n]) => `${n} checkpoint${n === 1 ? '' : 's'} for ${r}`).join(', ');
}

function noteText(c: Case, primary: number, secondary: number): string {
  const exit = Object.keys(c.checkpoints).length > 0 ? 1 : 0;
  const args = c.args.length > 0 ? ` ${c.args.join(' ')}` : '';
  return `# ${c.name}

${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.

Made by \`${c.fn}()\` in \`${SCRIPT}\` (\`npx tsx ${SCRIPT} ${c.name}\` rewrites this folder byte for byte). Replayed as

\`\`\`sh
colo-proxy replay --primary primary.pcapng --secondary secondary.pcapng${args}
\`\`\`

## The traffic

${c.made}

\`primary.pcapng\` holds ${primary} frames (the PVM's output), \`secondary.pcapng\` ${secondary} (the SVM's); each frame's comment says what it is.

## How the two sides differ

${c.differs}

## What a correct comparator must do

${c.correct}

Expected (\`case.json\`): exit ${exit}, ${reasonsText(c.checkpoints)}, ${primary} frames released (every primary frame exactly once).

## Conventions of the generated cases

Ethernet frames; the twin guests share MAC 52:54:00:12:34:56 and address 10.0.0.2 (fd00::2), the
client is 52:54:00:ab:cd:ef / 10.0.0.1 (fd00::1). Only the guests' output is captured, not the
client's frames. Times start at 2026-01-01T00:00:00Z; each secondary frame lies near its primary
counterpart, since replay merges both files into one virtual clock. Where a checkpoint is expected,
both guests are silent for ${CHECKPOINT_GAP_US / 1000} ms after the difference (replay answers a checkpoint 30 ms after
the request) and the SVM's later output is the PVM's again, as after a real checkpoint.
`;
}

async function writeCase(c: Case): Promise<void> {
  const dir = join(CAPTURES, c.name);
  await mkdir(dir, { recursive: true });
  const { primary, secondary } = c.timeline.finish();
  await writeCapture(join(dir, 'primary.pcapng'), primary, 'primary');
  await writeCapture(join(dir, 'secondary.pcapng'), secondary, 'secondary');
  const caseJson = {
    summary: c.summary,
    args: c.args,
    expect: {
      exit: Object.keys(c.checkpoints).length > 0 ? 1 : 0,
      checkpoints: c.checkpoints,
      released: primary.length,
    },
  };
  await writeFile(join(dir, 'case.json'), `${JSON.stringify(caseJson, null, 2)}\n`);
  await writeFile(join(dir, 'NOTE.md'), noteText(c, primary.length, secondary.length));
  console.log(`${c.name}: ${primary.length} primary, ${secondary.length} secondary frames; ${reasonsText(c.checkpoints)}`);
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  for (const name of wanted) {
    if (!(name in cases)) {
      console.error(`make-golden-captures: no case ${JSON.stringify(name)} (known: ${Object.keys(cases).join(', ')})`);
      process.exit(2);
    }
  }
  for (const [name, { fn, make }] of Object.entries(cases)) {
    if (wanted.length > 0 && !wanted.includes(name)) continue;
    await writeCase({ name, fn, ...make(new Rng(seedOf(name))) });
  }
}

await main();
