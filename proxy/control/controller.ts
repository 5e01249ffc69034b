/**
 * Checkpoint controllers: where the comparator's checkpoint requests go and where "checkpoint
 * done" comes from. The comparator already coalesces requests (at most one outstanding), so a
 * controller forwards each request once and calls `done` when the checkpoint has completed.
 *
 * - `XenNotifyController` speaks the Xen toolstack protocol on `--notify-dev` (COLO-REFERENCE §4):
 *   it answers `COLO_USERSPACE_PROXY_INIT` with `COLO_COMPARE_GET_XEN_INIT`, sends `DO_CHECKPOINT`
 *   (one write per message), and treats `COLO_CHECKPOINT` as done. A request made while no
 *   controller is connected is sent when one connects. Unknown messages are logged and counted.
 * - `ImmediateController`, without `--notify-dev`: nothing can checkpoint the VMs, so each request
 *   is logged and counted and then completed at once (held frames are released); the start-up
 *   message says so. It keeps traffic flowing for dry runs and measurements, never silently.
 */

import { COLO_CHECKPOINT, COLO_COMPARE_GET_XEN_INIT, DO_CHECKPOINT, NotifyDecoder, NotifyError, encodeNotify } from '../framing/notify.js';
import type { Endpoint } from '../ports/endpoint.js';
import { StreamPort } from '../ports/stream-port.js';
import type { ProxyMetrics } from '../metrics/registry.js';

export interface CheckpointController {
  /** One line for the start-up log: how checkpoints are signalled. */
  readonly description: string;
  /** Starts listening or connecting. */
  start(): Promise<void>;
  /** Asks for a checkpoint (the comparator makes at most one request until `done`). */
  request(): void;
  close(): Promise<void>;
}

export class XenNotifyController implements CheckpointController {
  private readonly port: StreamPort;
  private decoder = new NotifyDecoder();
  private wanted = false;

  constructor(
    endpoint: Endpoint,
    private readonly done: () => void,
    private readonly metrics: ProxyMetrics,
    private readonly log: (line: string) => void,
  ) {
    this.port = new StreamPort(endpoint, {
      connected: () => {
        this.decoder = new NotifyDecoder();
        this.metrics.peerConnections.inc({ port: 'notify-dev' });
        this.log(`notify-dev: controller connected`);
        if (this.wanted) this.send(DO_CHECKPOINT);
      },
      data: (chunk) => this.receive(chunk),
      disconnected: (reason) => this.log(`notify-dev: controller gone (${reason})`),
      drained: () => {},
    });
  }

  get description(): string {
    return `checkpoints: requested with DO_CHECKPOINT on --notify-dev ${this.port.endpoint.text} (Xen protocol), done on COLO_CHECKPOINT`;
  }

  start(): Promise<void> {
    return this.port.start();
  }

  request(): void {
    this.wanted = true;
    if (this.port.connected) this.send(DO_CHECKPOINT);
  }

  close(): Promise<void> {
    return this.port.close();
  }

  private send(text: string): void {
    this.port.write(Buffer.from(encodeNotify(text)));
  }

  private receive(chunk: Buffer): void {
    let messages;
    try {
      messages = this.decoder.push(chunk);
    } catch (e) {
      if (!(e instanceof NotifyError)) throw e;
      this.metrics.framingErrors.inc({ port: 'notify-dev', code: e.code });
      this.log(`notify-dev: ${e.message}; closing the connection`);
      this.port.drop(e.code);
      return;
    }
    for (const m of messages) {
      if (m.kind === 'hello') this.send(COLO_COMPARE_GET_XEN_INIT);
      else if (m.kind === 'checkpoint-done') {
        this.wanted = false;
        this.done();
      } else {
        this.metrics.notifyUnknown.inc();
        this.log(`notify-dev: unknown message ${JSON.stringify(m.text)} ignored (expected ${COLO_CHECKPOINT} or the hello)`);
      }
    }
  }
}

export class ImmediateController implements CheckpointController {
  readonly description = 'checkpoints: no --notify-dev, so nothing can checkpoint the VMs: each request is logged and counted, then treated as done at once';

  constructor(private readonly done: () => void) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  request(): void {
    setImmediate(this.done);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
