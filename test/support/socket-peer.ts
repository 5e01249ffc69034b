/**
 * Test peers for socket front ends: connect to a unix socket (retrying while the server starts),
 * send QEMU-framed packets or notify messages, and collect what comes back, with bounded waits
 * that fail with a clear message instead of hanging.
 */

import { connect, type Socket } from 'node:net';
import { QemuFrameDecoder, encodeQemuFrame, type QemuFrame } from '../../proxy/framing/qemu-frames.js';
import { NotifyDecoder, encodeNotify, type NotifyMessage } from '../../proxy/framing/notify.js';

/** Polls `check` every 10 ms until it returns true or `ms` pass; then throws `what`. */
export async function waitFor(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Connects to the unix socket at `path`, retrying for up to 5 s while nobody listens. */
export async function dial(path: string): Promise<Socket> {
  const until = Date.now() + 5000;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A peer on a QEMU chardev socket: sends frames, collects the frames it receives. */
export class FramePeer {
  readonly received: QemuFrame[] = [];
  closed = false;
  private readonly decoder: QemuFrameDecoder;

  constructor(readonly socket: Socket, vnetHeader = false) {
    this.decoder = new QemuFrameDecoder({ vnetHeader });
    socket.on('data', (chunk: Buffer) => this.received.push(...this.decoder.push(chunk).map((f) => ({ ...f, packet: f.packet.slice(), vnetHeader: f.vnetHeader.slice() }))));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static async open(path: string, vnetHeader = false): Promise<FramePeer> {
    return new FramePeer(await dial(path), vnetHeader);
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

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.received.push(...this.decoder.push(chunk)));
    socket.on('error', () => {});
  }

  static async open(path: string): Promise<NotifyPeer> {
    return new NotifyPeer(await dial(path));
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
