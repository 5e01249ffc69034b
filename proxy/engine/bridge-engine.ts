/**
 * The `bridge` front end: one live interface (the SVM's tap on the secondary's host) joined to a
 * framed socket (QEMU chardev framing, no virtio-net header) that leads to `colo-proxy run
 * --secondary-socket` on the primary's host. Frames the interface receives (the SVM's output) go
 * to the socket, batched one write per event-loop turn (or per 256 KiB, framed-socket.ts); frames from the socket (client traffic,
 * already translated by `run`) are injected onto the interface. Nothing is compared or changed
 * here. While no peer is connected the SVM's output is dropped and counted: `run` compares only
 * what arrives while it is connected.
 */

import { performance } from 'node:perf_hooks';
import type { Endpoint } from '../ports/endpoint.js';
import { FramedSocket } from '../ports/framed-socket.js';
import { PcapInterface, disableOffloads } from '../ports/pcap-interface.js';
import { startListenersFirst } from '../ports/start-ports.js';
import { CaptureStall } from './capture-stall.js';

export interface BridgeOptions {
  ifname: string;
  endpoint: Endpoint;
  ringBytes?: number;
  keepOffloads?: boolean;
  log(line: string): void;
  /** Called while captured frames keep the event loop from turning (capture-stall.ts). */
  whileStalled?(): void;
}

export class BridgeEngine {
  readonly port: PcapInterface;
  readonly socket: FramedSocket;

  constructor(private readonly options: BridgeOptions) {
    const stall = new CaptureStall(() => performance.now(), { stalled: () => options.whileStalled?.(), log: options.log });
    this.port = new PcapInterface(options.ifname, {
      packet: () => stall.frame(),
      frame: (f) => this.socket.send(f),
      state: (_up, detail) => options.log(`${options.ifname}: ${detail}`),
      notice: (detail) => options.log(`${options.ifname}: ${detail}`),
    }, { ringBytes: options.ringBytes });
    this.socket = new FramedSocket(options.endpoint, {
      frame: (f) => this.port.send(f),
      peer: (_connected, detail) => options.log(`${options.endpoint.text}: ${detail}`),
    });
  }

  /** Opens the socket and the interface, a listening socket first (start-ports.ts); throws naming what failed. */
  async start(): Promise<void> {
    const flag = this.options.endpoint.server ? '--listen' : '--connect';
    await startListenersFirst([{ flag, listens: this.options.endpoint.server, start: () => this.socket.start() }], () => this.close(), () => {
      if (!this.options.keepOffloads) {
        const still = disableOffloads(this.options.ifname);
        if (still.length > 0) this.options.log(`${this.options.ifname}: warning: offloads still on (${still.join(', ')}): the capture ring has 64 KiB slots, about 16 frames per MiB of --ring-mb`);
      }
      this.port.open();
    });
  }

  async close(): Promise<void> {
    this.port.close();
    await this.socket.close();
  }
}
