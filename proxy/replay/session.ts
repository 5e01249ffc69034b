/**
 * One replay: the comparator core driven by a virtual clock, with a simulated checkpoint
 * controller, recording everything the report needs.
 *
 * Time is the capture's: each frame is ingested at its capture time (milliseconds since the
 * first frame of all inputs); before it, the core is woken at every deadline it asked for and
 * every simulated "checkpoint done" that falls earlier, so timeouts fire exactly where they
 * would have in real time. A deadline already behind the current time (stale after the core sat
 * idle) is one wake at the current time, so an idle gap costs nothing however long it is. Time
 * never goes backwards: an earlier timestamp is clamped to the current time and counted. A checkpoint request is answered `checkpointMs` later; requests in
 * between are coalesced by the core. `finish` lets virtual time run on after the last frame until
 * nothing is held, so a silent secondary ends as a timeout checkpoint rather than frames
 * quietly never released. Memory is flat in the input size: delays go into a histogram, and at
 * most MAX_RECORDS mismatches and MAX_RECORDS checkpoint episodes are kept in detail (all are
 * counted).
 *
 * The session is the core's `ActionSink` (no action arrays), and tells the core that frames are
 * immutable (capture reads go into fresh buffers nothing writes to), so held frames are views,
 * not copies: measured 1.4 to 1.7 times the replay's frames/s on bench/replay.ts. The price is
 * that a held frame keeps its read chunk alive, so memory follows the capture bytes spanned by
 * the longest hold (at most the compare timeout's worth), not the held frames' own bytes.
 */

import hdr from 'hdr-histogram-js';
import { createComparator, resolveConfig, type ActionSink, type Comparator, type ComparatorConfig, type Mismatch, type MismatchReason, type Side } from '../../compare/index.js';
import { nodeBytesEqual } from '../engine/node-bytes-equal.js';

/** A mismatch as the report shows it. */
export interface MismatchRecord {
  /** Virtual time of the detection, ms since the first frame. */
  atMs: number;
  reason: MismatchReason;
  flow: string;
  /** TCP: the primary's sequence number where the sides differ; datagrams: index in the flow; -1: none. */
  sequence: number;
  /** First differing byte: from the start of the TCP stream, or within the datagram. */
  offset: number;
  primaryHex: string;
  secondaryHex: string;
  detail: string;
  /** The checkpoint episode it belongs to (1-based). */
  episode: number;
}

/** One checkpoint: requested, then done `checkpointMs` later. */
export interface EpisodeRecord {
  number: number;
  requestedAtMs: number;
  doneAtMs: number;
  reason: MismatchReason;
  flow: string;
  /** Mismatches detected from the request until done (the triggering one included). */
  mismatches: number;
  /** Primary frames released by the flush when it was done. */
  flushed: number;
}

export interface ReplaySettings {
  /** Virtual ms from a checkpoint request to "checkpoint done". */
  checkpointMs: number;
  comparator: Partial<ComparatorConfig>;
}

/** Mismatches, and checkpoint episodes, kept with their details; later ones are only counted. */
export const MAX_RECORDS = 1000;

/** Hooks for the writers of --out and --mismatch-dir. */
export interface ReplayObserver {
  released?(frame: Uint8Array, atMs: number): void;
  mismatch?(m: MismatchRecord): void;
}

export class ReplaySession implements ActionSink {
  readonly comparator: Comparator;
  private readonly config: ComparatorConfig;
  readonly mismatches: MismatchRecord[] = [];
  mismatchCount = 0;
  /** The first MAX_RECORDS episodes. */
  readonly episodes: EpisodeRecord[] = [];
  episodeCount = 0;
  /** The latest episode, listed or not. */
  private latest: EpisodeRecord | undefined;
  released = 0;
  releasedAtCheckpoints = 0;
  /** Timestamps earlier than the current virtual time (clamped). */
  timeBackwards = 0;
  /** Primary frames still held when the replay ended (should stay 0; the report says so if not). */
  unreleased = 0;
  /** Release delays in virtual microseconds; read them through `delays`. */
  private readonly delayHistogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 24 * 3600 * 1e6, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  /**
   * The latest delay not yet in the histogram, and how many releases in a row had it: recorded as
   * one `recordValueWithCount` when the value changes. Paced traffic repeats its delay for long
   * runs, and a `recordValue` (two logarithms and a power) cost ~5 % of a replay's time.
   */
  private runDelay = -1;
  private runLength = 0;
  private now = 0;
  /** Virtual time of the core call being carried out (the sink methods' time). */
  private at = 0;
  private doneAt: number | undefined;
  private flushing: EpisodeRecord | undefined;

  constructor(readonly settings: ReplaySettings, private readonly observer: ReplayObserver = {}) {
    this.config = resolveConfig({ bytesEqual: nodeBytesEqual, framesImmutable: true, ...settings.comparator });
    this.comparator = createComparator(this.config);
  }

  /** Release delay in virtual microseconds, every release so far. */
  get delays(): hdr.Histogram {
    if (this.runLength > 0) {
      this.delayHistogram.recordValueWithCount(this.runDelay, this.runLength);
      this.runLength = 0;
    }
    return this.delayHistogram;
  }

  /** Virtual time now, ms since the first frame. */
  get nowMs(): number {
    return this.now;
  }

  /** Feeds one frame at virtual time `atMs`. */
  ingest(side: Side, bytes: Uint8Array, atMs: number): void {
    if (atMs < this.now) {
      this.timeBackwards++;
      atMs = this.now;
    }
    this.runUntil(atMs);
    this.now = atMs;
    this.at = atMs;
    this.comparator.ingestTo(this, side, bytes, atMs, side === 'primary' ? atMs : undefined);
  }

  /** Runs virtual time on until nothing is held and no checkpoint is pending; returns the end time. */
  finish(): number {
    const c = this.comparator.counters;
    // Every wait ends within a timeout plus a scan plus a checkpoint; a few rounds of that bound any tail.
    const limit = this.now + 10 * (this.config.compareTimeoutMs + this.config.scanIntervalMs + this.settings.checkpointMs);
    while (c.heldFrames > 0 || c.secondaryWaitingFrames > 0 || this.comparator.checkpointPending || this.released < c.primaryFrames) {
      const next = this.nextWake();
      if (next === undefined || next > limit) break;
      this.runUntil(next);
      this.now = Math.max(this.now, next);
    }
    this.unreleased = c.primaryFrames - this.released;
    return this.now;
  }

  private nextWake(): number | undefined {
    const deadline = this.comparator.nextDeadline();
    if (this.doneAt === undefined) return deadline;
    return deadline === undefined ? this.doneAt : Math.min(deadline, this.doneAt);
  }

  /** Wakes the core at every deadline and checkpoint completion up to and including `t`. */
  private runUntil(t: number): void {
    for (;;) {
      const deadline = this.comparator.nextDeadline();
      const done = this.doneAt;
      if (done !== undefined && done <= t && (deadline === undefined || done <= deadline)) {
        this.doneAt = undefined;
        this.flushing = this.latest;
        this.at = done;
        this.comparator.checkpointDoneTo(this, done);
        this.flushing = undefined;
      } else if (deadline !== undefined && deadline <= t) {
        // A deadline behind the current time is stale (a core that sat idle across a gap may
        // still count scans from before it): one wake now, never one per scan interval across
        // the gap, and never at a time earlier than frames already ingested.
        const at = Math.max(deadline, this.now);
        this.at = at;
        this.comparator.advanceTo(this, at);
        // advance() at the deadline moves it past `at`; if it ever did not, this loop would
        // spin forever: fail loudly instead.
        const next = this.comparator.nextDeadline();
        if (next !== undefined && next <= at) throw new Error(`the comparator did not move its deadline past ${at} ms`);
      } else {
        return;
      }
    }
  }

  // --- ActionSink: the core calls these while `ingestTo`/`advanceTo`/`checkpointDoneTo` run, at time `at`.

  release(frame: Uint8Array, tag: unknown): void {
    this.released++;
    if (this.flushing !== undefined) {
      this.flushing.flushed++;
      this.releasedAtCheckpoints++;
    }
    if (typeof tag === 'number') {
      const delay = Math.round((this.at - tag) * 1000);
      if (delay === this.runDelay) {
        this.runLength++;
      } else {
        if (this.runLength > 0) this.delayHistogram.recordValueWithCount(this.runDelay, this.runLength);
        this.runDelay = delay;
        this.runLength = 1;
      }
    }
    this.observer.released?.(frame, this.at);
  }

  deliver(): void {
    // Nothing to send in a replay: the guests' captures already hold what they received.
  }

  drop(): void {
    // Secondary frames are consumed; nothing to do.
  }

  event(): void {
    // Counted by the core (counters.events); the report reads the counters.
  }

  mismatch(flow: string, m: Mismatch): void {
    // The core reports a mismatch before the checkpoint it causes: an episode is open only once
    // its request has been seen here.
    const open = this.doneAt !== undefined ? this.latest : undefined;
    if (open) open.mismatches++;
    this.mismatchCount++;
    const record: MismatchRecord = {
      atMs: this.at, reason: m.reason, flow, sequence: m.position, offset: m.offset,
      primaryHex: m.primaryHex, secondaryHex: m.secondaryHex, detail: m.detail,
      episode: open ? open.number : this.episodeCount + 1,
    };
    if (this.mismatches.length < MAX_RECORDS) this.mismatches.push(record);
    this.observer.mismatch?.(record);
  }

  checkpoint(reason: MismatchReason, flow: string): void {
    const episode: EpisodeRecord = {
      number: ++this.episodeCount, requestedAtMs: this.at, doneAtMs: this.at + this.settings.checkpointMs,
      reason, flow, mismatches: 1, flushed: 0,
    };
    if (this.episodes.length < MAX_RECORDS) this.episodes.push(episode);
    this.latest = episode;
    this.doneAt = episode.doneAtMs;
  }
}
