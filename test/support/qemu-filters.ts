/**
 * QEMU's own net filters as a source of real filter streams for tests: a `qemu-system-x86_64` with
 * a NIC, a netdev the test drives, and a `filter-mirror` followed by a `filter-redirector` on that
 * netdev, each writing to a socket chardev that connects to a UNIX socket the test listens on. The
 * test injects Ethernet frames into the netdev; both filters write them out in QEMU's own framing
 * (COLO-REFERENCE §2), so the test gets two real streams of the same frames, one from each filter
 * type, byte for byte as QEMU wrote them (`mirror`, `redirector`).
 *
 * No guest runs: `-machine pc -S -nodefaults` (a NIC needs a PCI bus, which `-machine none` lacks;
 * `-S` keeps the CPU stopped, so no firmware runs either). Command line (`qemuFiltersArgs`):
 *
 *   qemu-system-x86_64 -machine pc -S -nodefaults -display none
 *     -netdev stream,id=n0,server=on,addr.type=unix,addr.path=DIR/netdev          (netdev 'stream')
 *   | -netdev tap,id=n0,ifname=IF,script=no,downscript=no,vnet_hdr=on             (netdev 'tap')
 *     -device virtio-net-pci,netdev=n0
 *     -chardev socket,id=mirror0,path=DIR/mirror         (client: the test listens there)
 *     -chardev socket,id=redirector0,path=DIR/redirector
 *     -object filter-mirror,id=m0,netdev=n0,queue=tx,outdev=mirror0[,vnet_hdr_support=on]
 *     -object filter-redirector,id=r0,netdev=n0,queue=tx,outdev=redirector0[,vnet_hdr_support=on]
 *
 * Injection: with `stream`, the test connects to QEMU's netdev socket and writes each frame with a
 * 4-byte big-endian length in front (the `-netdev stream` framing, written by hand here so that no
 * encoder under test is involved). With `tap`, QEMU creates the tap interface IF (root and
 * /dev/net/tun needed); the harness disables IPv6 on it (so the host kernel sends no MLD/RS
 * frames of its own), sets it up (a perl ioctl) and sends each frame out of it with an AF_PACKET socket (a
 * `perl` one-shot, as Node has no packet sockets); QEMU reads the frame from the tap fd.
 *
 * Facts this harness relies on, observed with QEMU 7.2 (Debian 1:7.2+dfsg-7+deb12u18):
 * - Direction. A frame the netdev reads from its backend (socket or tap) is *sent by* the netdev
 *   towards the NIC, so the netdev's `queue=tx` filters see it (net.c runs the sender's TX filters,
 *   then the peer's RX filters). `queue=rx` sees what the NIC sends (guest output: in real COLO the
 *   PVM-output redirector is `queue=rx`); with the CPU stopped the guest sends nothing, so an rx
 *   filter here writes nothing.
 * - A CPU-stopped NIC accepts nothing: the frame is queued at the NIC (by QEMU's source,
 *   qemu_can_send_packet is false while the VM is not running), `qemu_send_packet_async` returns 0
 *   and the stream netdev stops reading its socket. Observed: with `filter-mirror` alone (it
 *   passes frames on) only the first of three separately written frames came out. The `filter-redirector` after the mirror consumes every frame, so
 *   nothing reaches the NIC queue and the netdev keeps reading: that is why both filters are here,
 *   mirror first (filters run in creation order on tx).
 * - `VNET_LEN` is `nf->netdev->vnet_hdr_len`, the netdev's header length, not a property of the
 *   filter. A stream (or socket) netdev has none: `vnet_hdr_support=on` writes `VNET_LEN` 0 and
 *   the packet is the bare Ethernet frame. A tap with `vnet_hdr=on` peered with virtio-net-pci
 *   has 10 (virtio-net sets it at realize, struct virtio_net_hdr without mergeable buffers, no
 *   guest needed), and the 10 header bytes come from the kernel: all zero for a frame sent with a
 *   plain packet socket (no offloads are enabled without a guest; a frame sent with a
 *   NEEDS_CSUM header comes out with its checksum completed by the kernel and a zero header).
 * - A tap netdev reads even with `-S` here, because the redirector consumes the frame before the
 *   NIC's queue is consulted.
 * - The filter chardevs are clients of the test's listeners: QEMU connects during start-up, so
 *   both connections are up before any frame can flow (with server chardevs the test would have
 *   to connect before injecting, or frames written before the accept could be lost).
 *
 * If `qemu-system-x86_64` is not installed, `startQemuFilters` throws an Error naming the apt-get
 * line: a test using this harness fails, it never skips; so does the tap variant without root,
 * /dev/net/tun or perl. QEMU runs as a `ChildUnderTest` (comparator-under-test.ts): `close`
 * closes the sockets, kills QEMU, waits for it (the tap it created goes with it) and removes the
 * temp dir; a QEMU still alive when the test process exits is SIGKILLed. Our compare, which the
 * test relays these streams into, is `startRawColoProxyCompare` (colo-proxy-compare.ts).
 */

import type { ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ChildUnderTest, findOnPath, makeTempDir, spawnTracked } from './comparator-under-test.js';
import { requireQemu } from './qemu-colo-compare.js';
import { dial, waitFor, writeAll } from './socket-peer.js';

export type FilterNetdev = 'stream' | 'tap';
export type FilterName = 'mirror' | 'redirector';
export const FILTERS: readonly FilterName[] = ['mirror', 'redirector'];

export interface QemuFiltersOptions {
  /** `vnet_hdr_support=on` on both filters. */
  vnetHeader?: boolean;
  /** Which netdev the test drives (default 'stream'). */
  netdev?: FilterNetdev;
  /** Bound on the whole start-up, ms (default 5000). */
  startTimeoutMs?: number;
}

export interface QemuFilters {
  /** The argv QEMU was started with (binary first). */
  readonly commandLine: readonly string[];
  readonly vnetHeader: boolean;
  readonly netdev: FilterNetdev;
  /** The tap interface's name (netdev 'tap' only). */
  readonly tapName: string | undefined;
  /** QEMU's stderr so far. */
  readonly stderr: string;
  /** Everything the filter wrote so far, raw. */
  bytes(filter: FilterName): Buffer;
  /** Calls `fn` with every chunk the filter has written and will write, in order, as read from the socket. */
  subscribe(filter: FilterName, fn: (chunk: Buffer) => void): void;
  /** Injects frames into the netdev, in order; resolves once they are handed over (socket write or packet socket send). */
  inject(frames: readonly Uint8Array[]): Promise<void>;
  /** Waits until both filters have written at least `n` bytes. */
  waitForBytes(n: number, timeoutMs?: number): Promise<void>;
  /** Kills QEMU and cleans up; idempotent. */
  close(): Promise<void>;
}

const DEFAULT_WAIT_MS = 3000;

let tapCount = 0;

/** The QEMU argv (without the binary). */
export function qemuFiltersArgs(dir: string, o: QemuFiltersOptions & { tapName?: string } = {}): string[] {
  const netdev = o.netdev ?? 'stream';
  const args = ['-machine', 'pc', '-S', '-nodefaults', '-display', 'none'];
  if (netdev === 'stream') {
    args.push('-netdev', `stream,id=n0,server=on,addr.type=unix,addr.path=${join(dir, 'netdev')}`);
  } else {
    if (o.tapName === undefined) throw new Error('qemuFiltersArgs: netdev tap needs tapName');
    args.push('-netdev', `tap,id=n0,ifname=${o.tapName},script=no,downscript=no,vnet_hdr=on`);
  }
  args.push('-device', 'virtio-net-pci,netdev=n0');
  for (const f of FILTERS) args.push('-chardev', `socket,id=${f}0,path=${join(dir, f)}`);
  const vnet = o.vnetHeader === true ? ',vnet_hdr_support=on' : '';
  args.push('-object', `filter-mirror,id=m0,netdev=n0,queue=tx,outdev=mirror0${vnet}`);
  args.push('-object', `filter-redirector,id=r0,netdev=n0,queue=tx,outdev=redirector0${vnet}`);
  return args;
}

/** Sends raw Ethernet frames out of interface `ifname` with an AF_PACKET socket (so into QEMU's tap). */
const PACKET_SEND_PERL = `
use strict; use Socket;
my $ifname = shift;
open(my $fh, '<', "/sys/class/net/$ifname/ifindex") or die "no interface $ifname: $!\\n";
my $ifindex = <$fh>; chomp $ifindex; close $fh;
socket(my $s, 17, SOCK_RAW, 0) or die "socket(AF_PACKET, SOCK_RAW): $!\\n";
my $to = pack('S n i S C C a8', 17, 0, $ifindex, 0, 0, 0, '');
while (my $line = <STDIN>) {
  chomp $line; next if $line eq '';
  my $b = pack('H*', $line);
  my $n = send($s, $b, 0, $to);
  die "send: $!\\n" unless defined $n && $n == length $b;
}
`;

/** Sets interface `ifname` up (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP), so no iproute2 is needed. */
const LINK_UP_PERL = `
use strict; use Socket;
my $ifname = shift;
socket(my $s, AF_INET, SOCK_DGRAM, 0) or die "socket: $!\\n";
my $req = pack('a16 s x22', $ifname, 0);
ioctl($s, 0x8913, $req) or die "SIOCGIFFLAGS $ifname: $!\\n";
my (undef, $flags) = unpack('a16 s', $req);
ioctl($s, 0x8914, pack('a16 s x22', $ifname, $flags | 1)) or die "SIOCSIFFLAGS $ifname: $!\\n";
`;

function run(cmd: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawnTracked(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    } catch (e) {
      reject(e as Error);
      return;
    }
    let err = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (err += d));
    child.once('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} failed (code ${code}, signal ${signal}): ${err.trim()}`));
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(input ?? '');
  });
}

/** Starts QEMU with the two filters; see the module header. */
export async function startQemuFilters(options: QemuFiltersOptions = {}): Promise<QemuFilters> {
  const binary = requireQemu('QEMU filter tests');
  const netdev = options.netdev ?? 'stream';
  if (netdev === 'tap') {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw new Error('the tap variant needs root (QEMU creates the tap interface, the test sends on a packet socket)');
    }
    if (!existsSync('/dev/net/tun')) throw new Error('the tap variant needs /dev/net/tun');
    if (findOnPath('perl') === undefined) throw new Error('the tap variant needs `perl` on PATH (Debian: perl-base)');
  }
  const dir = makeTempDir('colo-qemu-filters-');
  const tapName = netdev === 'tap' ? `cqf${process.pid % 1_000_000}x${++tapCount}` : undefined;
  const h = new Harness(dir, netdev, options.vnetHeader === true, tapName);
  try {
    await h.start(binary, qemuFiltersArgs(dir, { ...options, tapName }), options.startTimeoutMs ?? 5000);
  } catch (e) {
    await h.close();
    throw e;
  }
  return h;
}

class Harness implements QemuFilters {
  private qemu: ChildUnderTest | undefined;
  private readonly servers: Server[] = [];
  private readonly accepted = new Map<FilterName, Socket>();
  private readonly chunks = new Map<FilterName, Buffer[]>(FILTERS.map((f) => [f, []]));
  private readonly subscribers = new Map<FilterName, ((chunk: Buffer) => void)[]>(FILTERS.map((f) => [f, []]));
  private netdevSocket: Socket | undefined;
  private closed = false;

  constructor(
    private readonly dir: string,
    readonly netdev: FilterNetdev,
    readonly vnetHeader: boolean,
    readonly tapName: string | undefined,
  ) {}

  get commandLine(): readonly string[] {
    return this.qemu?.commandLine ?? [];
  }

  get stderr(): string {
    return this.qemu?.stderr ?? '';
  }

  async start(binary: string, args: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    // The filters' chardevs are clients: listen first, QEMU connects during its start-up.
    for (const f of FILTERS) {
      const server = createServer((s) => this.accept(f, s));
      this.servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(join(this.dir, f), () => {
          server.off('error', reject);
          resolve();
        });
      });
    }
    const qemu = new ChildUnderTest('QEMU', this.dir, binary, args);
    this.qemu = qemu;
    await waitFor(() => `QEMU's filter chardevs to connect (${[...this.accepted.keys()].join(', ') || 'none'} did); ${this.describe()}`, () => {
      qemu.checkAlive();
      return this.accepted.size === FILTERS.length;
    }, left());
    if (this.netdev === 'stream') {
      this.netdevSocket = await dial(join(this.dir, 'netdev'), left(), () => qemu.checkAlive());
      this.netdevSocket.on('error', () => {});
    } else {
      const tap = this.tapName!;
      await waitFor(() => `QEMU to create tap ${tap}; ${this.describe()}`, () => {
        qemu.checkAlive();
        return existsSync(`/sys/class/net/${tap}`);
      }, left());
      // No IPv6 on the tap, so the host sends no frames of its own on it (MLD, router solicitations).
      const v6 = `/proc/sys/net/ipv6/conf/${tap}/disable_ipv6`;
      if (existsSync(v6)) writeFileSync(v6, '1');
      await run('perl', ['-e', LINK_UP_PERL, tap]);
    }
  }

  private accept(f: FilterName, s: Socket): void {
    if (this.accepted.has(f)) {
      s.destroy();
      return;
    }
    this.accepted.set(f, s);
    s.on('error', () => {});
    s.on('data', (chunk: Buffer) => {
      this.chunks.get(f)!.push(chunk);
      for (const fn of this.subscribers.get(f)!) fn(chunk);
    });
  }

  private describe(): string {
    return `mirror ${this.bytes('mirror').length} B, redirector ${this.bytes('redirector').length} B; ${this.qemu?.describe() ?? 'QEMU not started'}`;
  }

  bytes(filter: FilterName): Buffer {
    return Buffer.concat(this.chunks.get(filter)!);
  }

  subscribe(filter: FilterName, fn: (chunk: Buffer) => void): void {
    for (const c of this.chunks.get(filter)!) fn(c);
    this.subscribers.get(filter)!.push(fn);
  }

  async inject(frames: readonly Uint8Array[]): Promise<void> {
    this.qemu!.checkAlive();
    if (this.netdev === 'stream') {
      for (const frame of frames) {
        // -netdev stream framing: 4-byte big-endian length, then the frame.
        const len = Buffer.alloc(4);
        len.writeUInt32BE(frame.length, 0);
        await writeAll(this.netdevSocket!, Buffer.concat([len, frame]));
      }
    } else {
      const lines = frames.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n';
      await run('perl', ['-e', PACKET_SEND_PERL, this.tapName!], lines);
    }
  }

  async waitForBytes(n: number, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await waitFor(() => `${n} bytes from each filter; ${this.describe()}`, () => {
      this.qemu!.checkAlive();
      return FILTERS.every((f) => this.bytes(f).length >= n);
    }, timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.netdevSocket?.destroy();
    for (const s of this.accepted.values()) s.destroy();
    for (const s of this.servers) s.close();
    // A tap QEMU created goes away with its fd (QEMU exits, or is killed, and the kernel closes it).
    if (this.qemu) await this.qemu.close();
    else rmSync(this.dir, { recursive: true, force: true });
  }
}
