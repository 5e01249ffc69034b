/**
 * Prometheus metrics for a running comparator, read from the core's `Counters` when scraped:
 * the hot path counts plain numbers and pays nothing for metrics. Front-end counters (framing
 * errors, connections, notify messages) are prom-client counters incremented where they happen.
 * All names start with `colo_proxy_`; reason and code labels are the stable codes of
 * compare/events.ts, the same words as in logs and replay reports. Mismatches and checkpoint
 * requests are exported for every reason from the start, at 0.
 */

import { Counter, Gauge, Registry } from 'prom-client';
import { MISMATCH_REASONS, type Counters } from '../../compare/index.js';

export interface ProxyMetrics {
  registry: Registry;
  /** Framing and protocol errors on the front end's sockets, by code (`qemu.*`, `notify.*`). */
  framingErrors: Counter<'port' | 'code'>;
  /** Peer connections accepted or made, by port. */
  peerConnections: Counter<'port'>;
  /** Notify messages received that colo-proxy does not know. */
  notifyUnknown: Counter;
  /** Released frames dropped with the write outdev's departing peer was taking (stream-port.ts). */
  outdevDropped: Counter;
}

/** Where frames come from: `compare` has no client side (QEMU's filter-mirror feeds the SVM), `run` has all three. */
export type InputSide = 'primary' | 'secondary' | 'client';

/**
 * A registry whose core metrics read `counters` at scrape time; `colo_proxy_frames_total` has a
 * series for each of `sides`, and counts besides the core's the frames `passedThrough` says went
 * round it (`run` while a peer is lost).
 */
export function createMetrics(counters: Counters, sides: readonly InputSide[], passedThrough?: Readonly<Record<InputSide, number>>): ProxyMetrics {
  const registry = new Registry();
  const total = (name: string, help: string, read: () => number): void => {
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  };
  // `known`: label values exported from the start, at 0, so that an alert on a rate has a series
  // to read before the first event (Prometheus' advice against missing metrics).
  const byLabel = <L extends string>(name: string, help: string, label: L, read: () => Iterable<[string, number]>, known: readonly string[] = []): void => {
    new Counter<L>({
      name, help, labelNames: [label], registers: [registry],
      collect() {
        this.reset();
        for (const value of known) this.inc({ [label]: value } as Record<L, string>, 0);
        for (const [value, n] of read()) this.inc({ [label]: value } as Record<L, string>, n);
      },
    });
  };
  const framesOf: Record<InputSide, () => number> = { primary: () => counters.primaryFrames, secondary: () => counters.secondaryFrames, client: () => counters.clientFrames };
  byLabel('colo_proxy_frames_total', sides.includes('client')
    ? 'Frames received, by side (primary = PVM output, secondary = SVM output, client = towards the guest), those passed through uncompared included.'
    : 'Frames received, by side (primary = PVM output, secondary = SVM output).',
  'side', () => sides.map((side) => [side, framesOf[side]() + (passedThrough?.[side] ?? 0)]));
  total('colo_proxy_released_frames_total', passedThrough === undefined
    ? 'Primary frames released to the client.'
    : 'Primary frames released to the client by the comparator (not those passed through uncompared: colo_proxy_passthrough_frames_total).', () => counters.releasedFrames);
  total('colo_proxy_compared_bytes_total', 'Payload bytes compared equal on both sides (a difference is counted in colo_proxy_mismatches_total instead).', () => counters.comparedBytes);
  total('colo_proxy_unverified_bytes_total', 'Primary bytes released uncompared (connections picked up mid-stream).', () => counters.unverifiedBytes);
  const reasons = Object.keys(MISMATCH_REASONS);
  byLabel('colo_proxy_mismatches_total', 'Differences found, by reason.', 'reason', () => counters.mismatches, reasons);
  byLabel('colo_proxy_checkpoint_requests_total', 'Checkpoints requested, by the reason that triggered them.', 'reason', () => counters.checkpoints, reasons);
  total('colo_proxy_checkpoints_coalesced_total', 'Mismatches found while a checkpoint was already outstanding.', () => counters.checkpointsCoalesced);
  total('colo_proxy_checkpoints_done_total', 'Checkpoints the controller reported done.', () => counters.checkpointsDone);
  byLabel('colo_proxy_events_total', 'Other events by code (decode.*, fragment.*, flow.*, client.*; qemu.empty_frame: a zero-length frame on an input, skipped).', 'code', () => counters.events);
  new Gauge({ name: 'colo_proxy_held_frames', help: 'Primary frames held right now.', registers: [registry], collect() { this.set(counters.heldFrames); } });
  new Gauge({ name: 'colo_proxy_held_bytes', help: 'Bytes of the primary frames held right now.', registers: [registry], collect() { this.set(counters.heldBytes); } });
  new Gauge({ name: 'colo_proxy_secondary_waiting_frames', help: 'Secondary segments and messages waiting for the primary right now.', registers: [registry], collect() { this.set(counters.secondaryWaitingFrames); } });
  return {
    registry,
    framingErrors: new Counter({ name: 'colo_proxy_framing_errors_total', help: 'Framing or protocol errors on a socket, by port and code (the connection is closed; qemu.truncated: the peer closed it inside a frame).', labelNames: ['port', 'code'], registers: [registry] }),
    peerConnections: new Counter({ name: 'colo_proxy_peer_connections_total', help: 'Peer connections accepted or made, by port.', labelNames: ['port'], registers: [registry] }),
    notifyUnknown: new Counter({ name: 'colo_proxy_notify_unknown_total', help: 'Notify messages of an unknown kind.', registers: [registry] }),
    outdevDropped: new Counter({ name: 'colo_proxy_outdev_dropped_frames_total', help: "Released frames of the write outdev's peer was taking when it went away: dropped, not resent (it may have read part of it, or all of it). Frames the kernel already held for that peer are lost with it and not counted here.", registers: [registry] }),
  };
}
