/**
 * One socket endpoint of the `compare` front end, kept up for the life of the process.
 *
 * A listening port (`,server`) has one peer at a time, as a QEMU socket chardev does. A new peer
 * arriving while one is connected waits until the current one goes, and is then taken as if it
 * had just connected: QEMU stops accepting while connected, so its newcomers wait in the kernel's
 * backlog, and a peer that reconnects at once (its old connection closed, that end not yet seen
 * here) must not be turned away. Nothing a waiting peer sends reaches the owner before it is
 * taken: Node reads it into the socket's own buffer, up to its high-water mark (so a peer that
 * closes while waiting is seen), and then stops reading. Waiting peers are taken in arrival order,
 * those that closed meanwhile without sending anything skipped; at most MAX_WAITING wait, and one
 * more is refused (closed at once, logged).
 *
 * A connecting port retries with backoff (100 ms doubling to 2 s) until it is closed; the backoff
 * starts again from 100 ms only after a connection that stayed up for STABLE_MS, so a peer that
 * accepts and closes at once is not redialled ten times a second. It says (through the optional
 * `log` handler) why it cannot connect at the first failure, and then every FAILING_LOG_MS while
 * it keeps failing. Every (re)connection is a fresh byte stream: the owner resets its decoder on
 * `connected`.
 *
 * Writes. At most one write is in the socket at a time: the next ones wait here, in order, until
 * the kernel has taken all of it, and go to the next peer if this one goes away. So when a peer
 * goes away, the one write the kernel may have taken part of is known: it is dropped, never sent
 * again (a resend would repeat what the old peer may have read), and handed to the owner in
 * `disconnected` to say what was lost; a write the kernel refused at once (the peer had just
 * gone) goes to the next peer like those behind it; bytes already in the kernel's socket buffer are lost with
 * the connection, as on a wire. (Node's own write queue cannot tell a partly taken write from the
 * untouched ones behind it: `writableLength` still counts what the kernel took of a write in
 * progress.) Writes made while no peer is connected wait for the next one; the owner bounds
 * them with `pendingBytes`.
 * TCP connections use keepalive, so that a peer whose host died without a word is noticed
 * (after the kernel's probes) rather than held as connected for ever.
 *
 * A listening unix port removes what is at its path only when it is a stale socket: one that
 * refuses a connection (its process is gone). Anything else fails the start: a file that is not a
 * socket is not ours to delete, and a socket that accepts is another running process's (taking
 * its path would cut it off from new peers, and its exit would then unlink ours). The probe
 * connection is closed at once; that process sees a peer come and go.
 */

import { createServer, connect, type Server, type Socket } from 'node:net';
import { lstat, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Endpoint } from './endpoint.js';
import { systemReason } from './system-reason.js';

export interface StreamPortHandlers {
  /** A peer connected: the stream starts afresh. */
  connected(): void;
  /** Bytes from the peer, a fresh Buffer per call (never reused). */
  data(chunk: Buffer): void;
  /**
   * The peer went away (or was dropped by `drop`), with a reason for the log, and the write it was
   * taking, which is dropped (null when none was in progress).
   */
  disconnected(reason: string, dropped: Buffer | null): void;
  /** Every write so far is in the kernel, after `write` returned false. */
  drained(): void;
  /** A line for the log about the port itself (the owner prefixes its name): dial failures, peers waiting or refused. */
  log?(line: string): void;
}

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;
/** How long a connection must stay up for the backoff to start again from RETRY_FIRST_MS. */
const STABLE_MS = 1000;
/** While dialling keeps failing, how often it is said again after the first failure. */
const FAILING_LOG_MS = 30_000;
/** New peers of a listening port that may wait for the current one to go (see the header). */
const MAX_WAITING = 4;
/** Idle time before TCP keepalive probes start on a connection. */
const KEEPALIVE_IDLE_MS = 10_000;

export class StreamPort {
  private server: Server | null = null;
  private socket: Socket | null = null;
  /** New peers of a listening port waiting for the current one to go, in arrival order. */
  private readonly waiting: Socket[] = [];
  private closed = false;
  private retryMs = RETRY_FIRST_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Writes not given to a socket yet, in order: for the current peer after `inFlight`, or for the next one. */
  private pending: Buffer[] = [];
  /** Bytes in `pending`. */
  pendingBytes = 0;
  /** The write the current socket has not finished (the kernel may have taken part of it), or null. */
  private inFlight: Buffer | null = null;
  /** Tells the completion of `inFlight` from that of earlier writes. */
  private inFlightId = 0;
  private writeId = 0;
  /** A connection being dialled, not yet connected. */
  private dialing: Socket | null = null;
  /** When the current connection was made (performance.now()). */
  private connectedAt = 0;
  /** When dialling started failing (since the last connection), or null; and when that was last logged. */
  private failingSince: number | null = null;
  private failingLogged = 0;

  constructor(
    readonly endpoint: Endpoint,
    private readonly handlers: StreamPortHandlers,
  ) {}

  /**
   * Starts listening (resolves once listening; rejects with the system error, or when a unix path
   * is taken, see the header) or connecting (resolves at once).
   */
  async start(): Promise<void> {
    const ep = this.endpoint;
    if (!ep.server) {
      this.dial();
      return;
    }
    if (ep.kind === 'unix') await clearStaleSocket(ep.path);
    const server = createServer((s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const listening = (): void => {
        server.off('error', reject);
        server.on('error', () => {});
        resolve();
      };
      if (ep.kind === 'unix') server.listen(ep.path, listening);
      else server.listen(ep.port, ep.host, listening);
    });
  }

  get connected(): boolean {
    return this.socket !== null;
  }

  /**
   * Writes to the peer, or queues behind the write in progress and those waiting (a peer just
   * connected, before the queue has gone to it) or for the next peer; false when not all of it is
   * in the kernel yet: the caller should wait for `drained`.
   */
  write(bytes: Buffer): boolean {
    const s = this.socket;
    if (s === null || !s.writable || this.inFlight !== null || this.pending.length > 0) {
      this.pending.push(bytes);
      this.pendingBytes += bytes.length;
      return false;
    }
    return this.send(s, bytes);
  }

  /**
   * True when a peer is connected and every byte written to it so far is in the kernel, none
   * queued in this process: the buffers of those writes are no longer referenced here.
   */
  get flushed(): boolean {
    return this.socket !== null && this.socket.writable && this.inFlight === null && this.pending.length === 0;
  }

  /** Bytes not all in the kernel yet: the write in progress and those waiting. */
  get unsentBytes(): number {
    return (this.inFlight?.length ?? 0) + this.pendingBytes;
  }

  /** Forgets the writes waiting for a peer (not the one in progress): for a port whose next peer starts a new conversation. */
  discardPending(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** The writes not all in the kernel yet, in order: the one in progress (part of it may be), then those waiting. */
  unsent(): Buffer[] {
    return this.inFlight === null ? [...this.pending] : [this.inFlight, ...this.pending];
  }

  /** Bytes Node has read from the current peer and not handed to the owner yet (it reads ahead while paused). */
  get unreadBytes(): number {
    return this.socket?.readableLength ?? 0;
  }

  /** Stops reading from the peer (backpressure). */
  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  /** Closes the current peer connection (after a framing error); a new one is accepted or dialled. */
  drop(reason: string): void {
    const s = this.socket;
    if (s === null) return;
    this.socket = null;
    s.destroy();
    this.handlers.disconnected(reason, this.takeInFlight());
    this.lost();
  }

  /** Closes everything for good. */
  close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.dialing?.destroy();
    this.dialing = null;
    this.socket?.destroy();
    this.socket = null;
    for (const w of this.waiting.splice(0)) w.destroy();
    const server = this.server;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private accept(s: Socket): void {
    if (this.closed) {
      s.destroy();
      return;
    }
    if (this.socket === null) {
      this.attach(s);
      return;
    }
    if (this.waiting.length >= MAX_WAITING) {
      s.destroy();
      this.handlers.log?.(`refused a new peer: one is connected and ${MAX_WAITING} more are waiting`);
      return;
    }
    this.waiting.push(s);
    s.on('error', () => {});
    s.once('close', () => {
      const i = this.waiting.indexOf(s);
      if (i >= 0) this.waiting.splice(i, 1);
    });
    this.handlers.log?.(`a new peer waits until the current one goes (${this.waiting.length} waiting)`);
  }

  /** The peer went away: a listening port takes the first waiting peer still there, a connecting one dials again. */
  private lost(): void {
    if (this.endpoint.server) {
      while (this.socket === null && !this.closed && this.waiting.length > 0) {
        const next = this.waiting.shift()!;
        if (next.destroyed || next.readableEnded) next.destroy();
        else this.attach(next);
      }
    } else {
      this.redial();
    }
  }

  private dial(): void {
    if (this.closed) return;
    const ep = this.endpoint;
    const s = ep.kind === 'unix' ? connect(ep.path) : connect(ep.port, ep.host);
    this.dialing = s;
    s.once('connect', () => {
      this.dialing = null;
      if (this.closed) {
        s.destroy();
        return;
      }
      this.failingSince = null;
      this.attach(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (this.dialing === s) this.dialing = null;
      if (this.socket !== s) {
        s.destroy();
        this.dialFailed(e.code ?? e.message);
        this.retry();
      }
    });
  }

  /** Says why dialling failed: the first time, then every FAILING_LOG_MS while it keeps failing. */
  private dialFailed(why: string): void {
    if (this.closed) return;
    const now = performance.now();
    if (this.failingSince === null) {
      this.failingSince = now;
      this.failingLogged = now;
      this.handlers.log?.(`cannot connect to ${this.endpoint.text} (${why}); retrying`);
    } else if (now - this.failingLogged >= FAILING_LOG_MS) {
      this.failingLogged = now;
      this.handlers.log?.(`still cannot connect to ${this.endpoint.text} (${why}) after ${Math.round((now - this.failingSince) / 1000)} s; retrying`);
    }
  }

  /** A connecting port's peer went away: dial again, from the first backoff step if it had stayed up. */
  private redial(): void {
    if (performance.now() - this.connectedAt >= STABLE_MS) this.retryMs = RETRY_FIRST_MS;
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.dial();
    }, this.retryMs);
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  private attach(s: Socket): void {
    this.socket = s;
    this.connectedAt = performance.now();
    s.setNoDelay?.(true);
    if (this.endpoint.kind === 'tcp') s.setKeepAlive(true, KEEPALIVE_IDLE_MS);
    this.handlers.connected();
    // Node still emits reads it buffered (while paused) after `drop` destroyed the socket: those
    // are the dropped peer's, never the next one's.
    s.on('data', (chunk: Buffer) => {
      if (this.socket === s) this.handlers.data(chunk);
    });
    const gone = (reason: string): void => {
      if (this.socket !== s) return;
      this.socket = null;
      this.handlers.disconnected(reason, this.takeInFlight());
      this.lost();
    };
    s.on('error', (e) => gone(e.message));
    s.on('close', () => gone('peer closed the connection'));
    this.sendPending(s);
  }

  /**
   * Gives `bytes` to the socket; true when the kernel took all of it at once. Node says so when
   * the write did not wait, and a write to a peer that has just gone (EPIPE, ECONNRESET) does not
   * wait either: it fails at once, the kernel having taken none of it, and only its callback says
   * so. Such a write goes back to the front of the queue, for the next peer; copied, since the
   * caller may reuse a buffer the kernel took (the callback runs before any I/O callback of the
   * caller's could).
   */
  private send(s: Socket, bytes: Buffer): boolean {
    const id = ++this.writeId;
    let atOnce = false;
    s.write(bytes, (e) => {
      if (e === undefined || e === null) this.written(s, id);
      else if (atOnce && !this.closed) {
        this.pending.unshift(Buffer.from(bytes));
        this.pendingBytes += bytes.length;
      }
    });
    atOnce = s.writableLength === 0;
    if (atOnce) return true;
    this.inFlight = bytes;
    this.inFlightId = id;
    return false;
  }

  /** A write to `s` is all in the kernel: when it was the one in progress, the next ones go. */
  private written(s: Socket, id: number): void {
    if (this.socket !== s || this.inFlightId !== id) return;
    this.inFlight = null;
    this.inFlightId = 0;
    if (this.sendPending(s)) this.handlers.drained();
  }

  /**
   * Gives waiting writes to `s` until one is not taken whole, or `s` failed (a write refused at
   * once destroys it: what is left waits for the next peer); true when none is left waiting.
   */
  private sendPending(s: Socket): boolean {
    while (this.pending.length > 0 && s.writable) {
      const b = this.pending.shift()!;
      this.pendingBytes -= b.length;
      if (!this.send(s, b)) return false;
    }
    return this.pending.length === 0;
  }

  /** The write in progress on a connection that went away: never resent (see the header). */
  private takeInFlight(): Buffer | null {
    const b = this.inFlight;
    this.inFlight = null;
    this.inFlightId = 0;
    return b;
  }
}

/**
 * Removes a stale socket at `path`; rejects when something else is there (see the header), or
 * when its directory does not exist (libuv reports that as EACCES, "permission denied").
 */
async function clearStaleSocket(path: string): Promise<void> {
  const dir = dirname(path);
  const st = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw new Error(`${dir}: ${systemReason(e)}`);
  });
  if (!st?.isDirectory()) throw new Error(`no directory ${dir} for ${path}`);
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket`);
  const listening = await new Promise<boolean>((resolve, reject) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (e: NodeJS.ErrnoException) => {
      probe.destroy();
      // EAGAIN: a listener whose backlog is full, alive all the same.
      if (e.code === 'EAGAIN') resolve(true);
      else if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve(false);
      else reject(e);
    });
  });
  if (listening) throw new Error(`${path} is in use by another process (it accepts connections)`);
  await rm(path, { force: true });
}
