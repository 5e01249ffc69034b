/**
 * Checkpoint controllers: where the comparator's checkpoint requests go and where "checkpoint
 * done" comes from. The comparator already coalesces requests (at most one outstanding), so a
 * controller forwards each request once and calls `done` when the checkpoint has completed.
 *
 * - `XenNotifyController` speaks the Xen toolstack protocol on `--notify-dev` (COLO-REFERENCE §4):
 *   it answers `COLO_USERSPACE_PROXY_INIT` with `COLO_COMPARE_GET_XEN_INIT`, sends `DO_CHECKPOINT`
 *   (one write per message), and treats `COLO_CHECKPOINT` as done. A request made while no
 *   controller is connected is sent when one connects, after the reply to its hello: Xen's
 *   libxl reads the one message after its hello as the reply, so a DO_CHECKPOINT sent first would
 *   be taken for it and lost. A controller that sends no hello gets it HELLO_GRACE_MS after
 *   connecting. Every connection is a new conversation: what was not sent to one that went is
 *   forgotten (a request still wanted goes again after the next one's hello). A controller that
 *   leaves more than NOTIFY_UNSENT_LIMIT bytes of ours unread (hellos sent and replies never read)
 *   is closed, so that it cannot make this process queue without bound. Unknown messages are
 *   counted and logged, at most 20 lines a second.
 * - `ImmediateController`, without `--notify-dev`: nothing can checkpoint the VMs, so each request
 *   is logged and counted and then ended at once by the owner's `done`, which resynchronises the
 *   comparator (the connections that diverged release their held frames and start afresh; the SVM
 *   was not reset, so nothing else of it is forgotten); the start-up message says so. It keeps
 *   traffic flowing for dry runs, monitoring beside KVM and measurements, never silently.
 */

import { COLO_CHECKPOINT, COLO_COMPARE_GET_XEN_INIT, DO_CHECKPOINT, NotifyDecoder, NotifyError, encodeNotify } from '../framing/notify.js';
import type { Endpoint } from '../ports/endpoint.js';
import { StreamPort } from '../ports/stream-port.js';
import type { ProxyMetrics } from '../metrics/registry.js';
import { LogLimiter } from '../engine/log-limiter.js';

export interface CheckpointController {
  /** One line for the start-up log: how checkpoints are signalled. */
  readonly description: string;
  /** Starts listening or connecting. */
  start(): Promise<void>;
  /** Asks for a checkpoint (the comparator makes at most one request until `done`). */
  request(): void;
  close(): Promise<void>;
}

/** How long a new controller has to send its hello before a pending DO_CHECKPOINT goes anyway (Xen waits 500 ms for the reply). */
export const HELLO_GRACE_MS = 500;

/** Bytes of replies and requests a controller may leave unread before it is closed (a notify message is 4 + at most ~30 bytes). */
export const NOTIFY_UNSENT_LIMIT = 64 * 1024;

export class XenNotifyController implements CheckpointController {
  private readonly port: StreamPort;
  private decoder = new NotifyDecoder();
  private wanted = false;
  /** The connected controller has sent its hello (or had HELLO_GRACE_MS to): DO_CHECKPOINT may go. */
  private greeted = false;
  private graceTimer: NodeJS.Timeout | null = null;
  private readonly unknownLines: LogLimiter;
  /** Counts connections, so that the rest of a read is not taken for the next controller's after a drop. */
  private connection = 0;

  constructor(
    endpoint: Endpoint,
    private readonly done: () => void,
    private readonly metrics: ProxyMetrics,
    private readonly log: (line: string) => void,
  ) {
    this.unknownLines = new LogLimiter(log);
    this.port = new StreamPort(endpoint, {
      connected: () => {
        this.connection++;
        this.decoder = new NotifyDecoder();
        this.metrics.peerConnections.inc({ port: 'notify-dev' });
        this.log(`notify-dev: controller connected`);
        this.greeted = false;
        this.graceTimer = setTimeout(() => this.greet(), HELLO_GRACE_MS);
      },
      data: (chunk) => this.receive(chunk),
      disconnected: (reason) => {
        this.stopGrace();
        this.port.discardPending();
        this.log(`notify-dev: controller gone (${reason})`);
        this.streamEnded();
      },
      log: (line) => this.log(`notify-dev: ${line}`),
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
    if (this.port.connected && this.greeted) this.send(DO_CHECKPOINT);
  }

  close(): Promise<void> {
    this.stopGrace();
    return this.port.close();
  }

  /** The controller said hello or had its time to: a pending request goes now. */
  private greet(): void {
    this.stopGrace();
    if (this.greeted || !this.port.connected) return;
    this.greeted = true;
    if (this.wanted) this.send(DO_CHECKPOINT);
  }

  private stopGrace(): void {
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }

  private send(text: string): void {
    this.port.write(Buffer.from(encodeNotify(text)));
    if (this.port.connected && this.port.unsentBytes > NOTIFY_UNSENT_LIMIT) {
      this.log(`notify-dev: the controller left ${this.port.unsentBytes} bytes of ours unread; closing the connection`);
      this.port.drop('not reading');
    }
  }

  private receive(chunk: Buffer): void {
    let messages;
    try {
      messages = this.decoder.push(chunk);
    } catch (e) {
      if (!(e instanceof NotifyError)) throw e;
      this.framingError(e);
      return;
    }
    const connection = this.connection;
    for (const m of messages) {
      if (this.connection !== connection || !this.port.connected) return;
      if (m.kind === 'hello') {
        this.send(COLO_COMPARE_GET_XEN_INIT);
        // Sending may have dropped this controller (and taken the next, which has said nothing yet).
        if (this.connection !== connection) return;
        this.greet();
      } else if (m.kind === 'checkpoint-done') {
        this.wanted = false;
        this.done();
      } else {
        this.metrics.notifyUnknown.inc();
        this.unknownLines.line('notify-dev unknown-message', `notify-dev: unknown message ${JSON.stringify(m.text)} ignored (expected ${COLO_CHECKPOINT} or the hello)`);
      }
    }
    // Damage after good messages in the same read: they were handled, now the connection goes.
    if (this.decoder.error && this.connection === connection && this.port.connected) this.framingError(this.decoder.error);
  }

  /**
   * The controller's connection is over: a message it stopped inside of is lost, counted and logged
   * as the framing error it is (unless the connection was closed for an earlier one), as on the
   * frame inputs.
   */
  private streamEnded(): void {
    if (this.decoder.error !== undefined) return;
    try {
      this.decoder.end();
    } catch (e) {
      if (!(e instanceof NotifyError)) throw e;
      this.metrics.framingErrors.inc({ port: 'notify-dev', code: e.code });
      this.log(`notify-dev: ${e.message}; that partial message is dropped`);
    }
  }

  private framingError(e: NotifyError): void {
    this.metrics.framingErrors.inc({ port: 'notify-dev', code: e.code });
    this.log(`notify-dev: ${e.message}; closing the connection`);
    this.port.drop(e.code);
  }
}

export class ImmediateController implements CheckpointController {
  readonly description = 'checkpoints: no --notify-dev, so nothing can checkpoint the VMs: each request is logged and counted, and ends at once, the connections that diverged releasing what they hold and compared afresh';

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
