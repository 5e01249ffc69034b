/**
 * One timer for the comparator core's deadlines: after each core call, `schedule` arms it for
 * `nextDeadline()` if that is earlier than what is armed (a later deadline needs no new timer:
 * the core reports its next one again when woken). `fire` runs the core's `advance`.
 */

export class DeadlineTimer {
  private timer: NodeJS.Timeout | null = null;
  private at = Infinity;
  private closed = false;

  constructor(
    private readonly nextDeadline: () => number | undefined,
    private readonly now: () => number,
    private readonly fire: () => void,
  ) {}

  schedule(): void {
    const at = this.nextDeadline();
    if (at === undefined || at >= this.at || this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.at = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.at = Infinity;
      this.fire();
    }, Math.max(0, Math.ceil(at - this.now())));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
