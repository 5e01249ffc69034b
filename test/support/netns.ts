/**
 * Network namespaces for end-to-end tests of `run` and `bridge`: a `NetnsLab` makes namespaces
 * and veth pairs with names unique to this process (`cpx<pid>-<n>-<label>`), runs commands and
 * long-lived processes inside them, and removes everything in `cleanup()`, which a test calls in
 * its `after` hook; a process `exit` handler removes what is left even when a test fails or the
 * runner is interrupted. Needs root, iproute2 and ethtool (scripts/system-deps.mjs checks them).
 *
 * Veths are created straight inside their namespaces (`ip link add ... netns A type veth peer
 * ... netns B`), so interface names only need to be unique within a namespace and nothing ever
 * appears in the machine's own namespace.
 */

import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';

let labs = 0;
const live = new Set<NetnsLab>();
process.on('exit', () => {
  for (const lab of live) lab.cleanupSync();
});

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (no shell); rejects only when it cannot be started. */
export function execFile(cmd: string, args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : null;
    child.once('error', reject);
    child.once('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A command that exits before reading its input (curl, ip) closes the pipe: EPIPE here is no
    // error of the run (its exit status says how it went), and unhandled it failed the test.
    child.stdin!.on('error', () => {});
    child.stdin!.end(options.input ?? '');
  });
}

/** Runs a command and throws (with its stderr) unless it exits 0. */
export function must(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr || r.error?.message || ''}`.trim());
  return r.stdout;
}

export interface VethEnd {
  ns: string;
  name: string;
  mac?: string;
  /** Addresses with prefix, e.g. 10.1.0.1/24 or fd00::1/64 (IPv6 ones added with nodad). */
  addresses?: readonly string[];
}

export class NetnsLab {
  readonly tag: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor() {
    this.tag = `cpx${process.pid}-${++labs}`;
    live.add(this);
  }

  /** Creates namespace `<tag>-<label>` with its loopback up; returns its name. */
  ns(label: string): string {
    const name = `${this.tag}-${label}`;
    must('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** A veth pair between two namespaces, both ends up (addresses and MACs as given). */
  veth(a: VethEnd, b: VethEnd): void {
    must('ip', ['link', 'add', 'name', a.name, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns]);
    for (const end of [a, b]) {
      if (end.mac) must('ip', ['-n', end.ns, 'link', 'set', end.name, 'address', end.mac]);
      for (const addr of end.addresses ?? []) {
        must('ip', ['-n', end.ns, 'addr', 'add', addr, 'dev', end.name, ...(addr.includes(':') ? ['nodad'] : [])]);
      }
      must('ip', ['-n', end.ns, 'link', 'set', end.name, 'up']);
    }
  }

  /** Turns segmentation, receive and checksum offloads off (what a guest without TSO/checksum offload sends). */
  offloadsOff(ns: string, ifname: string): void {
    for (const f of ['tx', 'tso', 'gso', 'gro', 'lro', 'ufo', 'rx-gro-list']) {
      spawnSync('ip', ['netns', 'exec', ns, 'ethtool', '-K', ifname, f, 'off'], { stdio: 'ignore' });
    }
  }

  /** Turns checksum and segmentation offload on (what a virtio-net guest with TSO sends: frames of up to 64 KiB); throws if TSO stays off. */
  segmentationOffloadOn(ns: string, ifname: string): void {
    for (const f of ['tx', 'sg', 'tso', 'gso']) this.run(ns, 'ethtool', ['-K', ifname, f, 'on']);
    if (!/^tcp-segmentation-offload: on/m.test(this.run(ns, 'ethtool', ['-k', ifname]))) throw new Error(`${ns} ${ifname}: TSO did not turn on`);
  }

  /** Runs a command inside `ns` and throws unless it exits 0; returns stdout. */
  run(ns: string, cmd: string, args: readonly string[]): string {
    return must('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Runs a command inside `ns` to completion. */
  exec(ns: string, cmd: string, args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
    return execFile('ip', ['netns', 'exec', ns, cmd, ...args], options);
  }

  /** Starts a long-lived process inside `ns`; it is killed by `cleanup` (or `stop`). */
  spawn(ns: string, cmd: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Stops one process started with `spawn` (SIGTERM, then SIGKILL after `graceMs`); resolves when it is gone. */
  async stop(child: ChildProcess, graceMs = 2000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }

  /** Kills every process started here and deletes every namespace (with its interfaces). */
  async cleanup(): Promise<void> {
    await Promise.all([...this.children].map((c) => this.stop(c, 1000)));
    this.cleanupSync();
  }

  cleanupSync(): void {
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    // Processes still inside a namespace (a server a test started with `exec`) keep nothing alive:
    // deleting the name unmounts it, and the namespace dies with its last process.
    for (const ns of this.namespaces.splice(0)) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    }
    live.delete(this);
  }
}
