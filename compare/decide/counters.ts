/**
 * The comparator's counters, kept in the core and read by the front ends (metrics, reports).
 * Plain numbers and maps keyed by stable codes (events.ts, `decode.*`); nothing here resets, and a
 * front end that replaces its core carries the totals over (`carryOver`).
 * All are running totals except the gauges `heldFrames`, `heldBytes` and `secondaryWaitingFrames`.
 */

import type { MismatchReason } from '../events.js';

export class Counters {
  clientFrames = 0;
  primaryFrames = 0;
  secondaryFrames = 0;
  releasedFrames = 0;
  /** Primary frames held right now (a gauge, not a total). */
  heldFrames = 0;
  /** Their bytes, whole frames (a gauge). */
  heldBytes = 0;
  /** Secondary segments and messages waiting for their primary counterparts right now (a gauge). */
  secondaryWaitingFrames = 0;
  /** Payload bytes compared equal on both sides (TCP bytes verified, bodies of datagrams and other messages that matched). */
  comparedBytes = 0;
  /** Primary bytes released without comparison (mid-stream pickup before the SVM's first byte). */
  unverifiedBytes = 0;
  checkpointsDone = 0;
  /** Mismatches found while a checkpoint was already outstanding. */
  checkpointsCoalesced = 0;
  connectionsOpened = 0;
  connectionsClosed = 0;
  /** Mismatches by reason. */
  readonly mismatches = new Map<MismatchReason, number>();
  /** Checkpoint requests by the reason that triggered them. */
  readonly checkpoints = new Map<MismatchReason, number>();
  /** Other events by code (`decode.*`, `flow.*`, `client.*`). */
  readonly events = new Map<string, number>();

  /** Counts one mismatch of `reason`. */
  mismatch(reason: MismatchReason): void {
    this.mismatches.set(reason, (this.mismatches.get(reason) ?? 0) + 1);
  }

  /** Counts one checkpoint request caused by `reason`. */
  checkpointRequested(reason: MismatchReason): void {
    this.checkpoints.set(reason, (this.checkpoints.get(reason) ?? 0) + 1);
  }

  /** Counts one event of `code`. */
  count(code: string): void {
    this.events.set(code, (this.events.get(code) ?? 0) + 1);
  }

  /**
   * Adds the running totals of `earlier`, the counters of a core this one replaces, so that totals
   * do not fall back to zero (Prometheus takes a drop for a restart). Gauges are not carried: what
   * the earlier core held or had waiting was flushed or discarded with it. Its connections still
   * open count as closed, since they went with it.
   */
  carryOver(earlier: Counters): void {
    this.clientFrames += earlier.clientFrames;
    this.primaryFrames += earlier.primaryFrames;
    this.secondaryFrames += earlier.secondaryFrames;
    this.releasedFrames += earlier.releasedFrames;
    this.comparedBytes += earlier.comparedBytes;
    this.unverifiedBytes += earlier.unverifiedBytes;
    this.checkpointsDone += earlier.checkpointsDone;
    this.checkpointsCoalesced += earlier.checkpointsCoalesced;
    this.connectionsOpened += earlier.connectionsOpened;
    this.connectionsClosed += earlier.connectionsOpened;
    addInto(this.mismatches, earlier.mismatches);
    addInto(this.checkpoints, earlier.checkpoints);
    addInto(this.events, earlier.events);
  }

  /** Total checkpoint requests. */
  get checkpointRequests(): number {
    let n = 0;
    for (const v of this.checkpoints.values()) n += v;
    return n;
  }
}

function addInto<K>(to: Map<K, number>, from: ReadonlyMap<K, number>): void {
  for (const [k, v] of from) to.set(k, (to.get(k) ?? 0) + v);
}
