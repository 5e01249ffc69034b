/**
 * The ledger of a replay into another comparator: every primary frame sent is entered, every frame
 * the comparator releases is checked off against it, so the run can say whether each frame came out
 * exactly once and in order within its flow (across flows a comparator may release in any order).
 *
 * It keeps only what is still owed: per flow, the frames sent and not yet released, under their
 * SHA-1, in sending order. A flow's entry goes once nothing of it is owed, so memory follows what
 * the comparator holds (and what it lost), not the length of the capture. Dropping it loses
 * nothing: anything of that flow released later was either sent later (so cannot be out of
 * order) or never sent (a duplicate).
 */

import { createHash } from 'node:crypto';
import { Frame, decodeFrame, flowKey } from '../../compare/index.js';

/** What one flow still owes: positions (in sending order) of its frames sent and not released, by digest. */
interface Owed {
  byDigest: Map<string, number[]>;
  count: number;
  /** The highest sending position released so far in this flow. */
  lastReleased: number;
}

export class ReleaseAudit {
  private readonly flows = new Map<string, Owed>();
  private nextPosition = 0;
  /** Frames sent and not yet released. */
  owed = 0;
  /** Released frames checked off against one sent. */
  released = 0;
  /** Released frames beyond the copies sent: the same frame out twice, or one never sent. */
  duplicated = 0;
  /** Released frames that came out after a frame of their flow that was sent later. */
  reordered = 0;

  get sent(): number {
    return this.nextPosition;
  }

  /** Flows with frames sent and not yet released. */
  get flowsOwing(): number {
    return this.flows.size;
  }

  /** Enters a primary frame as it is sent. */
  send(frame: Uint8Array): void {
    const flow = flowOf(frame);
    let owed = this.flows.get(flow);
    if (owed === undefined) {
      owed = { byDigest: new Map(), count: 0, lastReleased: -1 };
      this.flows.set(flow, owed);
    }
    const d = digest(frame);
    const positions = owed.byDigest.get(d);
    if (positions === undefined) owed.byDigest.set(d, [this.nextPosition]);
    else positions.push(this.nextPosition);
    owed.count++;
    this.owed++;
    this.nextPosition++;
  }

  /** Checks off a frame the comparator released. */
  release(frame: Uint8Array): void {
    const flow = flowOf(frame);
    const owed = this.flows.get(flow);
    const d = digest(frame);
    const positions = owed?.byDigest.get(d);
    if (owed === undefined || positions === undefined) {
      this.duplicated++;
      return;
    }
    const position = positions.shift()!;
    if (positions.length === 0) owed.byDigest.delete(d);
    if (position < owed.lastReleased) this.reordered++;
    else owed.lastReleased = position;
    this.released++;
    this.owed--;
    if (--owed.count === 0) this.flows.delete(flow);
  }
}

function flowOf(frame: Uint8Array): string {
  const decoded = decodeFrame(frame);
  return decoded instanceof Frame ? flowKey(decoded, true) : '';
}

function digest(frame: Uint8Array): string {
  return createHash('sha1').update(frame).digest('base64');
}
