/**
 * Capture files on disk: streaming readers over the pure decoders of proxy/framing, and a
 * buffered writer over the pure encoders.
 *
 * Reading never holds more than one read chunk plus the largest record in memory. Each read goes
 * into a fresh buffer, so the frames' `data` (subarrays of those buffers, plain Uint8Arrays) stay
 * valid for good; a frame kept long keeps its whole chunk (1 MiB by default) alive, so copy at the
 * queue boundary. Breaking out of the loop closes the file. A pipe (a FIFO, `/dev/stdin` fed by
 * `tcpdump -w -`) is read through a socket of the event loop, not the thread pool: a
 * read blocked in the thread pool on a pipe whose writer stays open cannot be cancelled, and the
 * stop (a decoding error, `inspect --limit`) would wait for the writer, for ever on a quiet link.
 *
 * Errors: the file system's become `CaptureFileError` (code `capture.io`, with `path` and the
 * original error as `cause`; the message names the path once, without Node's trailing copy of
 * it); corrupt content throws the decoders' `CaptureFormatError`, with
 * `path` set. A writer's misuse (a pcap with two interfaces, a frame naming an interface not
 * added, a `write` before the previous one settled) throws Error or RangeError.
 */

import { close as closeCallback, fstat as fstatCallback, read as readCallback, open as openCallback } from 'node:fs';
import { open } from 'node:fs/promises';
import { Socket } from 'node:net';
import { promisify } from 'node:util';
import { systemReason } from './system-reason.js';
import type { FileHandle } from 'node:fs/promises';
import { CaptureFormatError, createCaptureDecoder } from '../framing/capture.js';
import type { CapturedFrame } from '../framing/capture.js';
import { PcapWriter } from '../framing/pcap.js';
import { PcapngWriter } from '../framing/pcapng.js';
import type { PcapngInterfaceOptions } from '../framing/pcapng.js';

/** A file-system failure while reading or writing a capture file. */
export class CaptureFileError extends Error {
  override readonly name = 'CaptureFileError';
  readonly code = 'capture.io';

  constructor(
    /** The capture file concerned. */
    readonly path: string,
    /** What was being done: 'open', 'read', 'write', 'close'. */
    readonly operation: string,
    cause: unknown,
  ) {
    super(`${path}: cannot ${operation} capture file: ${systemReason(cause)} (capture.io)`, { cause });
  }
}


/** Options of the readers. */
export interface ReadCaptureOptions {
  /** Bytes per read; default 1 MiB. */
  chunkSize?: number;
  /**
   * Stops a pipe's reading at once: a read waiting for its writer ends with the signal's reason
   * (a file's reads never wait long). Aborted before `return()` on a generator whose `next()` is
   * still pending, it lets that `return()` settle without the writer.
   */
  signal?: AbortSignal;
}

const DEFAULT_CHUNK = 1 << 20;

// Descriptors as numbers, not FileHandles: a pipe's goes to a Socket (see the module header).
const openFd = promisify(openCallback);
const fstatFd = promisify(fstatCallback);
const readFd = promisify(readCallback);
const closeFd = promisify(closeCallback);

/** Yields the frames of a pcap or pcapng file, in file order, one array per read chunk (never empty). */
export async function* readCaptureBatches(path: string, options: ReadCaptureOptions = {}): AsyncGenerator<CapturedFrame[]> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`chunkSize ${chunkSize} is not a positive integer`);
  const fd = await io(path, 'open', () => openFd(path, 'r'));
  const pipe = await io(path, 'read', () => fstatFd(fd)).then((st) => st.isFIFO(), async (e: unknown) => {
    await closeFd(fd).catch(() => undefined);
    throw e;
  });
  const decoder = createCaptureDecoder();
  const chunks = pipe ? pipeChunks(path, fd, options.signal) : fileChunks(path, fd, chunkSize);
  try {
    for await (const chunk of chunks) {
      const frames = withPath(path, () => decoder.push(chunk));
      if (frames.length > 0) yield frames;
    }
    withPath(path, () => decoder.end());
  } finally {
    await chunks.return(undefined);
  }
}

/** A file's bytes in chunks of `chunkSize`, one read always in flight (the next is read while this one is decoded); closes it. */
async function* fileChunks(path: string, fd: number, chunkSize: number): AsyncGenerator<Uint8Array> {
  const read = (): Promise<{ bytesRead: number; buffer: Buffer }> => {
    const buffer = Buffer.allocUnsafe(chunkSize);
    return io(path, 'read', () => readFd(fd, buffer, 0, chunkSize, null));
  };
  let pending: Promise<{ bytesRead: number; buffer: Buffer }> | undefined = read();
  try {
    for (;;) {
      const { bytesRead, buffer } = await pending;
      pending = undefined;
      if (bytesRead === 0) return;
      pending = read();
      yield new Uint8Array(buffer.buffer, buffer.byteOffset, bytesRead);
    }
  } finally {
    await pending?.catch(() => undefined);
    await io(path, 'close', () => closeFd(fd));
  }
}

/**
 * A pipe's bytes as the event loop reads them (see the module header); stopping, or `signal`,
 * destroys the socket, which closes the descriptor at once, whatever the writer does.
 */
async function* pipeChunks(path: string, fd: number, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  const socket = new Socket({ fd, readable: true, writable: false });
  const abort = (): void => void socket.destroy(signal!.reason instanceof Error ? signal!.reason : new Error(String(signal!.reason)));
  if (signal?.aborted) abort();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    for await (const chunk of socket) yield chunk as Buffer;
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw new CaptureFileError(path, 'read', e);
  } finally {
    signal?.removeEventListener('abort', abort);
    socket.destroy();
  }
}

/** Yields the frames of a pcap or pcapng file one by one; see `readCaptureBatches`. */
export function readCaptureFile(path: string, options: ReadCaptureOptions = {}): AsyncGenerator<CapturedFrame, undefined, undefined> {
  return new FrameIterator(readCaptureBatches(path, options));
}

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/**
 * Frames one at a time out of batches. Hand-written rather than `yield* batch` in an async
 * generator: a frame already in memory then costs one resolved promise instead of a trip through
 * the generator's queue, which measured 1.5 to 2 times faster per frame (bench/pcap-read.ts).
 */
class FrameIterator implements AsyncGenerator<CapturedFrame, undefined, undefined> {
  private batch: CapturedFrame[] = [];
  private next_ = 0;
  /** The batch being read; a `next` that arrives meanwhile waits for it. */
  private fetching: Promise<IteratorResult<CapturedFrame, undefined>> | undefined = undefined;

  constructor(private readonly batches: AsyncGenerator<CapturedFrame[]>) {}

  next(): Promise<IteratorResult<CapturedFrame, undefined>> {
    if (this.fetching) return this.fetching.then(() => this.next());
    if (this.next_ < this.batch.length) return Promise.resolve({ value: this.batch[this.next_++]!, done: false });
    this.fetching = this.batches.next().then(
      (r) => {
        this.fetching = undefined;
        if (r.done) return DONE;
        this.batch = r.value;
        this.next_ = 1;
        return { value: r.value[0]!, done: false };
      },
      (e: unknown) => {
        this.fetching = undefined;
        throw e;
      },
    );
    return this.fetching;
  }

  async return(): Promise<IteratorResult<CapturedFrame, undefined>> {
    this.batch = [];
    await this.batches.return(undefined);
    return DONE;
  }

  async throw(e: unknown): Promise<IteratorResult<CapturedFrame, undefined>> {
    await this.return();
    throw e;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** A frame to write: a `CapturedFrame` fits, and only `timeNs` and `data` are required. */
export interface FrameToWrite {
  /** Default 0. */
  interfaceId?: number;
  timeNs: bigint;
  data: Uint8Array;
  /** Default `data.length`. */
  originalLength?: number;
  /** Written in pcapng; pcap has no place for it and drops it. */
  comment?: string | undefined;
}

/** Options of a capture file writer. */
export interface CaptureFileWriterOptions {
  /** Classic pcap only: nanosecond timestamps; default true. */
  nanosecond?: boolean;
  /** pcapng only: shb_userappl; default 'colo-proxy'. */
  application?: string;
  /** The file its errors name; default the path written. A temporary file names the file it stands for. */
  name?: string;
  /** Permission bits the file is created with, less the umask; default 0o666. */
  mode?: number;
}

/**
 * A capture file being written. Call order: `addInterface` (exactly once for pcap, any number of
 * times for pcapng), then `write` per frame, awaiting each, then `close` once.
 */
export interface CaptureFileWriter {
  /** Describes an interface and returns its id. pcap takes `snaplen` only, pcapng all options. */
  addInterface(linkType: number, options?: PcapngInterfaceOptions): number;
  /** Buffers one frame; the promise settles at once unless a full buffer is being written out. */
  write(frame: FrameToWrite): Promise<void>;
  /** Writes out what is buffered and closes the file. */
  close(): Promise<void>;
}

const STAGE_BYTES = 1 << 20;
const settled = Promise.resolve();

/** Creates (or truncates) `path` and returns a writer for it in the given format. */
export async function createCaptureFileWriter(
  path: string, format: 'pcap' | 'pcapng', options: CaptureFileWriterOptions = {},
): Promise<CaptureFileWriter> {
  const name = options.name ?? path;
  const file = await io(name, 'open', () => open(path, 'w', options.mode ?? 0o666));
  return new FileWriter(name, file, format, options);
}

class FileWriter implements CaptureFileWriter {
  private readonly pcap: PcapWriter | undefined;
  private readonly pcapng: PcapngWriter | undefined;
  private interfaces = 0;
  private stage = new Uint8Array(STAGE_BYTES);
  private fill = 0;
  private busy = false;
  private closed = false;

  constructor(
    /** The file its errors name. */
    private readonly name: string,
    private readonly file: FileHandle,
    format: 'pcap' | 'pcapng',
    private readonly options: CaptureFileWriterOptions,
  ) {
    if (format === 'pcap') {
      this.pcap = new PcapWriter();
    } else {
      this.pcapng = new PcapngWriter();
      this.stageBytes(this.pcapng.sectionHeader(options.application !== undefined ? { application: options.application } : {}));
    }
  }

  addInterface(linkType: number, options: PcapngInterfaceOptions = {}): number {
    this.usable();
    if (this.pcap) {
      if (this.interfaces > 0) throw new Error('CaptureFileWriter: a pcap file holds one interface');
      const header: { snaplen?: number; nanosecond?: boolean } = { nanosecond: this.options.nanosecond ?? true };
      if (options.snaplen !== undefined) header.snaplen = options.snaplen;
      this.stageBytes(this.pcap.header(linkType, header));
    } else {
      this.stageBytes(this.pcapng!.interfaceDescription(linkType, options));
    }
    return this.interfaces++;
  }

  write(frame: FrameToWrite): Promise<void> {
    let bytes: Uint8Array;
    try {
      this.usable();
      const id = frame.interfaceId ?? 0;
      if (this.pcap) {
        if (id !== 0 || this.interfaces === 0) throw new RangeError(`CaptureFileWriter: no interface ${id} in ${this.name}`);
        bytes = this.pcap.record(frame.timeNs, frame.data, frame.originalLength);
      } else {
        const opts: { originalLength?: number; comment?: string } = {};
        if (frame.originalLength !== undefined) opts.originalLength = frame.originalLength;
        if (frame.comment !== undefined) opts.comment = frame.comment;
        bytes = this.pcapng!.enhancedPacket(id, frame.timeNs, frame.data, opts);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.fill + bytes.length <= this.stage.length) {
      this.stage.set(bytes, this.fill);
      this.fill += bytes.length;
      return settled;
    }
    return this.exclusive(async () => {
      await this.flush();
      if (bytes.length > this.stage.length) await this.writeOut(bytes);
      else this.stageBytes(bytes);
    });
  }

  close(): Promise<void> {
    if (this.closed) return settled;
    return this.exclusive(async () => {
      this.closed = true;
      try {
        await this.flush();
      } finally {
        await io(this.name, 'close', () => this.file.close());
      }
    });
  }

  private usable(): void {
    if (this.busy) throw new Error('CaptureFileWriter: called before the previous write() or close() settled');
    if (this.closed) throw new Error('CaptureFileWriter: used after close()');
  }

  private async exclusive(task: () => Promise<void>): Promise<void> {
    this.usable();
    this.busy = true;
    try {
      await task();
    } finally {
      this.busy = false;
    }
  }

  /** Stages bytes known to fit (headers, small blocks), growing the stage if ever needed. */
  private stageBytes(bytes: Uint8Array): void {
    if (this.fill + bytes.length > this.stage.length) {
      const grown = new Uint8Array(this.fill + bytes.length);
      grown.set(this.stage.subarray(0, this.fill));
      this.stage = grown;
    }
    this.stage.set(bytes, this.fill);
    this.fill += bytes.length;
  }

  private async flush(): Promise<void> {
    if (this.fill === 0) return;
    const full = this.stage.subarray(0, this.fill);
    this.stage = new Uint8Array(STAGE_BYTES);
    this.fill = 0;
    await this.writeOut(full);
  }

  private async writeOut(bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.length;) {
      const { bytesWritten } = await io(this.name, 'write', () => this.file.write(bytes, done, bytes.length - done, null));
      done += bytesWritten;
    }
  }
}

async function io<T>(path: string, operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw new CaptureFileError(path, operation, e);
  }
}

function withPath<T>(path: string, run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof CaptureFormatError && e.path === undefined) throw new CaptureFormatError(e.code, e.offset, e.problem, path);
    throw e;
  }
}
