/**
 * Keeps bursts of per-flow log lines (mismatches, core events) from flooding the log. A workload
 * whose output always differs (an HTTP Date header, say) makes every active connection mismatch
 * once per checkpoint: thousands of lines a second, each written synchronously on the path that
 * releases frames. Up to `perWindow` lines of a kind go out in each window of `windowMs`; the rest
 * are counted, and when the window closes one line says how many were left out. The metrics count
 * every mismatch and event, so nothing is lost to an operator, only repeated.
 */

export interface LogLimiterOptions {
  /** Lines of one kind written per window (default 20). */
  perWindow?: number;
  /** Window length, ms (default 1000). */
  windowMs?: number;
  /** The clock, ms (default performance.now). */
  now?: () => number;
  /** Runs `fn` after `ms` without keeping the process alive (default an unref'd setTimeout). */
  later?: (fn: () => void, ms: number) => void;
}

interface Window {
  start: number;
  written: number;
  left: number;
}

export class LogLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly later: (fn: () => void, ms: number) => void;

  constructor(private readonly log: (line: string) => void, o: LogLimiterOptions = {}) {
    this.perWindow = o.perWindow ?? 20;
    this.windowMs = o.windowMs ?? 1000;
    this.now = o.now ?? (() => performance.now());
    this.later = o.later ?? ((fn, ms) => setTimeout(fn, ms).unref());
  }

  /** Writes `text`, a line of `kind` ('mismatch', 'event'), unless this window has had its share. */
  line(kind: string, text: string): void {
    const t = this.now();
    let w = this.windows.get(kind);
    if (w === undefined || t - w.start >= this.windowMs) {
      if (w !== undefined) this.close(kind, w);
      w = { start: t, written: 0, left: 0 };
      this.windows.set(kind, w);
    }
    if (w.written < this.perWindow) {
      w.written++;
      this.log(text);
      return;
    }
    if (w.left++ === 0) {
      const window = w;
      this.later(() => this.close(kind, window), window.start + this.windowMs - t);
    }
  }

  /** Says how many lines `w` left out, once. */
  private close(kind: string, w: Window): void {
    if (w.left === 0) return;
    this.log(`${w.left} more ${kind} line${w.left === 1 ? '' : 's'} left out of the log in ${this.windowMs} ms (the metrics count every one)`);
    w.left = 0;
  }
}
