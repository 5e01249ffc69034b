/**
 * Test peers for socket front ends: connect to a unix socket (retrying while the server starts),
 * send QEMU-framed packets or notify messages, and collect what comes back, with bounded waits
 * that fail with a clear message instead of hanging. A peer that cannot decode what it reads
 * stops there and keeps the decoder's error in `error`.
 */

import type { Socket } from 'node:net';
import { dialUntil } from '../../proxy/ports/dial.js';
import { QemuFrameDecoder, encodeQemuFrame, type QemuFrame } from '../../proxy/framing/qemu-frames.js';
import { NotifyDecoder, encodeNotify, type NotifyMessage } from '../../proxy/framing/notify.js';

/**
 * Polls `check` every 5 ms until it returns true or `ms` pass; then throws, naming `what` (a
 * function is called at the timeout, so it can tell what was seen so far). An error `check`
 * throws ends the wait.
 */
export async function waitFor(what: string | (() => string), check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Connects to the unix socket at `path`, retrying for up to `ms` while nobody listens there yet;
 * `alive` is called before each attempt and throws to give up early (the server died).
 */
export function dial(path: string, ms = 5000, alive?: () => void): Promise<Socket> {
  return dialUntil({ kind: 'unix', path, server: false, text: path }, Date.now() + ms, alive);
}

/** Writes `bytes` to `socket`; resolves once they are handed to the kernel. */
export function writeAll(socket: Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(bytes, (e) => (e ? reject(e) : resolve()));
  });
}

/** A peer on a QEMU chardev socket: sends frames, collects (copies of) the frames it receives that `keep` accepts. */
export class FramePeer {
  readonly received: QemuFrame[] = [];
  closed = false;
  private readonly decoder: QemuFrameDecoder;
  private decodeError: Error | undefined = undefined;

  constructor(readonly socket: Socket, vnetHeader = false, keep: (frame: QemuFrame) => boolean = () => true) {
    this.decoder = new QemuFrameDecoder({ vnetHeader });
    socket.on('data', (chunk: Buffer) => {
      if (this.decodeError) return;
      try {
        for (const f of this.decoder.push(chunk)) {
          const frame = { ...f, packet: Uint8Array.from(f.packet), vnetHeader: Uint8Array.from(f.vnetHeader) };
          if (keep(frame)) this.received.push(frame);
        }
      } catch (e) {
        this.decodeError = e as Error;
      }
      this.decodeError ??= this.decoder.error;
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static async open(path: string, vnetHeader = false): Promise<FramePeer> {
    return new FramePeer(await dial(path), vnetHeader);
  }

  /** Why decoding stopped, if it did. */
  get error(): Error | undefined {
    return this.decodeError;
  }

  send(packet: Uint8Array, vnetHeader?: Uint8Array): void {
    this.socket.write(encodeQemuFrame(packet, vnetHeader));
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  waitForFrames(n: number, ms?: number): Promise<void> {
    return waitFor(`${n} frames`, () => this.received.length >= n, ms).catch((e: Error) => {
      throw new Error(`${e.message} (have ${this.received.length})`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A checkpoint controller speaking the Xen notify protocol. */
export class NotifyPeer {
  readonly received: NotifyMessage[] = [];
  private readonly decoder = new NotifyDecoder();
  private decodeError: Error | undefined = undefined;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      if (this.decodeError) return;
      try {
        this.received.push(...this.decoder.push(chunk));
      } catch (e) {
        this.decodeError = e as Error;
      }
      this.decodeError ??= this.decoder.error;
    });
    socket.on('error', () => {});
  }

  static async open(path: string): Promise<NotifyPeer> {
    return new NotifyPeer(await dial(path));
  }

  /** Why decoding stopped, if it did. */
  get error(): Error | undefined {
    return this.decodeError;
  }

  send(text: string): void {
    this.socket.write(encodeNotify(text));
  }

  count(text: string): number {
    return this.received.filter((m) => m.text === text).length;
  }

  waitFor(text: string, n = 1, ms?: number): Promise<void> {
    return waitFor(`${n} x ${text} on notify`, () => this.count(text) >= n, ms).catch((e: Error) => {
      throw new Error(`${e.message} (have ${JSON.stringify(this.received.map((m) => m.text))})`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
