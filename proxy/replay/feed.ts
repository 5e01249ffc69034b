/**
 * The replay's input, ready for the comparator: the captures merged by time (merge.ts), each frame
 * routed to its side (route.ts) and made an Ethernet frame (as-ethernet.ts), packed into batches.
 *
 * Reading, decoding, merging and routing cost about as much per frame as the comparator itself
 * (bench/replay.ts: ~2.2-2.9 M frames/s for them alone, ~1.0-1.7 M for the session), so on a
 * large replay they run in a worker thread (feed-worker.ts) while the main thread compares: the
 * two halves overlap instead of adding up. A batch crosses threads without a copy: the frames lie
 * back to back in one buffer, with typed arrays of their ends, sides and times, all transferred.
 * The worker stays at most BATCHES_AHEAD batches ahead, so memory stays flat however long the
 * captures. Small inputs are read in the calling thread instead (the same code): starting a
 * worker costs more than it saves below SMALL_INPUT_BYTES. Either way the batches, and therefore
 * the replay, are identical.
 *
 * Errors found in the worker (a corrupt or unreadable capture, a link type replay cannot use)
 * are thrown in the main thread as the same classes with the same messages.
 */

import { Worker } from 'node:worker_threads';
import type { Side } from '../../compare/index.js';
import { CaptureFormatError } from '../framing/capture.js';
import { CaptureFileError } from '../ports/capture-file.js';
import { mergeCaptures } from './merge.js';
import { asEthernet } from './as-ethernet.js';
import { FrameRouter, ReplayInputError, type SkippedFrames } from './route.js';

/** What to read: the captures, the side each plays, and the guests' MAC (route.ts). */
export interface FeedInput {
  paths: string[];
  roles: Side[];
  guestMac: Uint8Array | undefined;
}

/** Routed frames in merged order; frame i is `bytes[ends[i - 1] ?? 0, ends[i])`. */
export interface FeedBatch {
  count: number;
  bytes: Uint8Array;
  ends: Uint32Array;
  /** SIDES index of each frame. */
  sides: Uint8Array;
  /** Capture time of each frame less that of the first frame of all inputs, in ns. */
  offsetsNs: Float64Array;
  /** Capture time of the first frame of all inputs, ns since the epoch. */
  baseNs: bigint;
  /** Input bytes read so far, over all files (for progress). */
  readBytes: number;
}

export const SIDES: readonly Side[] = ['primary', 'secondary', 'client'];

/** Frames and bytes per batch: large enough that messages are rare, small enough to start the comparator early. */
const BATCH_FRAMES = 4096;
const BATCH_BYTES = 1 << 20;
/** Batches the worker may have sent and the main thread not yet taken. */
export const BATCHES_AHEAD = 4;
/**
 * The worker's young generation. Each read chunk becomes thousands of short-lived frame records
 * that outlive a default-sized nursery while the merge walks them, so they were promoted and
 * collected the expensive way: 42 % of the reading thread's time was garbage collection, and
 * with a larger nursery it read 1.6-2x as many frames a second (measured with --max-semi-space-size).
 */
const WORKER_YOUNG_GENERATION_MB = 96;
/** Inputs smaller than this (all files together) are read in the calling thread. */
export const SMALL_INPUT_BYTES = 16 << 20;

/**
 * Packs routed frames into one batch: the frames into a buffer left uninitialised (every byte
 * handed over is written first), the per-frame arrays into one more, so that a batch crosses
 * threads as two transferred buffers.
 */
class BatchBuilder {
  private count = 0;
  private used = 0;
  private readonly bytes: Uint8Array;
  private readonly offsetsNs: Float64Array;
  private readonly ends: Uint32Array;
  private readonly sides: Uint8Array;

  constructor(size = BATCH_BYTES) {
    this.bytes = Buffer.allocUnsafeSlow(size);
    const meta = new ArrayBuffer(BATCH_FRAMES * 13);
    this.offsetsNs = new Float64Array(meta, 0, BATCH_FRAMES);
    this.ends = new Uint32Array(meta, BATCH_FRAMES * 8, BATCH_FRAMES);
    this.sides = new Uint8Array(meta, BATCH_FRAMES * 12, BATCH_FRAMES);
  }

  get empty(): boolean {
    return this.count === 0;
  }

  /** True when `length` more bytes fit. */
  fits(length: number): boolean {
    return this.count < BATCH_FRAMES && this.used + length <= this.bytes.length;
  }

  add(side: number, data: Uint8Array, offsetNs: number): void {
    this.bytes.set(data, this.used);
    this.used += data.length;
    this.ends[this.count] = this.used;
    this.sides[this.count] = side;
    this.offsetsNs[this.count] = offsetNs;
    this.count++;
  }

  batch(baseNs: bigint, readBytes: number): FeedBatch {
    return { count: this.count, bytes: this.bytes, ends: this.ends, sides: this.sides, offsetsNs: this.offsetsNs, baseNs, readBytes };
  }
}

/** The batches of `input`, read in this thread; returns what routing skipped. */
export async function* feedBatches(input: FeedInput): AsyncGenerator<FeedBatch, SkippedFrames> {
  const router = new FrameRouter(input.paths, input.roles, input.guestMac);
  const offsets = new Array<number>(input.paths.length).fill(0);
  const sideOf = new Map(SIDES.map((s, i) => [s, i]));
  let baseNs: bigint | undefined;
  let builder = new BatchBuilder();
  for await (const { frames, source } of mergeCaptures(input.paths.map((path) => ({ path })))) {
    baseNs ??= frames[0]!.timeNs;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      const from = source[i]!;
      offsets[from] = f.fileOffset;
      const side = router.route(f, from);
      if (side === undefined) continue;
      const data = asEthernet(f.linkType, f.data) ?? f.data;
      if (!builder.fits(data.length)) {
        if (!builder.empty) yield builder.batch(baseNs, sum(offsets));
        builder = new BatchBuilder(Math.max(BATCH_BYTES, data.length));
      }
      builder.add(sideOf.get(side)!, data, Number(f.timeNs - baseNs));
    }
  }
  if (!builder.empty) yield builder.batch(baseNs!, sum(offsets));
  return router.skipped;
}

function sum(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/** The batches of `input`: from a worker thread, or in this thread for small inputs (see the module header). */
export function readFeed(input: FeedInput, totalBytes: number, options: { worker?: boolean } = {}): AsyncGenerator<FeedBatch, SkippedFrames> {
  const worker = options.worker ?? totalBytes >= SMALL_INPUT_BYTES;
  return worker ? fromWorker(input) : feedBatches(input);
}

// --- across threads -------------------------------------------------------------------------

/** Messages from feed-worker.ts. */
export type WorkerMessage =
  | { type: 'batch'; batch: FeedBatch }
  | { type: 'end'; skipped: SkippedFrames }
  | { type: 'error'; error: SentError };

/** An error as it crosses threads (structured cloning keeps neither class nor fields). */
export type SentError =
  | { kind: 'format'; code: string; offset: number; problem: string; path: string | undefined }
  | { kind: 'file'; path: string; operation: string; cause: string }
  | { kind: 'input'; message: string }
  | { kind: 'other'; message: string; stack: string | undefined };

export function sendableError(e: unknown): SentError {
  if (e instanceof CaptureFormatError) return { kind: 'format', code: e.code, offset: e.offset, problem: e.problem, path: e.path };
  if (e instanceof CaptureFileError) return { kind: 'file', path: e.path, operation: e.operation, cause: e.cause instanceof Error ? e.cause.message : String(e.cause) };
  if (e instanceof ReplayInputError) return { kind: 'input', message: e.message };
  return { kind: 'other', message: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined };
}

function revivedError(s: SentError): Error {
  switch (s.kind) {
    case 'format':
      return new CaptureFormatError(s.code, s.offset, s.problem, s.path);
    case 'file':
      return new CaptureFileError(s.path, s.operation, new Error(s.cause));
    case 'input':
      return new ReplayInputError(s.message);
    case 'other': {
      const e = new Error(`replay input worker: ${s.message}`);
      if (s.stack !== undefined) e.stack = `${e.message}\n--- in the worker:\n${s.stack}`;
      return e;
    }
  }
}

/** The buffers a batch is made of, to transfer (the per-frame arrays share one). */
export function batchBuffers(b: FeedBatch): ArrayBuffer[] {
  return [b.bytes.buffer, b.ends.buffer] as ArrayBuffer[];
}

/**
 * Starts feed-worker. Run from the TypeScript sources (tests, bench: `node --import tsx`), the
 * worker has to register tsx itself, as Node 20 does not pass the parent's module hooks on to
 * worker threads; run from the built JavaScript it loads directly.
 */
function startWorker(input: FeedInput): Worker {
  const self = import.meta.url;
  const options = { workerData: { input }, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } };
  if (!self.endsWith('.ts')) return new Worker(new URL('./feed-worker.js', self), options);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(new URL('./feed-worker.ts', self).href);
  return new Worker(`import(${tsx}).then((tsx) => { tsx.register(); return import(${entry}); })`, { ...options, eval: true });
}

type Received = WorkerMessage | { type: 'crash'; error: Error } | { type: 'exit'; code: number };

async function* fromWorker(input: FeedInput): AsyncGenerator<FeedBatch, SkippedFrames> {
  const worker = startWorker(input);
  const queue: Received[] = [];
  let wake: (() => void) | undefined;
  const receive = (m: Received): void => {
    queue.push(m);
    wake?.();
  };
  worker.on('message', receive);
  worker.on('error', (error: Error) => receive({ type: 'crash', error }));
  worker.on('exit', (code: number) => receive({ type: 'exit', code }));
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      const m = queue.shift()!;
      switch (m.type) {
        case 'batch':
          worker.postMessage('more'); // taken: the worker may read one more ahead while this one is compared
          yield m.batch;
          break;
        case 'end':
          return m.skipped;
        case 'error':
          throw revivedError(m.error);
        case 'crash':
          throw m.error;
        case 'exit':
          throw new Error(`replay input worker exited with code ${m.code} before the end of the input`);
      }
    }
  } finally {
    await worker.terminate();
  }
}
