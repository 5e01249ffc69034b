/**
 * What goes into the comparator and what comes out. Inputs are frames from three sides with the
 * caller's time; outputs are `Action` values, in the order the caller must carry them out.
 *
 * Guarantees to the caller: every primary frame ingested leaves exactly once as a `release`,
 * in the primary's order within its connection (and in arrival order across connections when a
 * checkpoint flushes them); every secondary frame is answered by exactly one `drop` at ingest;
 * every client frame is delivered once to the primary at ingest and once to the secondary (at
 * ingest, or later once its sequence translation is known, or never when a checkpoint made it
 * redundant, which a `client.discarded` event reports) — and in translate mode a TCP segment the
 * SVM's ACKs show it dropped, though the PVM took it, is delivered to the secondary again
 * (counted as `client.redelivered`).
 *
 * The same actions can be taken as calls instead of values (`ActionSink`, `Comparator.ingestTo`),
 * with the same guarantees and order; that path allocates no `Action` objects and no arrays.
 */

import type { MismatchReason } from './events.js';
import type { Mismatch } from './match/mismatch.js';

/** Where a frame came from: the network towards the guest, the PVM's output, the SVM's output. */
export type Side = 'client' | 'primary' | 'secondary';

export type Action =
  /**
   * Send this primary frame to the client. The bytes may be a copy of the frame ingested; `tag` is
   * whatever the caller passed with it to `ingest` (a front end's per-frame metadata, such as the
   * virtio-net header to write back with it), undefined when none was.
   */
  | { kind: 'release'; frame: Uint8Array; tag: unknown }
  /** Send this client frame to a guest (for the secondary, translated into its sequence space). */
  | { kind: 'deliver'; to: 'primary' | 'secondary'; frame: Uint8Array }
  /** This secondary frame was consumed; it never goes anywhere. */
  | { kind: 'drop'; frame: Uint8Array }
  /** The two sides differ (or could not be compared); one per detection, counted by reason. */
  | { kind: 'mismatch'; flow: string; mismatch: Mismatch }
  /** Ask the checkpoint controller for a checkpoint; at most one until `checkpointDone` (or `resynchronize`). */
  | { kind: 'checkpoint'; reason: MismatchReason; flow: string }
  /** Something worth counting or logging that is not a mismatch (a decode error, an eviction). */
  | { kind: 'event'; code: string; flow: string; detail: string };

/**
 * Takes actions as calls: one call per action, in the order `ingest` would return them, with the
 * same fields (a `release` action is a `release(frame, tag)` call, and so on). The comparator
 * calls it during `ingestTo`, `advanceTo`, `checkpointDoneTo` and `resynchronizeTo`; a sink must not call back into
 * the comparator from inside a call (it throws), and whatever it keeps of the arguments it may
 * keep as it would keep an `Action`'s.
 */
export interface ActionSink {
  release(frame: Uint8Array, tag: unknown): void;
  deliver(to: 'primary' | 'secondary', frame: Uint8Array): void;
  drop(frame: Uint8Array): void;
  mismatch(flow: string, mismatch: Mismatch): void;
  checkpoint(reason: MismatchReason, flow: string): void;
  event(code: string, flow: string, detail: string): void;
}

/** An `ActionSink` that turns each call back into its `Action`, appended to `actions`. */
export class ActionList implements ActionSink {
  actions: Action[] = [];

  release(frame: Uint8Array, tag: unknown): void {
    this.actions.push({ kind: 'release', frame, tag });
  }

  deliver(to: 'primary' | 'secondary', frame: Uint8Array): void {
    this.actions.push({ kind: 'deliver', to, frame });
  }

  drop(frame: Uint8Array): void {
    this.actions.push({ kind: 'drop', frame });
  }

  mismatch(flow: string, mismatch: Mismatch): void {
    this.actions.push({ kind: 'mismatch', flow, mismatch });
  }

  checkpoint(reason: MismatchReason, flow: string): void {
    this.actions.push({ kind: 'checkpoint', reason, flow });
  }

  event(code: string, flow: string, detail: string): void {
    this.actions.push({ kind: 'event', code, flow, detail });
  }
}
