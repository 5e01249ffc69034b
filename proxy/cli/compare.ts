/**
 * `colo-proxy compare`: a drop-in for QEMU's colo-compare object. The flags are colo-compare's
 * property names (primary_in -> --primary-in ...) with its defaults, and the endpoints are
 * socket chardevs in QEMU's spelling, so a QEMU command line translates by eye. Runs until
 * SIGINT or SIGTERM; logs one line per peer change, mismatch, checkpoint and error on stderr.
 */

import type { Server } from 'node:http';
import type { Command } from './command.js';
import { UsageError } from './errors.js';
import { parseFlags } from './flags.js';
import { parseEndpoint, sameSocket, type Endpoint } from '../ports/endpoint.js';
import { CompareEngine } from '../engine/compare-engine.js';
import { metricsLine, parseMetricsAddress, startMetrics } from './metrics-flag.js';
import { closeMetrics } from '../metrics/http.js';
import { nodeFlagsNotice } from './node-flags.js';

const flags = {
  'primary-in': { type: 'string', help: 'PVM output, from the primary filter-redirector (QEMU primary_in)', metavar: 'EP' },
  'secondary-in': { type: 'string', help: 'SVM output, from the secondary host (QEMU secondary_in)', metavar: 'EP' },
  outdev: { type: 'string', help: 'released frames, to the redirector back onto the tap (QEMU outdev)', metavar: 'EP' },
  'notify-dev': { type: 'string', help: 'checkpoint controller, Xen notify protocol (QEMU notify_dev)', metavar: 'EP' },
  'vnet-hdr': { type: 'boolean', help: 'frames carry a virtio-net header length (QEMU vnet_hdr_support)' },
  'compare-timeout': { type: 'integer', help: 'ms a frame may be held before a checkpoint', metavar: 'MS', min: 1, max: 3_600_000, default: 3000 },
  'expired-scan-cycle': { type: 'integer', help: 'ms between checks for held frames past the timeout', metavar: 'MS', min: 1, max: 3_600_000, default: 1000 },
  'max-queue-size': { type: 'integer', help: 'frames one side of one connection may hold before a checkpoint', metavar: 'N', min: 1, max: 1_000_000, default: 1024 },
  metrics: { type: 'string', help: 'serve Prometheus metrics at http://HOST:PORT/metrics', metavar: 'HOST:PORT' },
} as const;

export const compareCommand: Command = {
  name: 'compare',
  summary: 'compare PVM and SVM output on QEMU colo-compare sockets (a drop-in for colo-compare)',
  synopsis: '--primary-in EP --secondary-in EP --outdev EP [--notify-dev EP] [flags]',
  description:
    'Takes the place of QEMU\'s colo-compare object: reads PVM and SVM output from QEMU\'s\n' +
    'filter-redirector sockets, compares them by TCP sequence range (SVM output already mapped by\n' +
    'filter-rewriter) and writes released PVM frames to outdev. EP is a QEMU socket chardev:\n' +
    'tcp:HOST:PORT[,server] or unix:PATH[,server]; ",server" listens, otherwise it connects and\n' +
    'reconnects.',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseFlags('compare', flags, argv);
    if (positionals.length > 0) throw new UsageError(`compare: unexpected argument "${positionals[0]}"`);
    const need = (name: 'primary-in' | 'secondary-in' | 'outdev'): string => {
      const v = f[name];
      if (v === undefined) throw new UsageError(`compare: --${name} EP is required (tcp:HOST:PORT[,server] or unix:PATH[,server])`);
      return v;
    };
    const primaryIn = parseEndpoint('--primary-in', need('primary-in'));
    const secondaryIn = parseEndpoint('--secondary-in', need('secondary-in'));
    const outdev = parseEndpoint('--outdev', need('outdev'));
    const notifyDev = f['notify-dev'] === undefined ? undefined : parseEndpoint('--notify-dev', f['notify-dev']);
    const named: [string, Endpoint][] = [['--primary-in', primaryIn], ['--secondary-in', secondaryIn], ['--outdev', outdev]];
    if (notifyDev !== undefined) named.push(['--notify-dev', notifyDev]);
    for (let i = 0; i < named.length; i++) {
      for (let j = i + 1; j < named.length; j++) {
        const [flagA, a] = named[i]!;
        const [flagB, b] = named[j]!;
        if (sameSocket(a, b)) throw new UsageError(`compare: ${flagA} ${a.text} and ${flagB} ${b.text} are the same socket; each endpoint needs its own`);
      }
    }
    const metricsAt = f.metrics === undefined ? undefined : parseMetricsAddress('compare', f.metrics);
    if (metricsAt !== undefined) {
      const asEndpoint: Endpoint = { kind: 'tcp', host: metricsAt.host, port: metricsAt.port, server: true, text: metricsAt.text };
      const clash = named.find(([, e]) => sameSocket(e, asEndpoint));
      if (clash !== undefined) throw new UsageError(`compare: ${clash[0]} ${clash[1].text} and --metrics ${metricsAt.text} are the same socket; each needs its own`);
    }

    const log = (line: string): void => {
      process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    };
    const engine = new CompareEngine({
      primaryIn, secondaryIn, outdev, notifyDev, vnetHeader: f['vnet-hdr'], log,
      comparator: { compareTimeoutMs: f['compare-timeout'], scanIntervalMs: f['expired-scan-cycle'], maxQueueFrames: f['max-queue-size'] },
    });
    // The first SIGINT or SIGTERM stops; a second cuts the wait for outdev short, the summary of
    // what is discarded still said (without a listener, Node would die of it); a third kills.
    // Listened for from here, so that one during the start-up (the warm-up takes several hundred
    // ms) stops it once started, sockets removed, instead of killing it silently.
    let signals = 0;
    let stopNow: () => void = () => {};
    // A second signal before the stop waits for outdev (during the start-up, say) is kept for it.
    let secondSignal: string | undefined;
    let again: (what: string) => void = (what) => (secondSignal = what);
    const signalled = (signal: NodeJS.Signals): void => {
      if (++signals === 1) return stopNow();
      unlisten();
      again(`${signal} again`);
    };
    const unlisten = (): void => {
      process.off('SIGINT', signalled);
      process.off('SIGTERM', signalled);
    };
    process.on('SIGINT', signalled);
    process.on('SIGTERM', signalled);
    // The warm-up blocks the event loop for several hundred ms: it runs before any port listens, so
    // that a peer connecting at start-up is answered at once (Xen waits 500 ms for the reply to its
    // hello). Nothing is logged until everything listens, so that an address that cannot be
    // listened on (the metrics' first) is the only line.
    const warmStart = performance.now();
    const warm = engine.warmUp();
    const warmMs = Math.round(performance.now() - warmStart);
    let metricsServer: Server | undefined;
    try {
      metricsServer = metricsAt ? await startMetrics('compare', engine.metrics.registry, metricsAt, () => engine.close()) : undefined;
    } catch (e) {
      unlisten();
      throw e;
    }
    try {
      await engine.start();
    } catch (e) {
      unlisten();
      if (metricsServer !== undefined) closeMetrics(metricsServer);
      throw new UsageError(`compare: ${e instanceof Error ? e.message : String(e)}`);
    }
    log(engine.checkpointsDescription);
    log(`compare: warmed up on ${warm.fed} synthetic frames (${warm.released} released) in ${warmMs} ms`);
    if (metricsAt !== undefined) log(metricsLine(metricsAt));
    const notice = nodeFlagsNotice(process.execArgv);
    if (notice !== undefined) log(`compare: ${notice}`);
    log(`compare: primary-in ${primaryIn.text}, secondary-in ${secondaryIn.text}, outdev ${outdev.text}, notify-dev ${notifyDev?.text ?? 'none'}, vnet header ${f['vnet-hdr'] ? 'on' : 'off'}; compare-timeout ${f['compare-timeout']} ms, expired-scan-cycle ${f['expired-scan-cycle']} ms, max-queue-size ${f['max-queue-size']}`);
    if (signals === 0) await new Promise<void>((resolve) => (stopNow = resolve));
    log('compare: stopping');
    if (metricsServer !== undefined) closeMetrics(metricsServer);
    await engine.stop(new Promise<string>((resolve) => (secondSignal !== undefined ? resolve(secondSignal) : (again = resolve))));
    return 0;
  },
};
