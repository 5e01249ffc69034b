/**
 * `colo-proxy bridge`: the secondary host's half of `run` when the SVM runs on another host. It
 * joins the SVM's tap to a framed socket (QEMU chardev framing) that `run --secondary-socket`
 * uses as the SVM side. Same start-up checks as `run` (one line, exit 2). Runs until SIGINT or
 * SIGTERM; as `run`, the engine runs in a child process that is started again if it dies
 * (supervise.ts), which also puts the interface's offloads back as found.
 */

import type { Command } from './command.js';
import { InputError, UsageError } from './errors.js';
import { parseFlags } from './flags.js';
import { parseEndpoint, type Endpoint } from '../ports/endpoint.js';
import { LiveCaptureError } from '../ports/pcap-interface.js';
import { BridgeEngine } from '../engine/bridge-engine.js';
import { checkLiveCapture } from './run.js';
import { engineStart, engineStarted, engineStop, exitIfSupervisorGone, supervise } from './supervise.js';

const flags = {
  if: { type: 'string', help: "the SVM's tap (or veth) on this host", metavar: 'IF' },
  connect: { type: 'string', help: 'connect (and reconnect) to run --secondary-socket: tcp:HOST:PORT or unix:PATH', metavar: 'EP' },
  listen: { type: 'string', help: 'listen for run --secondary-socket, one peer at a time: tcp:HOST:PORT or unix:PATH', metavar: 'EP' },
  'ring-mb': { type: 'integer', help: 'capture ring, MiB', metavar: 'MB', min: 1, max: 2048, default: 64 },
  'keep-offloads': { type: 'boolean', help: 'leave GRO/GSO/TSO/LRO as they are (by default they are turned off on --if). Needed when a guest sends segmentation-offload frames (up to 64 KiB; they are segmented again on the way out); a ring slot then takes 64 KiB, so give --ring-mb room' },
} as const;

export const bridgeCommand: Command = {
  name: 'bridge',
  summary: "join the SVM's tap on another host to `run --secondary-socket` over a framed socket",
  synopsis: '--if IF (--connect EP | --listen EP) [flags]',
  description:
    "For an SVM on another host: frames the SVM sends on --if go to the socket, frames from the\n" +
    'socket are injected onto --if. The socket carries QEMU chardev framing (4-byte length, no\n' +
    'virtio-net header). Needs root and libpcap (the optional cap package).',
  flags,
  async run(argv) {
    const { flags: f, positionals } = parseFlags('bridge', flags, argv);
    if (positionals.length > 0) throw new UsageError(`bridge: unexpected argument "${positionals[0]}"`);
    if (f.if === undefined) throw new UsageError('bridge: --if IF is required');
    if ((f.connect === undefined) === (f.listen === undefined)) throw new UsageError('bridge: give exactly one of --connect EP and --listen EP');
    const endpoint: Endpoint = f.connect !== undefined ? parseEndpoint('--connect', f.connect) : parseEndpoint('--listen', f.listen!, true);
    if (f.connect !== undefined && endpoint.server) throw new UsageError(`bridge: --connect ${f.connect} asks to listen ("server"): use --listen`);
    if (f.listen !== undefined && !endpoint.server) throw new UsageError(`bridge: --listen ${f.listen} asks not to listen ("server=off"): use --connect`);
    const interfaces: [string, string][] = [['--if', f.if]];
    checkLiveCapture('bridge', interfaces);
    const log = (line: string): void => {
      process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    };
    if (engineStart() === undefined) return supervise({ command: 'bridge', interfaces, log, engineSignals: [] });
    const engine = new BridgeEngine({
      ifname: f.if, endpoint, log, ringBytes: f['ring-mb'] * 1024 * 1024, keepOffloads: f['keep-offloads'],
      whileStalled: exitIfSupervisorGone('bridge', log),
    });
    const { stopped } = engineStop();
    try {
      await engine.start();
    } catch (e) {
      // engineStop's 'disconnect' listener holds the channel to the supervisor open: let it go.
      if (process.connected) process.disconnect?.();
      if (e instanceof LiveCaptureError) throw new InputError(`bridge: ${e.message}`, e.code);
      throw new UsageError(`bridge: ${e instanceof Error ? e.message : String(e)}`);
    }
    log(`bridge: ${f.if} <-> ${endpoint.text} (${endpoint.server ? 'listening' : 'connecting'})`);
    engineStarted();
    log(`bridge: stopping (${await stopped})`);
    await engine.close();
    if (process.connected) process.disconnect?.();
    return 0;
  },
};
