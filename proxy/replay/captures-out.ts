/**
 * The captures a replay writes, as pcapng that Wireshark and tshark open:
 * - `ReleasedCapture` (`--out`): every released primary frame, in release order, stamped with
 *   its virtual release time;
 * - `MismatchCaptures` (`--mismatch-dir`): one file for each checkpoint episode the report lists,
 *   holding the frames of the flows that diverged in it from shortly before the first mismatch to
 *   shortly after, each on an interface named after its side (primary, secondary, client) and with
 *   the side and, for the first frame, the mismatch in its comment. In translate mode the SVM
 *   may use other ports (echo identifiers) than the PVM for the same flow, which the comparator
 *   pairs: the secondary's frames are then taken by their flow without the guest's port, so an
 *   episode also holds the SVM's other flows to the same peer and port. An episode's file is written
 *   once its flows have had CONTEXT_FRAMES more frames or the replay RECENT_FRAMES more, so a
 *   flow that ends at its mismatch does not keep its episode (and its frames) open to the end.
 *   Files are named checkpoint-NNNN-REASON.pcapng, four digits since at most MAX_RECORDS (1000)
 *   are written, so they sort by number. `prepare`, once the inputs have proved readable, creates
 *   the directory, and the episodes are written into a directory of their own inside it
 *   (`.colo-replay-XXXXXX`, unique: replays in other PID namespaces may share the directory).
 *   `commit`, when the replay succeeds and every episode was written, removes the files of that
 *   pattern an earlier replay left and moves this replay's in, so the directory describes this
 *   replay alone, as --out is replaced; no other file is touched. A replay that fails or is
 *   stopped, or could not write every episode (a full disk), leaves the directory as it was
 *   (`discard`), as a failed replay leaves --out: that would have replaced a complete earlier set
 *   with a partial one. A process that exits before either removes its own; one killed outright
 *   (SIGKILL) leaves its directory behind, which later replays there point out (`leftovers`) but
 *   never remove, since a replay running elsewhere may own it.
 *
 * Frames are queued synchronously while the session runs and written by `flush`, which the
 * replay awaits between input batches; the file writers buffer, so this costs little. Interfaces
 * have no snaplen (every frame the readers accept is written whole). Times are written in
 * nanoseconds, unsigned 64-bit: a time before 1970 (a capture with a negative if_tsoffset) is
 * written as 1970 and one after 2^64 ns (2554-07-21; a capture holding nanoseconds without
 * if_tsresol reads as year 57971) as 2^64 - 1 ns; both writers count the frames so written
 * (`clamped`) and the replay warns. Frames read before any capture time (captures that start
 * with pcapng Simple Packet Blocks) are timed from the replay's first timed frame, which may come
 * batches later: both writers keep such frames, their times relative (`baseNs`), until it does.
 * An episode's file that cannot be written whole is removed, and no later one is tried: the
 * episode captures are a side output, so their failure (a full disk) is a warning in the report
 * naming the first error and how many went unwritten (`failure`, `unwritten`), not the end of
 * the replay.
 * `--out` is written to a temporary file beside it and renamed when the replay succeeds (with the
 * permission bits of the file it replaces; other hard links to that file keep the old one), so a
 * failed replay leaves an earlier file of that name as it was; a process that exits before either
 * (a second Ctrl-C) removes the temporary file on its way out. A symbolic link is followed, so
 * the file it names is replaced and the link stays. A FIFO or a character device (/dev/stdout on
 * a pipe, /dev/null) is written directly, since renaming over it would replace it with a
 * regular file; what a failed replay wrote there stays. Anything else that is not a regular
 * file (a directory, a socket, a block device) is refused (`outTarget`), as the CLI does before
 * the replay starts.
 */

import { accessSync, constants, lstatSync, realpathSync, rmSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { LINKTYPE_ETHERNET, Frame, decodeFrame, describeKey, flowKey, framesFlowName, type Side } from '../../compare/index.js';
import { CaptureFileError, createCaptureFileWriter, type CaptureFileWriter } from '../ports/capture-file.js';
import { systemReason } from '../ports/system-reason.js';
import { MAX_RECORDS, type MismatchRecord } from './session.js';
import { ReplayInputError } from './route.js';

interface Queued {
  /** Capture time in ns; while `relative`, since the replay's first timed frame (whose time is not known yet). */
  timeNs: bigint;
  relative: boolean;
  data: Uint8Array;
  interfaceId: number;
  comment: string | undefined;
}

/** The latest time our pcapng interfaces (nanosecond resolution) can hold. */
const LAST_NS = 2n ** 64n - 1n;

/** The last whole second pcapng can hold (2554-07-21): past it, capture times are a writer's unit error. */
export const PCAPNG_LAST_SECONDS = Number(LAST_NS / 1_000_000_000n);

/** `frames` with their relative times made absolute from `base`. */
function resolved(frames: Queued[], base: bigint): Queued[] {
  for (const f of frames) {
    if (!f.relative) continue;
    f.timeNs += base;
    f.relative = false;
  }
  return frames;
}

/** Writes `frames`, each time moved into what pcapng holds; returns how many had to be (see the header). */
async function writeAll(writer: CaptureFileWriter, frames: readonly Queued[]): Promise<number> {
  let clamped = 0;
  for (const f of frames) {
    if (f.timeNs >= 0n && f.timeNs <= LAST_NS) {
      await writer.write(f);
    } else {
      clamped++;
      await writer.write({ ...f, timeNs: f.timeNs < 0n ? 0n : LAST_NS });
    }
  }
  return clamped;
}

/**
 * How `--out` is written: `replace`, a regular file (`path` with symbolic links resolved, or a
 * new one) written beside and renamed onto; `direct`, a FIFO or character device opened and
 * written as it is.
 */
export interface OutTarget {
  how: 'replace' | 'direct';
  path: string;
  /** `replace` over an existing file: its permission bits, which the new file gets. */
  mode?: number;
}

/** Where `--out PATH` is written (see the module header); throws an Error saying why it cannot be, without the path. */
export function outTarget(path: string): OutTarget {
  if (path === '' || path.endsWith('/')) throw new Error('names a directory, not a file');
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(systemReason(e));
    if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink()) throw new Error('is a symbolic link to nothing');
    writableDirectory(dirname(path));
    return { how: 'replace', path };
  }
  if (st.isFile()) {
    const real = realpathSync(path);
    writableDirectory(dirname(real));
    return { how: 'replace', path: real, mode: st.mode & 0o7777 };
  }
  if (st.isFIFO() || st.isCharacterDevice()) {
    try {
      accessSync(path, constants.W_OK);
    } catch (e) {
      throw new Error(systemReason(e));
    }
    return { how: 'direct', path };
  }
  throw new Error(st.isDirectory() ? 'is a directory' : 'is not a regular file, a FIFO or a character device');
}

/** Throws unless `dir` is a directory we may create files in. */
function writableDirectory(dir: string): void {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (st === undefined) throw new Error(`no directory ${dir}`);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new Error(`cannot create files in ${dir}: ${systemReason(e)}`);
  }
}

/** Bytes of released frames `--out` keeps while no capture time is known yet (see `ReleasedCapture`). */
const UNTIMED_HOLD_BYTES = 64 << 20;

/**
 * `--out`: the released frames, stamped with their virtual release time from the first timed
 * frame's capture time. Frames released before any capture time was read (captures that start
 * with pcapng Simple Packet Blocks) are kept until it is, up to UNTIMED_HOLD_BYTES; past that,
 * or in a capture with no time at all, they are written from time 0 (1970).
 */
export class ReleasedCapture {
  /** Frames to write, their times relative to `baseNs` until `flush` adds it. */
  private queue: Queued[] = [];
  private queuedBytes = 0;
  /** Frames written with their time moved into what pcapng holds. */
  clamped = 0;
  /** The capture time of the replay's first timed frame, once it is known. */
  baseNs: bigint | undefined = undefined;
  /** Why the replaced file's permission bits could not be given to the new one (a file system without them), or undefined. */
  modeNotKept: string | undefined = undefined;

  /** Removes the temporary file if the process exits while it is still one. */
  private readonly onExit = (): void => {
    if (this.temporary !== undefined) rmSync(this.temporary, { force: true });
  };

  private constructor(
    private readonly writer: CaptureFileWriter,
    /** The path given, for errors. */
    private readonly path: string,
    /** The file it replaces, and the temporary one written meanwhile; undefined when written directly. */
    private readonly target: string | undefined,
    private readonly temporary: string | undefined,
    /** The replaced file's permission bits, given to the new one before it takes the name. */
    private readonly mode: number | undefined,
  ) {
    process.once('exit', this.onExit);
  }

  /** Opens `--out PATH` (see `outTarget`); throws CaptureFileError naming `path`. */
  static async create(path: string): Promise<ReleasedCapture> {
    let target: OutTarget;
    try {
      target = outTarget(path);
    } catch (e) {
      throw new CaptureFileError(path, 'write', e);
    }
    const temporary = target.how === 'replace' ? join(dirname(target.path), `${basename(target.path)}.partial-${process.pid}`) : undefined;
    // Created with the replaced file's bits (less the umask), so a private file is never readable meanwhile.
    const writer = await createCaptureFileWriter(temporary ?? target.path, 'pcapng', { name: path, mode: target.mode });
    writer.addInterface(LINKTYPE_ETHERNET, { name: 'released', snaplen: 0 });
    return new ReleasedCapture(writer, path, temporary === undefined ? undefined : target.path, temporary, target.mode);
  }

  add(frame: Uint8Array, atMs: number): void {
    this.queue.push({ timeNs: BigInt(Math.round(atMs * 1e6)), relative: true, data: frame, interfaceId: 0, comment: undefined });
    this.queuedBytes += frame.length;
  }

  /** Writes what was released so far; while no capture time is known, only past UNTIMED_HOLD_BYTES or when `final`. */
  async flush(final = false): Promise<void> {
    if (this.baseNs === undefined && !final && this.queuedBytes < UNTIMED_HOLD_BYTES) return;
    const base = this.baseNs ?? 0n;
    const q = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    this.clamped += await writeAll(this.writer, resolved(q, base));
  }

  /** Writes the rest and puts the file in place; throws CaptureFileError naming the path given. */
  async close(): Promise<void> {
    await this.flush(true);
    await this.writer.close();
    if (this.temporary !== undefined) {
      if (this.mode !== undefined) {
        try {
          await chmod(this.temporary, this.mode);
        } catch (e) {
          this.modeNotKept = systemReason(e);
        }
      }
      try {
        await rename(this.temporary, this.target!);
      } catch (e) {
        throw new CaptureFileError(this.path, 'write', e);
      }
    }
    process.off('exit', this.onExit);
  }

  /** After a failed replay: closes and removes the temporary file; the path keeps what it had (a FIFO or device, what it was sent). */
  async discard(): Promise<void> {
    await this.writer.close().catch(() => undefined);
    if (this.temporary !== undefined) await rm(this.temporary, { force: true });
    process.off('exit', this.onExit);
  }
}

/** Frames of each flow kept from before a mismatch, and frames written after it. */
const CONTEXT_FRAMES = 32;
/** Recent frames remembered (all flows) to find the ones before a mismatch. */
const RECENT_FRAMES = 1024;

const SIDES: readonly Side[] = ['primary', 'secondary', 'client'];

interface Recent {
  side: Side;
  timeNs: bigint;
  relative: boolean;
  data: Uint8Array;
  flow: string;
  /** Translate mode: its flow without the guest's port (see the module header), else ''. */
  portless: string;
}

interface OpenEpisode {
  episode: number;
  /** Its file's name, in the staging directory until `commit`. */
  name: string;
  flows: Set<string>;
  /** Translate mode: the flows without the guest's port, which the secondary's frames are taken by. */
  portless: Set<string>;
  frames: Queued[];
  /** Frames of its flows still to take after the mismatch. */
  after: number;
  /** The replay's frame count at its latest mismatch. */
  lastMismatchAt: number;
  note: string;
}

/** `--mismatch-dir`: one capture per checkpoint episode. */
export class MismatchCaptures {
  private readonly recent: (Recent | undefined)[] = new Array<Recent | undefined>(RECENT_FRAMES);
  private recentNext = 0;
  /** Frames seen so far. */
  private frames = 0;
  private readonly open = new Map<number, OpenEpisode>();
  private readonly done: OpenEpisode[] = [];
  /** Episodes whose capture is complete: later mismatches of theirs are not written again. */
  private readonly closed = new Set<number>();
  /** Frames written with their time moved into what pcapng holds. */
  clamped = 0;
  /**
   * Why the episode captures stopped being written (a full disk...), or undefined: they are a
   * side output, so a failure ends them, not the replay and its report (see `flush`).
   */
  failure: string | undefined = undefined;
  /** Episodes not written since the failure, that one included. */
  unwritten = 0;
  /** The capture time of the replay's first timed frame, once it is known (as ReleasedCapture's). */
  baseNs: bigint | undefined = undefined;

  /** Where this replay's episode captures are written until `commit`; undefined before `prepare` and after. */
  private staging: string | undefined = undefined;
  /** Other replays' staging directories found by `prepare`: killed ones', or running ones' (see the module header). */
  leftovers: string[] = [];
  /** Whether `commit` left the earlier episode captures in place because not all of this replay's were written. */
  keptEarlier = false;
  private readonly onExit = (): void => {
    if (this.staging !== undefined) rmSync(this.staging, { recursive: true, force: true });
  };

  /** `translate`: the replay maps the SVM's flows onto the PVM's, ports included (see the module header). */
  constructor(
    private readonly dir: string,
    private readonly translate = false,
  ) {}

  /** Creates the directory and this replay's staging directory in it (see the module header). */
  async prepare(): Promise<void> {
    try {
      await makeDirectories(this.dir);
      this.leftovers = (await readdir(this.dir)).filter((name) => name.startsWith(STAGING_PREFIX));
      this.staging = await mkdtemp(join(this.dir, STAGING_PREFIX));
      process.once('exit', this.onExit);
    } catch (e) {
      throw new ReplayInputError(`--mismatch-dir ${this.dir}: ${systemReason(e)}`);
    }
  }

  /**
   * After a successful replay, with every episode flushed: the episode captures an earlier replay
   * left are removed and this replay's moved in, unless one of this replay's could not be written
   * (`keptEarlier`). A failure is the captures' failure (a warning).
   */
  async commit(): Promise<void> {
    const staging = this.staging;
    if (staging === undefined) return;
    if (this.failure !== undefined) {
      this.keptEarlier = true;
      await this.discard();
      return;
    }
    let moved = 0;
    let names: string[] = [];
    try {
      names = await readdir(staging);
      for (const name of await readdir(this.dir)) {
        if (EPISODE_FILE.test(name)) await rm(join(this.dir, name), { force: true });
      }
      for (const name of names) {
        await rename(join(staging, name), join(this.dir, name));
        moved++;
      }
    } catch (e) {
      this.failure ??= `${this.dir}: ${systemReason(e)}`;
      this.unwritten += names.length - moved;
    }
    await this.discard();
  }

  /** After a failed or stopped replay: removes what it wrote, leaving the directory as it was. */
  async discard(): Promise<void> {
    const staging = this.staging;
    this.staging = undefined;
    process.off('exit', this.onExit);
    if (staging !== undefined) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
  }

  /**
   * Every frame fed to the comparator, before it is fed; `relative`: its time counts from the
   * replay's first timed frame, read later (`baseNs`).
   */
  frame(side: Side, data: Uint8Array, timeNs: bigint, relative = false): void {
    const d = decodeFrame(data);
    const flow = d instanceof Frame ? describeKey(flowKey(d, side !== 'client')) : 'undecodable frames';
    const portless = this.translate && d instanceof Frame ? describeKey(flowKey(d, side !== 'client', 0)) : '';
    const copy = data.slice();
    this.recent[this.recentNext] = { side, timeNs, relative, data: copy, flow, portless };
    this.recentNext = (this.recentNext + 1) % RECENT_FRAMES;
    this.frames++;
    for (const e of this.open.values()) {
      if (e.flows.has(flow) || (side === 'secondary' && e.portless.has(portless))) {
        e.frames.push(queued(side, timeNs, relative, copy));
        e.after--;
      }
      if (e.after <= 0 || this.frames - e.lastMismatchAt > RECENT_FRAMES) this.complete(e);
    }
  }

  private complete(e: OpenEpisode): void {
    this.open.delete(e.episode);
    this.closed.add(e.episode);
    this.done.push(e);
  }

  /** A mismatch the session recorded. */
  mismatch(m: MismatchRecord): void {
    if (m.episode > MAX_RECORDS) return;
    let e = this.open.get(m.episode);
    if (e === undefined) {
      if (this.closed.has(m.episode)) return;
      e = { episode: m.episode, name: `${episodeName(m.episode)}-${m.reason}.pcapng`, flows: new Set(), portless: new Set(), frames: [], after: CONTEXT_FRAMES, lastMismatchAt: 0, note: `checkpoint ${m.episode}: ${m.reason} ${m.flow}` };
      this.open.set(m.episode, e);
    }
    e.lastMismatchAt = this.frames;
    // A flow the SVM opened on a crossed port is named apart; its frames have the port's own name.
    const flow = framesFlowName(m.flow);
    if (e.flows.has(flow)) return;
    e.flows.add(flow);
    // In translate mode, the flow without the guest's port, from the latest frame of the flow.
    if (this.translate) {
      for (let i = 1; i <= RECENT_FRAMES; i++) {
        const r = this.recent[(this.recentNext - i + RECENT_FRAMES) % RECENT_FRAMES];
        if (r === undefined) break;
        if (r.flow === flow && r.portless !== '') {
          e.portless.add(r.portless);
          break;
        }
      }
    }
    // The frames of this flow seen before it, oldest first, at most CONTEXT_FRAMES.
    const before: Recent[] = [];
    for (let i = 1; i <= RECENT_FRAMES && before.length < CONTEXT_FRAMES; i++) {
      const r = this.recent[(this.recentNext - i + RECENT_FRAMES) % RECENT_FRAMES];
      if (r === undefined) break;
      if (r.flow === flow || (r.side === 'secondary' && e.portless.has(r.portless))) before.push(r);
    }
    e.frames.push(...before.reverse().map((r) => queued(r.side, r.timeNs, r.relative, r.data)));
    // Relative times come from before the first timed frame, so before every absolute one.
    e.frames.sort((a, b) => (a.relative !== b.relative ? (a.relative ? -1 : 1) : a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : 0));
  }

  /**
   * Writes the episodes whose after-context is complete (all of them when `final`). While no
   * capture time is known, an episode holding frames from before it waits, as long as such
   * episodes hold under UNTIMED_HOLD_BYTES; past that, or in a capture with no time at all, their
   * times count from 0 (1970), as in `--out`.
   */
  async flush(final = false): Promise<void> {
    if (final) {
      for (const e of this.open.values()) this.done.push(e);
      this.open.clear();
    }
    let ready = this.done.splice(0);
    if (this.baseNs === undefined && !final) {
      const waiting = ready.filter((e) => e.frames.some((f) => f.relative));
      if (heldBytes(waiting) < UNTIMED_HOLD_BYTES) {
        this.done.push(...waiting);
        ready = ready.filter((e) => !waiting.includes(e));
      }
    }
    const base = this.baseNs ?? 0n;
    for (const e of ready) {
      if (this.failure === undefined) {
        try {
          await this.write(e, base);
          continue;
        } catch (err) {
          this.failure = err instanceof Error ? err.message : String(err);
        }
      }
      this.unwritten++;
    }
  }

  /** Writes one episode's capture whole, or removes what it wrote and throws the first error. */
  private async write(e: OpenEpisode, base: bigint): Promise<void> {
    resolved(e.frames, base);
    if (this.staging === undefined) throw new Error('--mismatch-dir: an episode written before the directory was prepared');
    const path = join(this.staging, e.name);
    // Errors name the file the capture was to become.
    const writer = await createCaptureFileWriter(path, 'pcapng', { name: join(this.dir, e.name) });
    try {
      for (const side of SIDES) writer.addInterface(LINKTYPE_ETHERNET, { name: side, snaplen: 0 });
      const first = e.frames[0];
      if (first) first.comment = `${first.comment}; ${e.note}`;
      this.clamped += await writeAll(writer, e.frames);
      await writer.close();
    } catch (err) {
      await writer.close().catch(() => undefined);
      await rm(path, { force: true }).catch(() => undefined);
      throw err;
    }
  }
}

/**
 * `mkdir -p`, one level at a time from the nearest existing ancestor. Node's recursive mkdir
 * never returns for a path under /proc (the kernel answers ENOENT there, and it retries).
 */
async function makeDirectories(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = resolve(dir); !(await stat(d).catch(absent)); d = dirname(d)) {
    missing.push(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    await mkdir(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}

/** For `stat(...).catch`: nothing there is undefined, any other error stays one. */
function absent(e: NodeJS.ErrnoException): undefined {
  if (e.code === 'ENOENT') return undefined;
  throw e;
}

function episodeName(n: number): string {
  return `checkpoint-${String(n).padStart(4, '0')}`;
}

/** The name of an episode capture, this replay's or an earlier one's (which had three digits). */
const EPISODE_FILE = /^checkpoint-\d{3,}-[a-z_.]+\.pcapng$/;

/** The start of a replay's staging directory's name in --mismatch-dir (mkdtemp adds six characters). */
const STAGING_PREFIX = '.colo-replay-';

/**
 * True when `path` is (or would be) a file in `dir` named like an episode's, one a replay with
 * `--mismatch-dir dir` removes or overwrites: the name itself, or the file a symbolic link names.
 */
export function isEpisodeFile(dir: string, path: string): boolean {
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  const inDir = (p: string): boolean => EPISODE_FILE.test(basename(p)) && real(dirname(p)) === real(dir);
  return inDir(path) || inDir(real(path));
}

function queued(side: Side, timeNs: bigint, relative: boolean, data: Uint8Array): Queued {
  return { timeNs, relative, data, interfaceId: SIDES.indexOf(side), comment: side };
}

/** Bytes of the frames of `episodes`. */
function heldBytes(episodes: readonly OpenEpisode[]): number {
  let bytes = 0;
  for (const e of episodes) for (const f of e.frames) bytes += f.data.length;
  return bytes;
}
