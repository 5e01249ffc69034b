/**
 * A check that the secondary capture is in the sequence space the replay was told it is in.
 *
 * A capture of the SVM's output taken after QEMU's filter-rewriter carries the PVM's sequence
 * numbers (except in the SVM's own SYN-ACK); one taken on the SVM's tap carries the SVM's own.
 * Replaying with the wrong `--mode` turns every TCP byte into a false mismatch, so the first
 * connections whose handshakes differ are sampled: is the first secondary data segment of each
 * nearer the start of the SVM's stream (just past its initial sequence number) or of the PVM's?
 * The first segment of a stream lies at its start (offset 0, or near it when the capture missed
 * or reordered some), where the two readings differ by the gap between the ISNs, however small:
 * twins forked from one kernel state draw ISNs a few hundred apart, and "within 2^24 of it" held
 * for both readings of every segment there. Later segments are not looked at: past that gap from
 * the start, a segment lies forward of both ISNs in either space. The majority of the first SAMPLES
 * connections decides, and the caller warns if it contradicts the mode. The check gives up after
 * BUDGET frames (twins that chose the same ISNs have nothing to tell).
 */

import { Frame, decodeFrame, flowKey } from '../../compare/index.js';

/** Connections looked at before deciding. */
const SAMPLES = 8;
/** Guest frames looked at, at most: twins whose ISNs agree teach nothing, and decoding costs. */
const BUDGET = 100_000;
/** How far past an initial sequence number a stream's first segment may lie and still count. */
const NEAR = 1 << 24;

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
    entry.sampled = true;
    // Offsets from the start of each stream, forward (RFC 9293 sequence arithmetic, mod 2^32).
    const fromOwn = (tcp.seq - entry.secondary - 1) >>> 0;
    const fromPrimary = (tcp.seq - entry.primary - 1) >>> 0;
    if (Math.min(fromOwn, fromPrimary) >= NEAR) return;
    if (fromOwn < fromPrimary) this.own++;
    else this.primary++;
  }
}
