/**
 * The frame record every capture decoder yields (see capture.ts for the decoders' contract). Its
 * own module, so that pcap.ts and pcapng.ts can construct it without leaning on the import cycle
 * between them and capture.ts.
 */

const NS_PER_S = 1_000_000_000;

/**
 * One captured packet, as read from a pcap or pcapng file. The capture time is held as two
 * numbers, whole seconds and the nanoseconds past them, which together are exact (nanoseconds
 * since the epoch need 61 bits, more than a double holds); `timeNs` gives it as one BigInt, built
 * only when asked. A BigInt per frame cost ~55 ns of the ~270 ns a pcap frame took to decode, and
 * comparing and subtracting BigInts cost the replay's merge as much again.
 */
export class CapturedFrame {
  /** Capture time: whole seconds since the Unix epoch (negative before it). */
  readonly seconds: number;
  /** Capture time: nanoseconds past `seconds`, 0 to 999,999,999 (finer resolutions truncated). */
  readonly nanoseconds: number;

  constructor(
    /** pcapng interface id within its section; 0 for classic pcap. */
    readonly interfaceId: number,
    /** LINKTYPE_* of that interface. */
    readonly linkType: number,
    seconds: number,
    /** Any non-negative integer; whole seconds in it are carried into `seconds`. */
    nanoseconds: number,
    /** Captured bytes; shorter than `originalLength` when the capture was snapped. */
    readonly data: Uint8Array,
    /** Length of the packet on the wire, as recorded. */
    readonly originalLength: number,
    /** First pcapng `opt_comment` of the packet block; undefined otherwise. */
    readonly comment: string | undefined,
    /** Byte offset in the input where the frame's record or block starts. */
    readonly fileOffset: number,
    /**
     * No capture time: a pcapng Simple Packet Block read before any block of its input that has
     * one (`seconds` and `nanoseconds` are then 0). Such a frame sorts before every timed one.
     */
    readonly untimed = false,
  ) {
    if (nanoseconds >= NS_PER_S) {
      const carry = Math.floor(nanoseconds / NS_PER_S);
      seconds += carry;
      nanoseconds -= carry * NS_PER_S;
    }
    this.seconds = seconds;
    this.nanoseconds = nanoseconds;
  }

  /** Capture time in nanoseconds since the Unix epoch, exact. */
  get timeNs(): bigint {
    return BigInt(this.seconds) * 1_000_000_000n + BigInt(this.nanoseconds);
  }

  /** True when this frame was captured before `other`; an untimed frame comes before every timed one. */
  before(other: CapturedFrame): boolean {
    if (this.untimed || other.untimed) return this.untimed && !other.untimed;
    return this.seconds < other.seconds || (this.seconds === other.seconds && this.nanoseconds < other.nanoseconds);
  }

  /** Milliseconds from `origin`'s capture time to this frame's (negative if earlier). */
  msSince(origin: CapturedFrame): number {
    return (this.seconds - origin.seconds) * 1000 + (this.nanoseconds - origin.nanoseconds) / 1e6;
  }
}
