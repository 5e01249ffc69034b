/**
 * Work that must go on while frames keep the event loop from turning. cap drains a capture ring
 * in one native loop (`pcap_dispatch` until it returns no frame), calling into JavaScript once a
 * frame: while frames arrive at least as fast as they are handled (a flood, or frames that come
 * back to the interface they are injected on), that loop never ends and no timer, signal, IPC
 * message or metrics request is handled. A `CaptureStall` is told of every captured frame; once
 * frames have come for STALL_MS without the loop turning in between (a `setImmediate` marks each
 * turn), it calls `stalled` every CHECK_FRAMES frames, at most once per STALL_MS, for what cannot
 * wait for the loop (`run`: the core's deadlines; both live commands: whether the supervisor is
 * still there). It says in the log when a stall begins and when it ends, at most one such pair
 * every QUIET_MS: the stalls in between are summed up in the next begin line.
 */

/** How long frames may keep the event loop from turning before `stalled` is called, ms. */
export const STALL_MS = 250;

/** Frames between two looks at the clock while the loop has not turned (a power of two). */
const CHECK_FRAMES = 256;

/** Least time between two stalls' lines in the log, ms. */
export const QUIET_MS = 10_000;

export interface StallHandlers {
  /** What cannot wait for the loop; called every STALL_MS or so while it has not turned for `ms`. */
  stalled(ms: number): void;
  /** One line for the log: when a stall begins and when it ends (see the header). */
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
  /** Whether the current stall was said in the log (its end is said too). */
  private logged = false;
  /** When a stall was last said in the log. */
  private loggedAt = -Infinity;
  /** Stalls since then not said, and their time in all, ms. */
  private unsaid = 0;
  private unsaidMs = 0;

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
    if (this.calledAt < 0 && t - this.loggedAt >= QUIET_MS) {
      const earlier = this.unsaid === 0 ? '' : ` (and ${this.unsaid} more since the last one said here, ${Math.round(this.unsaidMs)} ms in all)`;
      this.handlers.log(`capture: frames have kept the event loop busy for ${Math.round(t - this.since)} ms, arriving as fast as they are handled (a flood, or frames that come back where they are injected)${earlier}: timeouts are found between frames; signals, metrics, the controller and checkpoints wait until it turns`);
      this.logged = true;
      this.loggedAt = t;
      this.unsaid = 0;
      this.unsaidMs = 0;
    }
    this.calledAt = t;
    this.handlers.stalled(t - this.since);
  }

  private readonly turned = (): void => {
    this.turnPending = false;
    if (this.calledAt < 0) return;
    this.calledAt = -1;
    const ms = this.now() - this.since;
    if (this.logged) {
      this.logged = false;
      this.handlers.log(`capture: the event loop turns again, after ${Math.round(ms)} ms and ${this.frames} frames without`);
    } else {
      this.unsaid++;
      this.unsaidMs += ms;
    }
  };
}
