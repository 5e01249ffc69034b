/**
 * Several capture files read as one stream in capture-time order: the replay's virtual clock.
 *
 * Each input is read in chunks (proxy/ports/capture-file.ts), so memory does not grow with the
 * files. The merge is stable: frames with the same timestamp come in input order (the order of
 * `inputs`), then file order, so the same files always merge the same way. A file whose own
 * timestamps go backwards is not re-sorted (that would need unbounded memory); its frames come
 * out when they reach the head, and the consumer sees time step back and clamps it.
 *
 * Two kinds of frame stop the merge with a `ReplayInputError` naming the file and byte offset,
 * since no replay of them could be trusted:
 * - a frame captured short of its length on the wire (a snap length, as `tcpdump -s 200` or a
 *   pcapng interface's snaplen cut it): the bytes that were cut off can differ between the
 *   guests, and the comparator, seeing only what was kept, would call the frames equal;
 * - a frame captured further than MAX_SPAN_MS from the first frame merged: a writer's mistake
 *   (nanoseconds under pcapng's default microsecond resolution, or under if_tsresol 0), not a
 *   capture, and a virtual clock that far on in double milliseconds could no longer step by the
 *   comparator's scan interval.
 */

import type { CapturedFrame } from '../framing/capture.js';
import { readCaptureBatches } from '../ports/capture-file.js';
import { ReplayInputError } from './route.js';

/** One capture file to merge. */
export interface MergeInput {
  path: string;
}

/** A run of merged frames: `frames[i]` came from `inputs[source[i]]`. */
export interface MergedBatch {
  frames: CapturedFrame[];
  source: number[];
}

/** Frames per yielded batch (a batch is also cut when an input needs its next chunk read). */
const BATCH = 4096;

/** The furthest a frame's capture time may be from the first frame's: about 31.7 years (see the module header). */
const MAX_SPAN_MS = 1e12;

class Cursor {
  batch: CapturedFrame[] = [];
  next = 0;
  done = false;
  constructor(readonly index: number, readonly reader: AsyncGenerator<CapturedFrame[]>) {}

  get head(): CapturedFrame | undefined {
    return this.batch[this.next];
  }

  /** Reads the next chunk if this one is used up; false once the file is over. */
  async fill(): Promise<boolean> {
    while (!this.done && this.next >= this.batch.length) {
      const r = await this.reader.next();
      if (r.done) {
        this.done = true;
        this.batch = [];
      } else {
        this.batch = r.value;
      }
      this.next = 0;
    }
    return !this.done;
  }
}

/**
 * Yields the frames of every input, merged by capture time (see the module header). `signal`
 * stops it at once, even while an input is a pipe whose writer is quiet (the pending read ends
 * with the signal's reason); so does an error of one input, or the consumer leaving early.
 */
export async function* mergeCaptures(inputs: readonly MergeInput[], options: { chunkSize?: number; signal?: AbortSignal | undefined } = {}): AsyncGenerator<MergedBatch> {
  // Aborted by `signal`, and when the merge ends however it ends: a reader's `return()` waits
  // for its pending read, which for a quiet pipe is the writer's next word.
  const stop = new AbortController();
  const outer = options.signal;
  const follow = (): void => stop.abort(outer!.reason);
  if (outer?.aborted) follow();
  outer?.addEventListener('abort', follow, { once: true });
  const cursors = inputs.map((input, i) => new Cursor(i, readCaptureBatches(input.path, { ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}), signal: stop.signal })));
  /** The first timed frame merged, and its file. */
  let origin: { frame: CapturedFrame; path: string } | undefined;
  try {
    let live = cursors.slice();
    for (;;) {
      const filled = await Promise.all(live.map((c) => c.fill()));
      live = live.filter((_, i) => filled[i]);
      if (live.length === 0) return;
      const frames: CapturedFrame[] = [];
      const source: number[] = [];
      // Take frames while every live input has one in memory: the earliest head goes next.
      while (frames.length < BATCH) {
        let best: Cursor | undefined;
        let exhausted = false;
        for (const c of live) {
          const head = c.head;
          if (head === undefined) {
            exhausted = true;
            break;
          }
          if (best === undefined || head.before(best.head!)) best = c;
        }
        if (exhausted || best === undefined) break;
        const f = best.batch[best.next++]!;
        if (!f.untimed && origin === undefined) origin = { frame: f, path: inputs[best.index]!.path };
        checkFrame(f, inputs[best.index]!.path, origin);
        frames.push(f);
        source.push(best.index);
      }
      if (frames.length > 0) yield { frames, source };
    }
  } finally {
    outer?.removeEventListener('abort', follow);
    stop.abort(new Error('the merge ended'));
    await Promise.all(cursors.map((c) => c.reader.return(undefined)));
  }
}

/**
 * Throws for a frame no replay can use (see the module header). Of two capture times decades
 * apart either may be the wrong one (the first frame merged is the earliest, and a writer's unit
 * error can make times too small as well as too large), so both frames are named.
 */
function checkFrame(f: CapturedFrame, path: string, origin: { frame: CapturedFrame; path: string } | undefined): void {
  if (f.data.length < f.originalLength) {
    throw new ReplayInputError(`${path}: the frame at byte ${f.fileOffset} was captured short, ${f.data.length} of its ${f.originalLength} bytes (the capture's snap length): a replay compares whole frames, so capture without one (tcpdump -s 0)`);
  }
  if (origin === undefined || f.untimed) return;
  const span = f.msSince(origin.frame);
  if (Math.abs(span) > MAX_SPAN_MS) {
    const years = Math.abs(span) / (365.25 * 24 * 3600 * 1000);
    throw new ReplayInputError(`${path}: the frame at byte ${f.fileOffset} was captured ${years.toPrecision(3)} years ${span > 0 ? 'after' : 'before'} the frame at byte ${origin.frame.fileOffset} of ${origin.path}: one of the two has its capture times wrong (a writer's unit error, such as nanoseconds without if_tsresol)`);
  }
}
