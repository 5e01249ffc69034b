/**
 * Work that must go on while frames keep the event loop from turning. cap drains a capture ring
 * in one native loop (`pcap_dispatch` until it returns no frame), calling into JavaScript once a
 * frame: while frames arrive at least as fast as they are handled (a flood, or frames that come
 * back to the interface they are injected on), that loop never ends and no timer, signal, IPC
 * message or metrics request is handled. A `CaptureStall` is told of every captured frame; once
 * frames have come for STALL_MS without the loop turning in between (a `setImmediate` marks each
 * turn), it calls `stalled` every CHECK_FRAMES frames, at most once per STALL_MS, for what cannot
 * wait for the loop: the core's deadlines, and whether the supervisor is still there. `ended` is
 * called at the first turn after a stall, with its length and frames.
 */

/** How long frames may keep the event loop from turning before `stalled` is called, ms. */
export const STALL_MS = 250;

/** Frames between two looks at the clock while the loop has not turned (a power of two). */
const CHECK_FRAMES = 256;

export interface StallHandlers {
  /** What cannot wait for the loop; called every STALL_MS or so while it has not turned for `ms`. */
  stalled(ms: number): void;
  /** One line for the log: when a stall begins and when it ends. */
  log(line: string): void;
}

export class CaptureStall {
  /** Frames since the loop last turned. */
  private frames = 0;
  /** When the first frame since the loop last turned came (the loop was free until then). */
  private since = 0;
  /** When `stalled` was last called, or -1 when the loop has turned since. */
  private calledAt = -1;
  private turnPending = false;

  constructor(private readonly now: () => number, private readonly handlers: StallHandlers) {}

  /** One captured frame (called before it is handled). */
  frame(): void {
    if (!this.turnPending) {
      this.turnPending = true;
      this.frames = 0;
      this.since = this.now();
      setImmediate(this.turned);
    }
    if ((++this.frames & (CHECK_FRAMES - 1)) !== 0) return;
    const t = this.now();
    if (t - this.since < STALL_MS || (this.calledAt >= 0 && t - this.calledAt < STALL_MS)) return;
    if (this.calledAt < 0) {
      this.handlers.log(`capture: frames have kept the event loop busy for ${Math.round(t - this.since)} ms, arriving as fast as they are handled (a flood, or frames that come back where they are injected): timeouts are checked between frames; signals, metrics and the controller wait until it turns`);
    }
    this.calledAt = t;
    this.handlers.stalled(t - this.since);
  }

  private readonly turned = (): void => {
    this.turnPending = false;
    if (this.calledAt < 0) return;
    this.calledAt = -1;
    this.handlers.log(`capture: the event loop turns again, after ${Math.round(this.now() - this.since)} ms and ${this.frames} frames without`);
  };
}
