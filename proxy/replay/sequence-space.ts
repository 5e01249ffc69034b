/**
 * A check that the secondary capture is in the sequence space the replay was told it is in.
 *
 * A capture of the SVM's output taken after QEMU's filter-rewriter carries the PVM's sequence
 * numbers (except in the SVM's own SYN-ACK); one taken on the SVM's tap carries the SVM's own.
 * Replaying with the wrong `--mode` turns every TCP byte into a false mismatch, so the first
 * connections whose handshakes differ are sampled: does the secondary's first data segment start
 * just past the SVM's initial sequence number, or just past the PVM's? A stream's first segment
 * starts exactly there in the space it is in, and a gap between the ISNs, however small (twins
 * forked from one kernel state draw ISNs a few hundred apart), puts it elsewhere in the other.
 * Only a segment at exactly one of the two starts counts: a later one lies forward of both ISNs
 * (past the gap from the start) whichever space it is in, and one nearer one start than the
 * other says nothing when the first segment is missing from the capture or came late. The
 * majority of the first SAMPLES connections decides, and the caller warns if it contradicts the
 * mode. The check gives up after BUDGET frames (twins that chose the same ISNs, or captures
 * without their streams' first segments, have nothing to tell).
 */

import { Frame, decodeFrame, flowKey } from '../../compare/index.js';

/** Connections looked at before deciding. */
const SAMPLES = 8;
/** Guest frames looked at, at most: twins whose ISNs agree teach nothing, and decoding costs. */
const BUDGET = 100_000;

export type SecondarySpace = 'own' | 'primary';

export class SequenceSpaceCheck {
  private readonly isn = new Map<string, { primary?: number; secondary?: number; sampled?: true }>();
  private own = 0;
  private primary = 0;
  private looked = 0;

  /** True once enough has been seen; `observe` is then a no-op. */
  get done(): boolean {
    return this.own + this.primary >= SAMPLES || this.looked >= BUDGET;
  }

  /** The space the secondary's sequence numbers are in, when the samples tell. */
  get verdict(): SecondarySpace | undefined {
    if (this.own === this.primary) return undefined;
    return this.own > this.primary ? 'own' : 'primary';
  }

  /** Looks at one guest output frame. */
  observe(side: 'primary' | 'secondary', bytes: Uint8Array): void {
    if (this.done) return;
    this.looked++;
    const f = decodeFrame(bytes);
    if (!(f instanceof Frame) || f.transport?.kind !== 'tcp') return;
    const tcp = f.transport;
    const key = flowKey(f, true);
    if (tcp.isSyn) {
      const entry = this.isn.get(key) ?? {};
      entry[side] = tcp.seq;
      this.isn.set(key, entry);
      return;
    }
    if (side !== 'secondary' || (tcp.payloadLength === 0 && !tcp.isFin)) return;
    const entry = this.isn.get(key);
    if (entry?.primary === undefined || entry.secondary === undefined || entry.primary === entry.secondary || entry.sampled) return;
    // The first data byte of each space (RFC 9293 sequence arithmetic, mod 2^32).
    const ownStart = (entry.secondary + 1) >>> 0;
    const primaryStart = (entry.primary + 1) >>> 0;
    if (tcp.seq !== ownStart && tcp.seq !== primaryStart) return;
    entry.sampled = true;
    if (tcp.seq === ownStart) this.own++;
    else this.primary++;
  }
}
