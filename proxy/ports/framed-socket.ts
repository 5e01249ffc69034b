/**
 * Ethernet frames over a QEMU chardev socket (COLO-REFERENCE §2, no virtio-net header): the link
 * between `run` and a `bridge` on the secondary's host, and the same framing QEMU's filters use.
 *
 * Contract. `send` encodes a frame and queues it; queued frames go out in one write per event-loop
 * turn (setImmediate), so a burst of captured frames costs one system call, or at once when they
 * reach MAX_BATCH_BYTES: a turn may be long in coming (capture-stall.ts), and the queue here
 * stays bounded meanwhile (the socket's own, once the kernel's buffer is full, only grows until
 * `maxPendingBytes`: past it frames are dropped until a turn lets it drain). While no peer is
 * connected, or while the socket's buffer is over `maxPendingBytes`, frames are dropped and
 * counted (a live link, like a wire: stale frames are worth nothing and memory stays bounded).
 * Received frames go to `handlers.frame` as views into the read chunk, valid during the call. A
 * framing error closes that connection (logged by the owner through `handlers.peer`) and the port
 * listens or reconnects for a new one, as StreamPort does; empty frames are skipped.
 */

import { QemuFrameDecoder, QemuFramingError, encodeQemuFrames, qemuFrameCount, type QemuFrameParts } from '../framing/qemu-frames.js';
import type { Endpoint } from './endpoint.js';
import { StreamPort } from './stream-port.js';

export interface FramedSocketHandlers {
  frame(frame: Uint8Array): void;
  /** A peer connected or went away (or was dropped for a framing error), or a line about the port (dial failures, peers waiting); for the log. */
  peer(connected: boolean, detail: string): void;
  /** A framing error closed the connection: its stable code (`qemu.*`), for the metrics. */
  framingError?(code: string): void;
}

const DEFAULT_MAX_PENDING = 8 * 1024 * 1024;
/** Queued bytes that go out without waiting for the event loop's turn. */
const MAX_BATCH_BYTES = 256 * 1024;

export class FramedSocket {
  received = 0;
  sent = 0;
  /** Frames dropped because no peer was connected, the socket was backed up, or a peer went away while taking them. */
  dropped = 0;
  framingErrors = 0;
  private readonly port: StreamPort;
  private decoder = new QemuFrameDecoder({ vnetHeader: false });
  private batch: QemuFrameParts[] = [];
  private batchBytes = 0;
  private flushing = false;
  /** Bytes written since the socket last reported its buffer full (0 when it drained). */
  private backlog = 0;

  constructor(
    readonly endpoint: Endpoint,
    private readonly handlers: FramedSocketHandlers,
    private readonly maxPendingBytes = DEFAULT_MAX_PENDING,
  ) {
    this.port = new StreamPort(endpoint, {
      connected: () => {
        this.decoder = new QemuFrameDecoder({ vnetHeader: false });
        this.backlog = 0;
        handlers.peer(true, 'peer connected');
      },
      data: (chunk) => this.receive(chunk),
      disconnected: (reason, dropped) => {
        if (dropped !== null) this.dropped += qemuFrameCount(dropped, false);
        handlers.peer(false, `peer gone (${reason})`);
      },
      log: (line) => handlers.peer(false, line),
      drained: () => {
        this.backlog = 0;
      },
    });
  }

  /** Listens (resolves once listening, rejects with the system error) or starts connecting. */
  start(): Promise<void> {
    return this.port.start();
  }

  get connected(): boolean {
    return this.port.connected;
  }

  /** Queues a copy of one frame (the caller's bytes may be a capture buffer's transient view); false when dropped. */
  send(frame: Uint8Array): boolean {
    if (!this.port.connected || this.backlog > this.maxPendingBytes) {
      this.dropped++;
      return false;
    }
    this.batch.push({ packet: Uint8Array.prototype.slice.call(frame) });
    this.batchBytes += frame.length;
    if (this.batchBytes >= MAX_BATCH_BYTES) {
      this.flush();
    } else if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => {
        this.flushing = false;
        this.flush();
      });
    }
    return true;
  }

  close(): Promise<void> {
    this.batch = [];
    this.batchBytes = 0;
    return this.port.close();
  }

  private flush(): void {
    const parts = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (parts.length === 0 || !this.port.connected) {
      this.dropped += parts.length;
      return;
    }
    const bytes = encodeQemuFrames(parts, false, Buffer.allocUnsafe);
    this.sent += parts.length;
    if (!this.port.write(bytes) || this.backlog > 0) this.backlog += bytes.length;
  }

  private receive(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      if (!(e instanceof QemuFramingError)) throw e;
      this.framingError(e);
      return;
    }
    for (const f of frames) {
      if (f.packet.length === 0) continue;
      this.received++;
      this.handlers.frame(f.packet);
    }
    if (this.decoder.error) this.framingError(this.decoder.error);
  }

  private framingError(e: QemuFramingError): void {
    this.framingErrors++;
    this.handlers.framingError?.(e.code);
    this.handlers.peer(false, `${e.message}; closing this connection`);
    this.port.drop(e.code);
  }
}
