/**
 * One socket endpoint of the `compare` front end, kept up for the life of the process.
 *
 * A listening port (`,server`) accepts one peer at a time, as a QEMU socket chardev does: a second
 * peer arriving while one is connected is refused (closed at once), and after the peer goes away
 * the next one is accepted. A connecting port retries with backoff (100 ms doubling to 2 s) until
 * it is closed. Every (re)connection is a fresh byte stream: the owner resets its decoder on
 * `connected`. Bytes written while no peer is connected wait in order for the next one (the owner
 * bounds them with `pendingBytes`), so a released frame is never lost to a reconnect.
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

export class StreamPort {
  private server: Server | null = null;
  private socket: Socket | null = null;
  private closed = false;
  private retryMs = RETRY_FIRST_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private pending: Buffer[] = [];
  /** Bytes written while no peer was connected, waiting for the next one. */
  pendingBytes = 0;

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
    if (this.socket === null) {
      this.pending.push(bytes);
      this.pendingBytes += bytes.length;
      return false;
    }
    return this.socket.write(bytes);
  }

  /**
   * True when a peer is connected and every byte written to it so far is in the kernel, none
   * queued in this process: the buffers of those writes are no longer referenced here.
   */
  get flushed(): boolean {
    return this.socket !== null && this.socket.writableLength === 0;
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
    s.once('connect', () => {
      this.retryMs = RETRY_FIRST_MS;
      this.attach(s);
    });
    s.once('error', () => {
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
    s.setNoDelay?.(true);
    this.handlers.connected();
    s.on('data', (chunk: Buffer) => this.handlers.data(chunk));
    s.on('drain', () => this.handlers.drained());
    const gone = (reason: string): void => {
      if (this.socket !== s) return;
      this.socket = null;
      this.handlers.disconnected(reason);
      if (!this.endpoint.server) this.retry();
    };
    s.on('error', (e) => gone(e.message));
    s.on('close', () => gone('peer closed the connection'));
    if (this.pending.length > 0) {
      const queued = this.pending;
      this.pending = [];
      this.pendingBytes = 0;
      for (const b of queued) s.write(b);
    }
  }
}
