/**
 * QEMU's own colo-compare as a process colo-proxy can start (`replay --against-qemu`, and the
 * tests' and benchmarks' reference peer): `qemu-system-x86_64` with no machine, no devices and no
 * guest, holding one `colo-compare` object wired to four UNIX-socket chardevs that QEMU serves:
 *
 *   qemu-system-x86_64 -machine none -nodefaults -display none -S
 *     -object iothread,id=iothread0
 *     -chardev socket,id=primary_in,path=DIR/primary_in,server=on,wait=off   (same for
 *        secondary_in, outdev, notify_dev)
 *     -object colo-compare,id=comp0,primary_in=primary_in,secondary_in=secondary_in,
 *        outdev=outdev,iothread=iothread0,notify_dev=notify_dev[,vnet_hdr_support=on]
 *        [,compare_timeout=MS][,expired_scan_cycle=MS][,max_queue_size=N]
 *
 * `-S` changes nothing with `-machine none` (no vCPU; colo-compare runs in its iothread);
 * `iothread` is mandatory. QEMU removes its socket files when it exits.
 *
 * QEMU is started through `setpriv --pdeathsig KILL` where util-linux has it, so that it dies
 * with this process even when this process is killed outright (SIGKILL, the OOM killer); an exit
 * of this process removes the socket directory and kills QEMU, however it comes about.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { ComparatorEndpoints } from './against.js';

export const QEMU_BINARY = 'qemu-system-x86_64';
export const QEMU_PACKAGE = 'qemu-system-x86';
export const QEMU_INSTALL_LINE = `apt-get install -y --no-install-recommends ${QEMU_PACKAGE}`;

/** colo-compare properties; absent ones are left to QEMU's defaults (3000, 1000, 1024, off). */
export interface QemuColoCompareSettings {
  vnetHeader?: boolean;
  compareTimeoutMs?: number;
  scanIntervalMs?: number;
  maxQueueSize?: number;
}

/** The QEMU argv (without the binary) for the given socket directory and settings. */
export function qemuColoCompareArgs(dir: string, o: QemuColoCompareSettings = {}): string[] {
  const args = ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-object', 'iothread,id=iothread0'];
  for (const name of ['primary_in', 'secondary_in', 'outdev', 'notify_dev']) args.push('-chardev', `socket,id=${name},path=${join(dir, name)},server=on,wait=off`);
  let compare = 'colo-compare,id=comp0,primary_in=primary_in,secondary_in=secondary_in,outdev=outdev,iothread=iothread0,notify_dev=notify_dev';
  if (o.vnetHeader === true) compare += ',vnet_hdr_support=on';
  if (o.compareTimeoutMs !== undefined) compare += `,compare_timeout=${o.compareTimeoutMs}`;
  if (o.scanIntervalMs !== undefined) compare += `,expired_scan_cycle=${o.scanIntervalMs}`;
  if (o.maxQueueSize !== undefined) compare += `,max_queue_size=${o.maxQueueSize}`;
  args.push('-object', compare);
  return args;
}

/** The full path of `binary` on PATH, or undefined. */
export function findOnPath(binary: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A running QEMU colo-compare. */
export interface QemuProcess {
  endpoints: ComparatorEndpoints;
  /** Its command line, for reports, with DIR for its temporary socket directory (the same every run). */
  label: string;
  /** Throws with QEMU's stderr if it has exited. */
  alive(): void;
  /**
   * Why QEMU exited, if it has or does within `ms`, else undefined: for an error on its sockets,
   * which Node may report before the process's exit.
   */
  exitedWithin(ms: number): Promise<string | undefined>;
  /** Stops it (SIGTERM, SIGKILL after 2 s) and removes its socket directory. */
  close(): Promise<void>;
}

/** The command that runs QEMU so that it dies with this process (see the module header). */
function parentBound(binary: string, args: readonly string[]): [string, string[]] {
  const setpriv = findOnPath('setpriv');
  return setpriv === undefined ? [binary, [...args]] : [setpriv, ['--pdeathsig', 'KILL', '--', binary, ...args]];
}

/** Starts QEMU's colo-compare; throws an Error naming the apt-get line when QEMU is not installed. */
export function startQemuColoCompare(settings: QemuColoCompareSettings): QemuProcess {
  const binary = findOnPath(QEMU_BINARY);
  if (binary === undefined) throw new Error(`${QEMU_BINARY} is not installed (Debian: apt-get update && ${QEMU_INSTALL_LINE})`);
  const dir = mkdtempSync(join(tmpdir(), 'colo-replay-qemu-'));
  const args = qemuColoCompareArgs(dir, settings);
  const child: ChildProcess = spawn(...parentBound(binary, args), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let exit: string | undefined;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = `code ${code}, signal ${signal}`;
      resolve();
    });
    child.once('error', (e) => {
      exit ??= e.message;
      resolve();
    });
  });
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  // At any exit of this process (a second signal stops it at once, past `close`).
  const cleanUp = (): void => {
    kill();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanUp);
  const why = (): string => `${QEMU_BINARY} exited (${exit}): ${stderr.trim() || 'no output'}`;
  const endpoint = (name: string): ComparatorEndpoints['outdev'] => ({ kind: 'unix', path: join(dir, name), server: false, text: `unix:${join(dir, name)}` });
  return {
    endpoints: { primary_in: endpoint('primary_in'), secondary_in: endpoint('secondary_in'), outdev: endpoint('outdev'), notify_dev: endpoint('notify_dev') },
    label: `QEMU colo-compare (${[QEMU_BINARY, ...qemuColoCompareArgs('DIR', settings)].join(' ')})`,
    alive() {
      if (exit !== undefined) throw new Error(why());
    },
    async exitedWithin(ms) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
      clearTimeout(timer);
      return exit === undefined ? undefined : why();
    },
    async close() {
      if (exit === undefined) {
        child.kill('SIGTERM');
        const killer = setTimeout(kill, 2000);
        await exited;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
      // Only now: a second signal while QEMU was stopping exits through `cleanUp`.
      process.off('exit', cleanUp);
    },
  };
}
