/**
 * A check that the secondary capture is in the sequence space the replay was told it is in.
 *
 * A capture of the SVM's output taken after QEMU's filter-rewriter carries the PVM's sequence
 * numbers (except in the SVM's own SYN-ACK); one taken on the SVM's tap carries the SVM's own.
 * Replaying with the wrong `--mode` turns every TCP byte into a false mismatch, so the first
 * connections whose handshakes differ are sampled: for each secondary data segment, is its
 * sequence number near the SVM's initial one or near the PVM's? The majority of the first
 * SAMPLES answers decides, and the caller warns if it contradicts the mode. The check gives up
 * after BUDGET frames (twins that chose the same ISNs have nothing to tell).
 */

import { Frame, decodeFrame, flowKey } from '../../compare/index.js';

/** Data segments looked at before deciding. */
const SAMPLES = 8;
/** Guest frames looked at, at most: twins whose ISNs agree teach nothing, and decoding costs. */
const BUDGET = 100_000;
/** How far past an initial sequence number a sample may lie and still count as near it. */
const NEAR = 1 << 24;

export type SecondarySpace = 'own' | 'primary';

export class SequenceSpaceCheck {
  private readonly isn = new Map<string, { primary?: number; secondary?: number }>();
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
    if (entry?.primary === undefined || entry.secondary === undefined || entry.primary === entry.secondary) return;
    const nearOwn = ((tcp.seq - entry.secondary - 1) >>> 0) < NEAR;
    const nearPrimary = ((tcp.seq - entry.primary - 1) >>> 0) < NEAR;
    if (nearOwn && !nearPrimary) this.own++;
    else if (nearPrimary && !nearOwn) this.primary++;
  }
}
