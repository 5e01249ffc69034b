/**
 * `colo-proxy run`: the live COLO proxy beside the VMs' tap (or veth) devices, doing the whole
 * job itself (mirror, translate, compare, release) with no QEMU filters. Checks before it opens
 * anything, each a one-line error with exit code 2: root (or CAP_NET_RAW + CAP_NET_ADMIN), cap
 * and libpcap loadable (naming what to install), the interfaces exist, are up and are distinct,
 * and no two of them would forward in a circle (interface-links.ts). Runs until SIGINT or SIGTERM; SIGUSR2 restores comparison after the secondary or the checkpoint
 * controller was declared lost.
 * The engine runs in a child process that is started again if it dies (supervise.ts).
 */

import type { Server } from 'node:http';
import type { Command } from './command.js';
import { InputError, UsageError } from './errors.js';
import { parseFlags } from './flags.js';
import { parseEndpoint, sameSocket } from '../ports/endpoint.js';
import { LiveCaptureError, capturePermissionProblem, checkInterface, interfaceState, loadCap } from '../ports/pcap-interface.js';
import { loopingInterfaces } from '../ports/interface-links.js';
import { RunEngine, type SecondaryPort } from '../engine/run-engine.js';
import { metricsLine, parseMetricsAddress, startMetrics } from './metrics-flag.js';
import { closeMetrics } from '../metrics/http.js';
import { EngineMetricsRelay, answerMetricsRequests, sendFinalMetrics } from '../metrics/engine-relay.js';
import { ABSOLUTE_COUNTERS } from '../engine/run-metrics.js';
import { EXIT_RESTART, engineStart, engineStarted, engineStop, engineWithout, exitIfSupervisorGone, supervise, type EngineWatcher } from './supervise.js';

const flags = {
  'client-if': { type: 'string', help: 'the interface facing the network (clients)', metavar: 'IF' },
  'primary-if': { type: 'string', help: "the PVM's tap or veth", metavar: 'IF' },
  'secondary-if': { type: 'string', help: "the SVM's tap or veth, on this host", metavar: 'IF' },
  'secondary-socket': { type: 'string', help: 'the SVM through `colo-proxy bridge` on its host: tcp:HOST:PORT[,server] or unix:PATH[,server]', metavar: 'EP' },
  'notify-dev': { type: 'string', help: 'checkpoint controller, Xen notify protocol (QEMU notify_dev)', metavar: 'EP' },
  metrics: { type: 'string', help: 'serve Prometheus metrics at http://HOST:PORT/metrics', metavar: 'HOST:PORT' },
  'compare-timeout': { type: 'integer', help: 'ms a frame may be held before a checkpoint', metavar: 'MS', min: 1, max: 3_600_000, default: 3000 },
  'expired-scan-cycle': { type: 'integer', help: 'ms between checks for held frames past the timeout', metavar: 'MS', min: 1, max: 3_600_000, default: 1000 },
  'max-queue-size': { type: 'integer', help: 'frames one side of one connection may hold before a checkpoint', metavar: 'N', min: 1, max: 1_000_000, default: 1024 },
  'lost-after': { type: 'integer', help: 'consecutive timeout episodes before the SVM is declared lost and the PVM passes through (0: never)', metavar: 'N', min: 0, max: 1_000_000, default: 3 },
  'controller-timeout': { type: 'integer', help: 'ms a requested checkpoint may take before the controller is declared lost and the PVM passes through (0: no time limit); 256 MiB held waiting for one declares it lost in any case', metavar: 'MS', min: 0, max: 3_600_000, default: 10_000 },
  'ring-mb': { type: 'integer', help: 'capture ring per interface, MiB', metavar: 'MB', min: 1, max: 2048, default: 64 },
  'keep-offloads': { type: 'boolean', help: 'leave GRO/GSO/TSO/LRO as they are (by default run turns them off on its interfaces). Needed when a guest sends segmentation-offload frames (up to 64 KiB; they are segmented again on the way out); a ring slot then takes 64 KiB, so give --ring-mb room' },
  'send-thread': { type: 'boolean', help: "send from a second thread (needs the packet socket addon), so that the receiving stacks' work each send sets off runs beside the comparison: more throughput when a core is free, more CPU taken from the guests when not" },
  gro: { type: 'boolean', help: "turn GRO on on --primary-if and --secondary-if (veths): the guests' segments are captured merged into frames of up to 64 KiB, compared whole and cut again for the client (about twice the throughput of guests without segmentation offload); a ring slot then takes 64 KiB, so give --ring-mb room" },
} as const;

/**
 * The start-up checks every live command makes, thrown as one-line errors (exit 2): not root, no
 * cap, an interface missing or down, or named twice, or two of them wired so that forwarding
 * would go in a circle (interface-links.ts). `optional` (the SVM's interface, in `run`'s
 * supervisor) may be missing or down: the engine starts without it (supervise.ts).
 */
export function checkLiveCapture(command: string, interfaces: readonly [flag: string, name: string][], optional?: string): void {
  try {
    const problem = capturePermissionProblem();
    if (problem !== null) throw new LiveCaptureError(problem, 'live.permission');
    loadCap();
    const seen = new Map<string, string>();
    for (const [flag, name] of interfaces) {
      const other = seen.get(name);
      if (other !== undefined) throw new UsageError(`${command}: ${flag} and ${other} name the same interface ${name}`);
      seen.set(name, flag);
      if (name !== optional || interfaceState(name)?.up === true) checkInterface(flag, name);
    }
    const loop = loopingInterfaces(interfaces);
    if (loop !== null) throw new UsageError(`${command}: ${loop}`);
  } catch (e) {
    if (e instanceof LiveCaptureError) throw new InputError(`${command}: ${e.message}`, e.code);
    throw e;
  }
}

/** What the supervisor tells the metrics of its engines (engine-relay.ts). */
function watcherOf(relay: EngineMetricsRelay): EngineWatcher {
  return {
    attach: (c) => relay.attach(c),
    detach: () => relay.detach(),
    lost: () => {
      // One loss, not two, when the engine before had declared it lost (timeouts), then died of its interface going.
      if (relay.departedGauge('colo_proxy_secondary_lost') !== 1) relay.add('colo_proxy_secondary_losses_total', {}, 1);
    },
    handedOver: () => relay.add('colo_proxy_restores_total', { lost: 'secondary' }, 1),
  };
}

export const runCommand: Command = {
  name: 'run',
  summary: "the live COLO proxy beside the VMs' tap devices: mirror, translate, compare, release",
  synopsis: '--client-if IF --primary-if IF (--secondary-if IF | --secondary-socket EP) [--notify-dev EP] [flags]',
  description:
    'Captures client frames on --client-if and delivers them to the PVM unchanged and to the SVM\n' +
    "translated into its sequence space; compares the PVM's and the SVM's output by TCP sequence\n" +
    "range and releases the PVM's onto --client-if. Needs root and libpcap (the optional cap\n" +
    'package). The interfaces must not be enslaved to a bridge: run forwards both ways itself.\n' +
    'After --lost-after consecutive timeouts with nothing compared the SVM is declared lost and\n' +
    "the PVM's output passes through uncompared; SIGUSR2 restores comparison. The same when a\n" +
    'checkpoint is not done within --controller-timeout: the controller is declared lost, until\n' +
    "a checkpoint is done or SIGUSR2. While --secondary-if is missing or down (at the start too),\n" +
    "the PVM's output passes through; once it is up, SIGUSR2 compares again.",
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseFlags('run', flags, argv);
    if (positionals.length > 0) throw new UsageError(`run: unexpected argument "${positionals[0]}"`);
    const need = (name: 'client-if' | 'primary-if'): string => {
      const v = f[name];
      if (v === undefined) throw new UsageError(`run: --${name} IF is required`);
      return v;
    };
    const clientIf = need('client-if');
    const primaryIf = need('primary-if');
    if ((f['secondary-if'] === undefined) === (f['secondary-socket'] === undefined)) {
      throw new UsageError('run: give exactly one of --secondary-if IF and --secondary-socket EP');
    }
    // An engine its supervisor started while the SVM's interface was down goes without it.
    const gone = f['secondary-if'] !== undefined && engineWithout() === f['secondary-if'];
    const secondary: SecondaryPort = f['secondary-if'] !== undefined
      ? { kind: gone ? 'gone' : 'interface', name: f['secondary-if'] }
      : { kind: 'socket', endpoint: parseEndpoint('--secondary-socket', f['secondary-socket']!) };
    const notifyDev = f['notify-dev'] === undefined ? undefined : parseEndpoint('--notify-dev', f['notify-dev']);
    if (secondary.kind === 'socket' && notifyDev !== undefined && sameSocket(secondary.endpoint, notifyDev)) {
      throw new UsageError(`run: --secondary-socket ${secondary.endpoint.text} and --notify-dev ${notifyDev.text} are the same socket; each endpoint needs its own`);
    }
    const metricsAt = f.metrics === undefined ? undefined : parseMetricsAddress('run', f.metrics);
    const interfaces: [string, string][] = [['--client-if', clientIf], ['--primary-if', primaryIf]];
    if (secondary.kind !== 'socket') interfaces.push(['--secondary-if', secondary.name]);
    const engineRun = engineStart();
    // The SVM's interface may be missing or down at the start too (the SVM not started yet, or
    // failed and not rebuilt): refusing to start would cut the client off from the PVM.
    checkLiveCapture('run', secondary.kind === 'gone' ? interfaces.slice(0, 2) : interfaces, engineRun === undefined ? f['secondary-if'] : undefined);

    const log = (line: string): void => {
      process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    };
    if (engineRun === undefined) {
      // The supervisor serves the metrics, across its engines (metrics/engine-relay.ts), and
      // listens before any engine touches an interface: an address that cannot be listened on is
      // then the only line (as compare). The address is announced once the first engine runs, so
      // that an engine failing to start (a socket in use) is the only line too.
      let relay: EngineMetricsRelay | undefined;
      let server: Server | undefined;
      if (metricsAt !== undefined) {
        relay = new EngineMetricsRelay(ABSOLUTE_COUNTERS);
        server = await startMetrics('run', relay, metricsAt, async () => {});
      }
      try {
        return await supervise({
          command: 'run', interfaces, optional: f['secondary-if'], log,
          engineSignals: [{ signal: 'SIGUSR2', notYet: 'no engine is running yet (a new engine compares from its start)' }],
          watcher: relay === undefined ? undefined : watcherOf(relay),
          firstStarted: metricsAt === undefined ? undefined : () => log(metricsLine(metricsAt)),
        });
      } finally {
        relay?.close();
        if (server !== undefined) closeMetrics(server);
      }
    }
    const comparator = { compareTimeoutMs: f['compare-timeout'], scanIntervalMs: f['expired-scan-cycle'], maxQueueFrames: f['max-queue-size'] };
    // Warmed up at the first start only: after a restart every moment before capturing again is
    // more frames lost on the wire, which costs more than the cold start (~30 ms over 2,000 frames).
    let warmed: string | undefined;
    if (engineRun === 'first') {
      const warmStart = performance.now();
      const warm = RunEngine.warmUp(comparator);
      const released = warm.released === warm.primary ? `all ${warm.primary} primary frames released` : `${warm.released} of ${warm.primary} primary frames released`;
      warmed = `run: warmed up on ${warm.fed} synthetic frames (${released}) in ${Math.round(performance.now() - warmStart)} ms`;
    }
    const engine = new RunEngine({
      clientIf, primaryIf, secondary, notifyDev, log,
      lostAfter: f['lost-after'], controllerTimeoutMs: f['controller-timeout'], ringBytes: f['ring-mb'] * 1024 * 1024, keepOffloads: f['keep-offloads'], gro: f.gro, sendThread: f['send-thread'],
      comparator,
      // Frames holding up the event loop hold up the 'disconnect' below too.
      whileStalled: exitIfSupervisorGone('run', log),
    });
    // Its supervisor serves the metrics (with --metrics only) and asks this engine for its values.
    if (metricsAt !== undefined) answerMetricsRequests(engine.metrics.registry);
    const { stopped, stop } = engineStop();
    try {
      await engine.start();
    } catch (e) {
      // engineStop's 'disconnect' listener holds the channel to the supervisor open: let it go.
      if (process.connected) process.disconnect?.();
      if (e instanceof LiveCaptureError) throw new InputError(`run: ${e.message}`, e.code);
      throw new UsageError(`run: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (warmed !== undefined) log(warmed);
    const svm = secondary.kind === 'socket' ? `secondary-socket ${secondary.endpoint.text}` : `secondary-if ${secondary.name}${secondary.kind === 'gone' ? ' (gone)' : ''}`;
    const lost = f['lost-after'] === 0 ? 'never declared lost' : `declared lost after ${f['lost-after']} consecutive timeout episodes (SIGUSR2 restores comparison)`;
    const within = f['controller-timeout'] === 0 ? '' : `not done within ${f['controller-timeout']} ms or `;
    const controller = `the controller is declared lost when a checkpoint is ${within}256 MiB are held waiting for it`;
    log(`run: client-if ${clientIf}, primary-if ${primaryIf}, ${svm}; the secondary is ${lost}; ${controller}`);
    engineStarted();
    // Without the SVM's interface, restoring comparison takes a new engine that has it: this one
    // ends with EXIT_RESTART once the interface is back.
    const restore = (): void => {
      if (secondary.kind !== 'gone') engine.restore();
      else if (interfaceState(secondary.name)?.up === true) stop('restart');
      else log(`restore: secondary-if ${secondary.name} is still down; passing through until it is back`);
    };
    process.on('SIGUSR2', restore);
    const why = await stopped;
    // The supervisor forwards SIGUSR2 until this process is gone: one now must not kill it mid-close.
    process.off('SIGUSR2', restore);
    process.on('SIGUSR2', () => {});
    log(why === 'restart' ? 'run: the secondary\'s interface is back: handing over to a new engine that compares' : `run: stopping (${why})`);
    await engine.close();
    if (metricsAt !== undefined) await sendFinalMetrics(engine.metrics.registry);
    log('run: stopped');
    if (process.connected) process.disconnect?.();
    return why === 'restart' ? EXIT_RESTART : 0;
  },
};
