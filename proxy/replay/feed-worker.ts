/**
 * The worker thread of feed.ts: reads, merges and routes the captures and posts the batches to
 * the main thread, transferring their buffers, never more than BATCHES_AHEAD ahead of what the
 * main thread has taken (it answers each batch it takes with a 'more' message).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { BATCHES_AHEAD, batchBuffers, feedBatches, sendableError, type FeedInput, type WorkerMessage } from './feed.js';

const port = parentPort!;
const { input } = workerData as { input: FeedInput };

let credit = BATCHES_AHEAD;
let wake: (() => void) | undefined;
port.on('message', () => {
  credit++;
  wake?.();
});

function post(m: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

try {
  const batches = feedBatches(input);
  for (;;) {
    const r = await batches.next();
    if (r.done) {
      post({ type: 'end', skipped: r.value });
      break;
    }
    while (credit === 0) await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
    credit--;
    post({ type: 'batch', batch: r.value }, batchBuffers(r.value));
  }
} catch (e) {
  post({ type: 'error', error: sendableError(e) });
}
port.close();
