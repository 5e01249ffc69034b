/**
 * Several capture files read as one stream in capture-time order: the replay's virtual clock.
 *
 * Each input is read in chunks (proxy/ports/capture-file.ts), so memory does not grow with the
 * files. The merge is stable: frames with the same timestamp come in input order (the order of
 * `inputs`), then file order, so the same files always merge the same way. A file whose own
 * timestamps go backwards is not re-sorted (that would need unbounded memory); its frames come
 * out when they reach the head, and the consumer sees time step back and clamps it.
 */

import type { CapturedFrame } from '../framing/capture.js';
import { readCaptureBatches } from '../ports/capture-file.js';

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

/** Yields the frames of every input, merged by capture time (see the module header). */
export async function* mergeCaptures(inputs: readonly MergeInput[], options: { chunkSize?: number } = {}): AsyncGenerator<MergedBatch> {
  const cursors = inputs.map((input, i) => new Cursor(i, readCaptureBatches(input.path, options)));
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
        frames.push(best.batch[best.next++]!);
        source.push(best.index);
      }
      if (frames.length > 0) yield { frames, source };
    }
  } finally {
    await Promise.all(cursors.map((c) => c.reader.return(undefined)));
  }
}
