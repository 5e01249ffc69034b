/**
 * `cap` against `pcap` (node_pcap), the two libpcap bindings the design card suggests, measured
 * the way `run` uses one: inject frames on one end of a veth pair, capture them on the other.
 * Not part of `npm run bench` (node_pcap is not a dependency); run it as root with node_pcap
 * installed beside the project's packages, without saving it:
 *
 *   npm install --no-save pcap@3.1.0 && node --import tsx bench/capture-libraries.ts
 *
 * It makes a network namespace of its own (unique name, removed at the end, also on failure) with
 * a veth pair in it, and runs every measurement in a child process inside the namespace:
 * - inject: one process sends N frames back to back through the library (cap `send`, node_pcap
 *   `inject`; both are pcap_inject underneath); frames per second of the sending loop.
 * - capture: the library captures on one end while a second process injects the N frames on the
 *   other end as fast as cap can (the same injector for both libraries); frames captured per
 *   second (first to last) and the share of the N frames captured at all. The two processes get a
 *   core each on a 2-core machine, as `run` and the guests' traffic would share it.
 * Frames are UDP/IPv4 of 64 and 1514 bytes on the wire. Each figure is the best of ROUNDS
 * alternating rounds (cap first, then node_pcap, then the other way round), so that a slow minute
 * of a shared machine does not decide which library looks better.
 */

import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { loadCap } from '../proxy/ports/pcap-interface.js';

const require = createRequire(import.meta.url);
const FRAMES = Number(process.env['CAPL_FRAMES'] ?? 200_000);
const ROUNDS = Number(process.env['CAPL_ROUNDS'] ?? 3);
const SIZES = [64, 1514];
type Library = 'cap' | 'pcap';

/** A UDP/IPv4 frame of `size` bytes on the wire (without FCS), from a MAC the veth does not own. */
function frame(size: number): Buffer {
  const f = Buffer.alloc(size);
  Buffer.from('02000000000b02000000000a0800', 'hex').copy(f, 0);
  const ipLength = size - 14;
  Buffer.from([0x45, 0, ipLength >> 8, ipLength & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]).copy(f, 14);
  f.writeUInt16BE(4000, 34);
  f.writeUInt16BE(5000, 36);
  f.writeUInt16BE(ipLength - 20, 38);
  return f;
}

interface Injector {
  send(f: Buffer): void;
  close(): void;
}

interface Capturer {
  /** Calls `seen` once per captured frame with its length. */
  start(seen: (length: number) => void): void;
  close(): void;
}

const RING_BYTES = 16 * 1024 * 1024;

function injector(library: Library, device: string): Injector {
  if (library === 'cap') {
    const h = new (loadCap().Cap)();
    h.open(device, 'less 1', 1024 * 1024, Buffer.alloc(65535));
    return { send: (f) => h.send(f, f.length), close: () => h.close() };
  }
  const pcap = require('pcap') as PcapModule;
  const s = pcap.createSession(device, { filter: 'less 1', buffer_size: 1024 * 1024, buffer_timeout: 0 });
  return { send: (f) => void s.inject(f), close: () => s.close() };
}

function capturer(library: Library, device: string): Capturer {
  if (library === 'cap') {
    const h = new (loadCap().Cap)();
    const buffer = Buffer.alloc(65535);
    return {
      start: (seen) => {
        h.on('packet', (nbytes: number) => seen(nbytes));
        h.open(device, 'udp', RING_BYTES, buffer);
      },
      close: () => h.close(),
    };
  }
  const pcap = require('pcap') as PcapModule;
  let s: PcapSession | null = null;
  return {
    start: (seen) => {
      s = pcap.createSession(device, { filter: 'udp', buffer_size: RING_BYTES, buffer_timeout: 0 });
      s.on('packet', (p: { header: Buffer }) => seen(p.header.readUInt32LE(8)));
    },
    close: () => s?.close(),
  };
}

interface PcapSession {
  inject(f: Buffer): void;
  on(event: 'packet', listener: (p: { header: Buffer }) => void): void;
  close(): void;
}

interface PcapModule {
  createSession(device: string, options: { filter: string; buffer_size: number; buffer_timeout: number }): PcapSession;
}

// --- child processes (inside the namespace) ------------------------------------------------------

/** Sends FRAMES frames of `size` bytes; prints frames/s of the sending loop. */
async function childInject(library: Library, device: string, size: number, pauseMs: number): Promise<void> {
  const inj = injector(library, device);
  const f = frame(size);
  await new Promise((r) => setTimeout(r, pauseMs));
  const t = performance.now();
  for (let i = 0; i < FRAMES; i++) {
    f.writeUInt32BE(i, 42);
    inj.send(f);
  }
  const s = (performance.now() - t) / 1000;
  inj.close();
  console.log(JSON.stringify({ framesPerSecond: FRAMES / s }));
}

/** Captures until 1 s passes without a frame (after the first); prints how many and how fast. */
async function childCapture(library: Library, device: string): Promise<void> {
  const cap = capturer(library, device);
  let count = 0;
  let first = 0;
  let last = 0;
  cap.start(() => {
    last = performance.now();
    if (count++ === 0) first = last;
  });
  console.log('ready');
  const started = performance.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = performance.now();
    if ((count > 0 && now - last > 1000) || (count === 0 && now - started > 15_000)) break;
  }
  cap.close();
  console.log(JSON.stringify({ captured: count, framesPerSecond: count > 1 ? (count - 1) / ((last - first) / 1000) : 0 }));
}

// --- the parent --------------------------------------------------------------------------------

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Runs this script as a child inside the namespace; `ready` once it printed "ready", `done` with its last line. */
function child(ns: string, args: string[]): { ready: Promise<void>; done: Promise<string> } {
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', new URL(import.meta.url).pathname, '--child', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let signalReady = (): void => {};
  const ready = new Promise<void>((resolve) => (signalReady = resolve));
  p.stdout.setEncoding('utf8');
  p.stdout.on('data', (d: string) => {
    out += d;
    if (out.startsWith('ready\n')) signalReady();
  });
  // node_pcap warns on stderr about interfaces without an IPv4 address: shown only on failure.
  p.stderr.setEncoding('utf8');
  p.stderr.on('data', (d: string) => (err += d));
  const done = new Promise<string>((resolve, reject) => {
    p.on('exit', (code) => (code === 0 ? resolve(out.trim().split('\n').at(-1)!) : reject(new Error(`child ${args.join(' ')} exited ${code}: ${err.trim()}`))));
  });
  return { ready: Promise.race([ready, done.then(() => {})]), done };
}

async function measure(ns: string, a: string, b: string, library: Library, size: number): Promise<{ inject: number; capture: number; share: number }> {
  const inject = JSON.parse(await child(ns, ['inject', library, a, String(size), '0']).done) as { framesPerSecond: number };
  const c = child(ns, ['capture', library, b]);
  await c.ready;
  await child(ns, ['inject', 'cap', a, String(size), '200']).done;
  const got = JSON.parse(await c.done) as { captured: number; framesPerSecond: number };
  return { inject: inject.framesPerSecond, capture: got.framesPerSecond, share: got.captured / FRAMES };
}

async function main(): Promise<void> {
  try {
    require.resolve('pcap');
    require.resolve('cap');
  } catch {
    console.error('capture-libraries: needs both cap and pcap installed: npm install --no-save pcap@3.1.0');
    process.exit(2);
  }
  const ns = `colo-capl-${process.pid}`;
  const a = `cla${process.pid}`;
  const b = `clb${process.pid}`;
  ip('netns', 'add', ns);
  const interrupted = (): void => {
    ip('netns', 'del', ns);
    process.exit(130);
  };
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  try {
    ip('-n', ns, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
    ip('-n', ns, 'link', 'set', a, 'up');
    ip('-n', ns, 'link', 'set', b, 'up');
    console.log(`capture-libraries: ${FRAMES} frames a measurement, best of ${ROUNDS} rounds, node ${process.version}`);
    for (const size of SIZES) {
      const best: Record<Library, { inject: number; capture: number; share: number }> = {
        cap: { inject: 0, capture: 0, share: 0 },
        pcap: { inject: 0, capture: 0, share: 0 },
      };
      for (let round = 0; round < ROUNDS; round++) {
        const order: Library[] = round % 2 === 0 ? ['cap', 'pcap'] : ['pcap', 'cap'];
        for (const library of order) {
          const m = await measure(ns, a, b, library, size);
          console.error(`  round ${round + 1}, ${size} B, ${library}: inject ${Math.round(m.inject)}/s, capture ${Math.round(m.capture)}/s, ${(100 * m.share).toFixed(1)} %`);
          const x = best[library];
          x.inject = Math.max(x.inject, m.inject);
          x.capture = Math.max(x.capture, m.capture);
          x.share = Math.max(x.share, m.share);
        }
      }
      for (const library of ['cap', 'pcap'] as const) {
        const x = best[library];
        const name = library === 'cap' ? 'cap 0.2.1' : 'pcap 3.1.0';
        console.log(`  ${String(size).padStart(4)} B  ${name.padEnd(11)} inject ${Math.round(x.inject).toLocaleString('en-US').padStart(9)} frames/s   capture ${Math.round(x.capture).toLocaleString('en-US').padStart(9)} frames/s, ${(100 * x.share).toFixed(1)} % of the frames`);
      }
    }
  } finally {
    ip('netns', 'del', ns);
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  const [, what, library, device, size, pause] = argv as [string, string, Library, string, string, string];
  if (what === 'inject') await childInject(library, device, Number(size), Number(pause));
  else await childCapture(library, device);
  process.exit(0); // node_pcap's closed session keeps the event loop alive

} else {
  await main();
}
