/**
 * One socket endpoint of the `compare` front end, kept up for the life of the process.
 *
 * A listening port (`,server`) accepts one peer at a time, as a QEMU socket chardev does: a second
 * peer arriving while one is connected is refused (closed at once), and after the peer goes away
 * the next one is accepted. A connecting port retries with backoff (100 ms doubling to 2 s) until
 * it is closed. Every (re)connection is a fresh byte stream: the owner resets its decoder on
 * `connected`. Bytes written while no peer is connected (or while the connection is closing) wait
 * in order for the next one (the owner bounds them with `pendingBytes`), and so do whole writes a
 * connection that went away had left queued in this process; bytes already in the kernel's
 * socket buffer, or in a write it had partly taken, are lost with the connection, as on a wire.
 * TCP connections use keepalive, so that a peer whose host died without a word is noticed
 * (after the kernel's probes) rather than held as connected for ever.
 */

import { createServer, connect, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import type { Endpoint } from './endpoint.js';

export interface StreamPortHandlers {
  /** A peer connected: the stream starts afresh. */
  connected(): void;
  /** Bytes from the peer, a fresh Buffer per call (never reused). */
  data(chunk: Buffer): void;
  /** The peer went away (or was dropped by `drop`), with a reason for the log. */
  disconnected(reason: string): void;
  /** The socket's write buffer emptied after `write` returned false. */
  drained(): void;
}

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;
/** Idle time before TCP keepalive probes start on a connection. */
const KEEPALIVE_IDLE_MS = 10_000;

export class StreamPort {
  private server: Server | null = null;
  private socket: Socket | null = null;
  private closed = false;
  private retryMs = RETRY_FIRST_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private pending: Buffer[] = [];
  /** Bytes written while no peer was connected, waiting for the next one. */
  pendingBytes = 0;
  /** Writes to the current socket since Node's queue for it was last empty: what it may still hold. */
  private queued: Buffer[] = [];
  /** A connection being dialled, not yet connected. */
  private dialing: Socket | null = null;

  constructor(
    readonly endpoint: Endpoint,
    private readonly handlers: StreamPortHandlers,
  ) {}

  /** Starts listening (resolves once listening; rejects with the system error) or connecting (resolves at once). */
  start(): Promise<void> {
    if (!this.endpoint.server) {
      this.dial();
      return Promise.resolve();
    }
    const server = createServer((s) => this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const listening = (): void => {
        server.off('error', reject);
        server.on('error', () => {});
        resolve();
      };
      if (this.endpoint.kind === 'unix') {
        rmSync(this.endpoint.path, { force: true });
        server.listen(this.endpoint.path, listening);
      } else {
        server.listen(this.endpoint.port, this.endpoint.host, listening);
      }
    });
  }

  get connected(): boolean {
    return this.socket !== null;
  }

  /** Writes to the peer, or queues for the next one; false when the caller should wait for `drained`. */
  write(bytes: Buffer): boolean {
    const s = this.socket;
    if (s === null || !s.writable) {
      this.pending.push(bytes);
      this.pendingBytes += bytes.length;
      return false;
    }
    const ok = s.write(bytes);
    if (s.writableLength === 0) this.queued.length = 0;
    else this.queued.push(bytes);
    return ok;
  }

  /**
   * True when a peer is connected and every byte written to it so far is in the kernel, none
   * queued in this process: the buffers of those writes are no longer referenced here.
   */
  get flushed(): boolean {
    // A write to a closing socket went to `pending` instead, which keeps the buffer.
    return this.socket !== null && this.socket.writable && this.socket.writableLength === 0;
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
    this.handlers.disconnected(reason);
    if (!this.endpoint.server) this.retry();
  }

  /** Closes everything for good. */
  close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.dialing?.destroy();
    this.dialing = null;
    this.socket?.destroy();
    this.socket = null;
    const server = this.server;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private accept(s: Socket): void {
    if (this.socket !== null || this.closed) {
      s.destroy();
      return;
    }
    this.attach(s);
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
      this.retryMs = RETRY_FIRST_MS;
      this.attach(s);
    });
    s.once('error', () => {
      if (this.dialing === s) this.dialing = null;
      if (this.socket !== s) {
        s.destroy();
        this.retry();
      }
    });
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
    this.queued = [];
    s.setNoDelay?.(true);
    if (this.endpoint.kind === 'tcp') s.setKeepAlive(true, KEEPALIVE_IDLE_MS);
    this.handlers.connected();
    s.on('data', (chunk: Buffer) => this.handlers.data(chunk));
    s.on('drain', () => {
      this.queued.length = 0;
      this.handlers.drained();
    });
    const gone = (reason: string): void => {
      if (this.socket !== s) return;
      this.socket = null;
      // On 'error' Node still counts what it had not handed to the kernel (0 by 'close').
      this.requeue(s.writableLength);
      this.handlers.disconnected(reason);
      if (!this.endpoint.server) this.retry();
    };
    s.on('error', (e) => gone(e.message));
    s.on('close', () => gone('peer closed the connection'));
    if (this.pending.length > 0) {
      const waiting = this.pending;
      this.pending = [];
      this.pendingBytes = 0;
      for (const b of waiting) this.write(b);
    }
  }

  /**
   * Puts back, ahead of what waits already, the whole writes among the last `unsent` bytes a
   * connection that went away had queued: each write is whole frames, so a partly taken one is
   * dropped rather than resent from its middle.
   */
  private requeue(unsent: number): void {
    const back: Buffer[] = [];
    let bytes = 0;
    for (let i = this.queued.length - 1; i >= 0 && bytes + this.queued[i]!.length <= unsent; i--) {
      back.unshift(this.queued[i]!);
      bytes += this.queued[i]!.length;
    }
    this.queued = [];
    if (back.length === 0) return;
    this.pending = [...back, ...this.pending];
    this.pendingBytes += bytes;
  }
}
