/**
 * Metrics of `run`: everything `compare` exports (read from the core's counters at scrape time,
 * through a getter because `restore` replaces the core), plus the live ports and the
 * pass-through states (secondary lost, controller lost). cap exposes no capture drop counter, so each interface's own kernel
 * counters (sysfs) are exported beside what was captured: `rx_packets` growing faster than
 * `captured` means the capture ring is losing frames. Mirrored as they are, they start again from
 * 0 when the interface is recreated (a tap when QEMU restarts), as node_exporter's do: a counter
 * reset to Prometheus, which `rate()` handles.
 *
 *   colo_proxy_interface_frames_total{role,interface,direction="captured"|"sent"}
 *   colo_proxy_interface_send_errors_total{role,interface}    frames the kernel refused
 *   colo_proxy_interface_truncated_total{role,interface}      frames longer than a ring slot
 *   colo_proxy_interface_segmented_total{role,interface,by="kernel"|"colo-proxy"}
 *                                                             frames over the MTU cut into segments
 *   colo_proxy_interface_reopens_total{role,interface}        handle reopened after down/up or an MTU raise
 *   colo_proxy_interface_kernel_packets_total{role,interface,direction="rx"|"tx"}
 *   colo_proxy_interface_kernel_dropped_total{role,interface,direction="rx"|"tx"}
 *   colo_proxy_secondary_lost                                  1 while passing through
 *   colo_proxy_secondary_losses_total                         times declared lost (a distinct name: OpenMetrics
 *                                                             takes NAME_total for the counter of family NAME)
 *   colo_proxy_controller_lost                                 1 while passing through for it
 *   colo_proxy_controller_losses_total
 *   colo_proxy_restores_total{lost="secondary"|"controller"}  SIGUSR2 restores, by what was lost
 *   colo_proxy_timeout_episodes                                consecutive ones so far
 *   colo_proxy_passthrough_frames_total{side}
 *   colo_proxy_checksums_completed_total                     partial (offloaded) checksums completed
 *   colo_proxy_secondary_socket_frames_total{direction}      --secondary-socket: received, sent, dropped
 *     (no bridge connected, or over 8 MiB backed up); its framing errors are in
 *     colo_proxy_framing_errors_total{port="secondary-socket"}
 */

import { Counter, Gauge } from 'prom-client';
import type { Counters } from '../../compare/index.js';
import { createMetrics, type ProxyMetrics } from '../metrics/registry.js';
import { interfaceCounters, type PcapInterface } from '../ports/pcap-interface.js';

/**
 * Counters that read a total kept outside the engine (the interfaces' own statistics), which a
 * new engine reads whole again: not carried over from one engine to the next (engine-relay.ts).
 */
export const ABSOLUTE_COUNTERS: ReadonlySet<string> = new Set(['colo_proxy_interface_kernel_packets_total', 'colo_proxy_interface_kernel_dropped_total']);

export interface LivePortStats {
  role: 'client' | 'primary' | 'secondary';
  port: PcapInterface;
}

export interface RunMetrics extends ProxyMetrics {
  secondaryLost: Counter;
  controllerLost: Counter;
  restores: Counter<'lost'>;
}

/** What the metrics read from the engine besides the core. */
export interface RunState {
  readonly secondaryLost: boolean;
  readonly controllerLost: boolean;
  readonly timeoutEpisodes: number;
  readonly passedThrough: { client: number; primary: number; secondary: number };
  readonly checksums: { readonly completed: number };
  /** The --secondary-socket link's frame counts, or null without one. */
  readonly secondarySocket: { readonly received: number; readonly sent: number; readonly dropped: number } | null;
}

/** A Counters that always reads the current core's (the core is replaced on restore). */
function currentCounters(current: () => Counters): Counters {
  return new Proxy({} as Counters, {
    get: (_t, key) => {
      const c = current();
      const v = Reflect.get(c, key, c) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(c) : v;
    },
  });
}

export function createRunMetrics(current: () => Counters, ports: readonly LivePortStats[], state: RunState): RunMetrics {
  const base = createMetrics(currentCounters(current), ['primary', 'secondary', 'client'], state.passedThrough);
  const registry = base.registry;
  const perPort = (name: string, help: string, read: (p: PcapInterface) => number): void => {
    new Counter({
      name, help, labelNames: ['role', 'interface'], registers: [registry],
      collect() {
        this.reset();
        for (const { role, port } of ports) this.inc({ role, interface: port.name }, read(port));
      },
    });
  };
  new Counter({
    name: 'colo_proxy_interface_frames_total', help: 'Frames captured from and sent onto each live interface.', labelNames: ['role', 'interface', 'direction'], registers: [registry],
    collect() {
      this.reset();
      for (const { role, port } of ports) {
        this.inc({ role, interface: port.name, direction: 'captured' }, port.captured);
        this.inc({ role, interface: port.name, direction: 'sent' }, port.sent);
      }
    },
  });
  perPort('colo_proxy_interface_send_errors_total', 'Frames the kernel refused to send (interface down, queue full, too long).', (p) => p.sendErrors);
  perPort('colo_proxy_interface_truncated_total', 'Frames captured cut short (longer than a capture ring slot: offloads on) and dropped.', (p) => p.truncated);
  new Counter({
    name: 'colo_proxy_interface_segmented_total',
    help: 'TCP frames longer than the MTU (segmentation offload) sent as segments, cut by the kernel (packet socket addon) or by colo-proxy.',
    labelNames: ['role', 'interface', 'by'], registers: [registry],
    collect() {
      this.reset();
      for (const { role, port } of ports) {
        this.inc({ role, interface: port.name, by: 'kernel' }, port.kernelSegmented);
        this.inc({ role, interface: port.name, by: 'colo-proxy' }, port.segmented);
      }
    },
  });
  perPort('colo_proxy_interface_reopens_total', 'Capture handles reopened after the interface went down or was replaced, or its MTU was raised.', (p) => p.reopens);
  const kernel = (name: string, help: string, rx: 'rxPackets' | 'rxDropped', tx: 'txPackets' | 'txDropped'): void => {
    new Counter({
      name, help, labelNames: ['role', 'interface', 'direction'], registers: [registry],
      collect() {
        this.reset();
        for (const { role, port } of ports) {
          const c = interfaceCounters(port.name);
          if (c === null) continue;
          this.inc({ role, interface: port.name, direction: 'rx' }, c[rx]);
          this.inc({ role, interface: port.name, direction: 'tx' }, c[tx]);
        }
      },
    });
  };
  kernel('colo_proxy_interface_kernel_packets_total', "The interface's own packet counters (sysfs statistics).", 'rxPackets', 'txPackets');
  kernel('colo_proxy_interface_kernel_dropped_total', "The interface's own drop counters (sysfs statistics).", 'rxDropped', 'txDropped');
  new Counter({ name: 'colo_proxy_checksums_completed_total', help: 'Client and PVM frames whose TCP/UDP checksum the sender left to the device (offload), completed before injection.', registers: [registry], collect() { this.reset(); this.inc(state.checksums.completed); } });
  new Gauge({ name: 'colo_proxy_secondary_lost', help: '1 while the secondary is declared lost and the primary passes through uncompared.', registers: [registry], collect() { this.set(state.secondaryLost ? 1 : 0); } });
  new Gauge({ name: 'colo_proxy_controller_lost', help: '1 while the checkpoint controller is declared lost (a checkpoint not done within --controller-timeout, or 256 MiB held waiting for one) and the primary passes through uncompared.', registers: [registry], collect() { this.set(state.controllerLost ? 1 : 0); } });
  new Gauge({ name: 'colo_proxy_timeout_episodes', help: 'Consecutive timeout episodes with nothing compared (the secondary is lost at --lost-after).', registers: [registry], collect() { this.set(state.timeoutEpisodes); } });
  const link = state.secondarySocket;
  if (link !== null) {
    new Counter({
      name: 'colo_proxy_secondary_socket_frames_total', help: 'Frames on the --secondary-socket link to the bridge: received, sent, and dropped (no bridge connected, or the link backed up).',
      labelNames: ['direction'], registers: [registry],
      collect() {
        this.reset();
        this.inc({ direction: 'received' }, link.received);
        this.inc({ direction: 'sent' }, link.sent);
        this.inc({ direction: 'dropped' }, link.dropped);
      },
    });
  }
  new Counter({
    name: 'colo_proxy_passthrough_frames_total', help: 'Frames passed through uncompared while the secondary or the controller was lost, by side.', labelNames: ['side'], registers: [registry],
    collect() {
      this.reset();
      for (const [side, n] of Object.entries(state.passedThrough)) this.inc({ side }, n);
    },
  });
  const restores = new Counter({ name: 'colo_proxy_restores_total', help: 'Times the operator restored comparison (SIGUSR2), by what had been declared lost: the secondary or the controller.', labelNames: ['lost'], registers: [registry] });
  for (const lost of ['secondary', 'controller']) restores.inc({ lost }, 0); // both series from the start, for rate()
  return {
    ...base,
    secondaryLost: new Counter({ name: 'colo_proxy_secondary_losses_total', help: 'Times the secondary was declared lost (its interface gone at an engine start included).', registers: [registry] }),
    controllerLost: new Counter({ name: 'colo_proxy_controller_losses_total', help: 'Times the checkpoint controller was declared lost.', registers: [registry] }),
    restores,
  };
}
