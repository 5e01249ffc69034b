// `colo-proxy compare` end to end, as a process on unix sockets, driven by test peers that
// speak QEMU's framing and the Xen notify protocol: release, checkpoint, vnet headers, framing
// errors, reconnects and the metrics endpoint.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coloProxyArgv } from '../../support/colo-proxy-cli.js';
import { TCP_ACK, TCP_PSH, emitTcp, emitUdp } from '../../../compare/index.js';
import { COLO_CHECKPOINT, COLO_COMPARE_GET_XEN_INIT, COLO_USERSPACE_PROXY_INIT, DO_CHECKPOINT, encodeNotify } from '../../../proxy/framing/notify.js';
import { QemuFrameDecoder, encodeQemuFrames } from '../../../proxy/framing/qemu-frames.js';
import { FramePeer, NotifyPeer, dial, waitFor } from '../../support/socket-peer.js';
import { coloProxyCompareArgs } from '../../support/colo-proxy-compare.js';
import { PENDING_READ_LIMIT } from '../../../proxy/engine/compare-engine.js';
import { spawnTracked } from '../../support/comparator-under-test.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-proxy-compare-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

interface Running {
  child: ChildProcess;
  log: () => string;
  primary: FramePeer;
  secondary: FramePeer;
  outdev: FramePeer;
  notify: NotifyPeer;
  metricsPort: number;
  sock: (name: string) => string;
}

/** A `Running` without some of its peers. */
type Without<K extends keyof Running> = Omit<Running, K>;

let run = 0;
async function startCompare(extra: string[] = [], vnet = false): Promise<Running> {
  const runDir = join(dir, `r${run++}`);
  mkdirSync(runDir);
  const sock = (name: string) => join(runDir, name);
  const metricsPort = await freePort();
  const args = [...coloProxyCompareArgs(runDir, { vnetHeader: vnet }), '--metrics', `127.0.0.1:${metricsPort}`, ...extra];
  const child = spawnTracked(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  await waitFor('compare to start', () => stderr.includes('metrics: http://'), 15000).catch((e: Error) => { throw new Error(`${e.message}; stderr: ${stderr}`); });
  const [primary, secondary, outdev, notify] = await Promise.all([
    FramePeer.open(sock('primary_in'), vnet), FramePeer.open(sock('secondary_in'), vnet), FramePeer.open(sock('outdev'), vnet), NotifyPeer.open(sock('notify_dev')),
  ]);
  return { child, log: () => stderr, primary, secondary, outdev, notify, metricsPort, sock };
}

async function stop(r: Without<'notify'> & { notify?: NotifyPeer }): Promise<number | null> {
  for (const p of [r.primary, r.secondary, r.outdev]) p.close();
  r.notify?.close();
  if (r.child.exitCode !== null || r.child.signalCode !== null) return r.child.exitCode;
  r.child.kill('SIGTERM');
  return new Promise((resolve) => r.child.once('exit', (code) => resolve(code)));
}

/** Sends compare SIGTERM with its peers still connected; resolves with its exit code. */
function sigterm(r: Pick<Running, 'child'>): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => r.child.once('exit', (code) => resolve(code)));
  r.child.kill('SIGTERM');
  return exited;
}

/** The value of the metric line starting with `series` (a name, or a name and its labels). */
async function metric(r: Pick<Running, 'metricsPort'>, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${r.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

/** Waits (20 s at most) until `check` resolves true. */
async function until(r: Pick<Running, 'log'>, what: string, check: () => Promise<boolean>): Promise<void> {
  for (const start = Date.now(); !(await check()); await new Promise((resolve) => setTimeout(resolve, 10))) {
    if (Date.now() - start > 20_000) assert.fail(`timed out waiting for ${what}; compare's log: ${r.log()}`);
  }
}

/** A UDP datagram from `srcPort` whose payload is `i` in six digits, then 1400 bytes of filler. */
const numbered = (i: number, srcPort = 53): Uint8Array =>
  emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort, dstPort: 5353, payload: `${String(i).padStart(6, '0')}${'x'.repeat(1400)}` });

/** The number `numbered` put in a frame. */
const numberOf = (packet: Uint8Array): number => Number(Buffer.from(packet).subarray(42, 48).toString());

/** Datagrams `from` to `to - 1` (see `numbered`), QEMU-framed, 500 to a write. */
function numberedWrites(from: number, to: number, srcPort = 53): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = from; at < to; at += 500) out.push(encodeQemuFrames(Array.from({ length: Math.min(500, to - at) }, (_, k) => ({ packet: numbered(at + k, srcPort) })), false));
  return out;
}

/**
 * Stops outdev's peer reading, sends datagrams 0 to `total - 1` identically on both inputs, and
 * waits until compare has read some and had 300 ms more to read on, were it still reading.
 */
async function stallOutdev(r: Running, total: number): Promise<void> {
  r.outdev.socket.pause();
  for (const bytes of numberedWrites(0, total)) {
    r.primary.sendRaw(bytes);
    r.secondary.sendRaw(bytes);
  }
  await until(r, 'compare to read a first batch', async () => (await metric(r, 'colo_proxy_frames_total{side="primary"}')) > 0);
  await new Promise((resolve) => setTimeout(resolve, 300));
}

const segment = (seq: number, payload: string) =>
  emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq, ack: 5000, flags: TCP_ACK | TCP_PSH, payload });

let shared: Running;
before(async () => {
  shared = await startCompare();
});
after(async () => {
  await stop(shared);
});

test('compare: the start-up warm-up leaves no trace: nothing on outdev, every count at zero', async () => {
  // The warm-up traffic all matched: every primary frame (half of those fed) was released.
  const warm = /warmed up on (\d+) synthetic frames \((\d+) released\)/.exec(shared.log());
  assert.ok(warm !== null && Number(warm[1]) > 1000 && Number(warm[2]) * 2 === Number(warm[1]), shared.log());
  assert.doesNotMatch(shared.log(), /checkpoint requested|mismatch /);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(shared.outdev.received.length, 0);
  for (const series of ['colo_proxy_frames_total{side="primary"}', 'colo_proxy_frames_total{side="secondary"}', 'colo_proxy_released_frames_total']) {
    assert.equal(await metric(shared, series), 0, series);
  }
});

test('compare: answers the Xen hello', async () => {
  shared.notify.send(COLO_USERSPACE_PROXY_INIT);
  await shared.notify.waitFor(COLO_COMPARE_GET_XEN_INIT);
});

/** Our compare with its four ports on UNIX sockets in a fresh directory, nothing connected; `log` is its stderr so far. */
function spawnBareCompare(): { runDir: string; child: ChildProcess; log: () => string } {
  const runDir = join(dir, `r${run++}`);
  mkdirSync(runDir);
  const child = spawnTracked(process.execPath, coloProxyCompareArgs(runDir), { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return { runDir, child, log: () => stderr };
}

test('compare: the warm-up is over before any port listens, so a controller saying hello at start-up is answered at once', async () => {
  // Xen's libxl gives up when the reply to its hello takes over 500 ms; the warm-up blocks
  // compare for several hundred. A controller that connects as soon as notify-dev exists is
  // answered in less than half the time compare says the warm-up took: were the warm-up still to
  // run, the reply would wait for all of it.
  const { runDir, child, log } = spawnBareCompare();
  try {
    const notifyDev = join(runDir, 'notify_dev');
    await waitFor(() => `the notify-dev socket; stderr: ${log()}`, () => existsSync(notifyDev), 15000);
    const controller = await NotifyPeer.open(notifyDev);
    try {
      const sent = performance.now();
      controller.send(COLO_USERSPACE_PROXY_INIT);
      await controller.waitFor(COLO_COMPARE_GET_XEN_INIT);
      const replyMs = performance.now() - sent;
      await waitFor(() => `the warm-up line; stderr: ${log()}`, () => /warmed up on/.test(log()));
      const warmMs = Number(/warmed up on \d+ synthetic frames \(\d+ released\) in (\d+) ms/.exec(log())?.[1]);
      assert.ok(replyMs < warmMs / 2, `the reply took ${Math.round(replyMs)} ms; the warm-up ${warmMs} ms`);
    } finally {
      controller.close();
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

test('compare: SIGTERM as soon as its first socket exists (still starting) stops it once started: a clean exit, its sockets removed', async () => {
  // Before, the signal handlers came only after everything listened and the start-up was logged:
  // a signal in between killed it silently, its socket files left behind.
  const { runDir, child, log } = spawnBareCompare();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const names = ['primary_in', 'secondary_in', 'outdev', 'notify_dev'];
  const deadline = Date.now() + 15_000;
  while (!names.some((n) => existsSync(join(runDir, n))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, log());
  assert.match(log(), /compare: stopping/);
  for (const name of names) assert.ok(!existsSync(join(runDir, name)), `${name} removed`);
});

test('compare: identical output is released on outdev, byte for byte and in order', async () => {
  const frames = [segment(1000, 'hello '), segment(1006, 'world')];
  const start = shared.outdev.received.length;
  for (const f of frames) shared.primary.send(f);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(shared.outdev.received.length, start, 'nothing goes out before the secondary agrees');
  shared.secondary.send(segment(1000, 'hello world'));
  await shared.outdev.waitForFrames(start + 2);
  assert.deepEqual(shared.outdev.received.slice(start).map((f) => Buffer.from(f.packet).toString('hex')), frames.map((f) => Buffer.from(f).toString('hex')));
});

test('compare: a difference asks for one checkpoint; COLO_CHECKPOINT releases the held frames', async () => {
  const start = shared.outdev.received.length;
  const udp = (p: string) => emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: p });
  shared.primary.send(udp('real answer'));
  shared.secondary.send(udp('other answer'));
  shared.primary.send(udp('second'));
  await shared.notify.waitFor(DO_CHECKPOINT);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(shared.notify.count(DO_CHECKPOINT), 1);
  assert.equal(shared.outdev.received.length, start, 'held until the checkpoint is done');
  shared.notify.send(COLO_CHECKPOINT);
  await shared.outdev.waitForFrames(start + 2);
  assert.match(shared.log(), /mismatch udp\.payload udp 10\.0\.0\.2:53 <> 10\.0\.0\.1:5353 at 0: payload/);
});

test('compare: a bad frame closes only that connection; a new peer carries on, nothing lost or doubled', async () => {
  const start = shared.outdev.received.length;
  const before = segment(1011, 'before');
  const afterwards = segment(1017, 'after');
  shared.primary.send(before);
  const bad = Buffer.alloc(8);
  bad.writeUInt32BE(69633, 0);
  shared.primary.sendRaw(bad);
  await waitFor('the primary connection to close', () => shared.primary.closed);
  assert.match(shared.log(), /primary-in: .*qemu\.frame_too_long.*closing this connection/);
  shared.primary = await FramePeer.open(shared.sock('primary_in'));
  shared.primary.send(afterwards);
  shared.secondary.send(segment(1011, 'beforeafter'));
  await shared.outdev.waitForFrames(start + 2);
  await new Promise((r) => setTimeout(r, 50));
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  assert.deepEqual(shared.outdev.received.slice(start).map((f) => hex(f.packet)), [hex(before), hex(afterwards)]);
});

test('compare: metrics count frames, releases and mismatches by reason', async () => {
  const text = await (await fetch(`http://127.0.0.1:${shared.metricsPort}/metrics`)).text();
  const value = (re: RegExp) => Number(re.exec(text)?.[1]);
  assert.ok(value(/^colo_proxy_frames_total\{side="primary"\} (\d+)$/m) >= 6);
  // compare reads no client frames (QEMU's filter-mirror feeds the SVM): no series for them.
  assert.doesNotMatch(text, /side="client"/);
  assert.equal(value(/^colo_proxy_mismatches_total\{reason="udp.payload"\} (\d+)$/m), 1);
  assert.equal(value(/^colo_proxy_checkpoint_requests_total\{reason="udp.payload"\} (\d+)$/m), 1);
  assert.equal(value(/^colo_proxy_released_frames_total (\d+)$/m), shared.outdev.received.length);
  assert.equal(value(/^colo_proxy_framing_errors_total\{port="primary-in",code="qemu.frame_too_long"\} (\d+)$/m), 1);
  // Every reason is there from the start, at 0, for alerts on rates (none of these happened here).
  for (const reason of ['tcp.urgent', 'table_full']) {
    assert.equal(value(new RegExp(`^colo_proxy_mismatches_total\\{reason="${reason}"\\} (\\d+)$`, 'm')), 0, reason);
    assert.equal(value(new RegExp(`^colo_proxy_checkpoint_requests_total\\{reason="${reason}"\\} (\\d+)$`, 'm')), 0, reason);
  }
  const missing = await fetch(`http://127.0.0.1:${shared.metricsPort}/nope`);
  assert.equal(missing.status, 404);
  const head = await fetch(`http://127.0.0.1:${shared.metricsPort}/metrics`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  const post = await fetch(`http://127.0.0.1:${shared.metricsPort}/metrics`, { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
});

test('compare: a metrics client that never finishes its request does not keep it from stopping', async () => {
  const r = await startCompare();
  const stalled = connect(r.metricsPort, '127.0.0.1');
  stalled.on('error', () => {});
  try {
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    stalled.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'); // and never the end of the headers
    const absolute = await fetch(`http://127.0.0.1:${r.metricsPort}/metrics`, { method: 'HEAD' });
    assert.equal(absolute.status, 200, 'served meanwhile');
    const code = await Promise.race([stop(r), new Promise((resolve) => setTimeout(() => resolve('still running 10 s after SIGTERM'), 10_000))]);
    assert.equal(code, 0, r.log());
  } finally {
    stalled.destroy();
  }
});

test('compare: the metrics path may come as an absolute URL (through a proxy)', async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const s = connect(shared.metricsPort, '127.0.0.1', () => s.end(`GET http://127.0.0.1:${shared.metricsPort}/metrics HTTP/1.0\r\n\r\n`));
    let text = '';
    s.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(text)).on('error', reject);
  });
  assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(reply, /\ncolo_proxy_released_frames_total \d+\n/);
});

test('compare: with --vnet-hdr the header comes back as it was received', async () => {
  const r = await startCompare([], true);
  try {
    const header = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    r.primary.send(segment(1000, 'vnet'), header);
    r.secondary.send(segment(1000, 'vnet'), new Uint8Array(12));
    await r.outdev.waitForFrames(1);
    assert.deepEqual([...r.outdev.received[0]!.vnetHeader], [...header]);
    assert.equal(Buffer.from(r.outdev.received[0]!.packet).toString('hex'), Buffer.from(segment(1000, 'vnet')).toString('hex'));
  } finally {
    assert.equal(await stop(r), 0, 'SIGTERM stops it cleanly');
  }
});

test('compare: bad flags and unusable endpoints are one line and exit code 2', async () => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const busyPort = (busy.address() as { port: number }).port;
  const cases: [string[], RegExp][] = [
    [['--primary-in', 'unix:/x,server', '--secondary-in', 'unix:/y,server'], /^colo-proxy: compare: --outdev EP is required/],
    [['--primary-in', 'tcp:1.2.3.4', '--secondary-in', 'unix:/y', '--outdev', 'unix:/z'], /^colo-proxy: compare: --primary-in: no HOST:PORT/],
    [['--primary-in', `unix:${join(dir, 'no', 'such', 'dir.sock')},server`, '--secondary-in', 'unix:/y', '--outdev', 'unix:/z'], /^colo-proxy: compare: --primary-in: cannot listen: no directory \S+\/no\/such for \S+\/no\/such\/dir\.sock$/],
    [['--primary-in', 'unix:/x', '--secondary-in', 'unix:/y', '--outdev', 'unix:/z', '--metrics', 'nowhere'], /^colo-proxy: compare: --metrics must be HOST:PORT/],
    // Two endpoints on one socket: the second listener would take the path from the first.
    [['--primary-in', `unix:${join(dir, 'same')},server`, '--secondary-in', `unix:${join(dir, 'same')},server`, '--outdev', `unix:${join(dir, 'o')},server`],
      /^colo-proxy: compare: --primary-in unix:\S+\/same,server and --secondary-in unix:\S+\/same,server are the same socket; each endpoint needs its own$/],
    [['--primary-in', `unix:${join(dir, 'p')},server`, '--secondary-in', `unix:${join(dir, 's')},server`, '--outdev', 'unix:shared.sock', '--notify-dev', `unix:${join(process.cwd(), 'shared.sock')},server`],
      /^colo-proxy: compare: --outdev unix:shared\.sock and --notify-dev unix:\S+\/shared\.sock,server are the same socket/],
    [['--primary-in', `unix:${join(dir, 'p')},server`, '--secondary-in', 'tcp:127.0.0.1:1,server', '--outdev', 'tcp:127.0.0.1:1'],
      /^colo-proxy: compare: --secondary-in tcp:127\.0\.0\.1:1,server and --outdev tcp:127\.0\.0\.1:1 are the same socket/],
    [['--primary-in', `unix:${join(dir, 'p')},server`, '--secondary-in', 'tcp:0.0.0.0:1,server', '--outdev', 'tcp:127.0.0.1:1'],
      /^colo-proxy: compare: --secondary-in tcp:0\.0\.0\.0:1,server and --outdev tcp:127\.0\.0\.1:1 are the same socket/],
    [['--primary-in', 'tcp:[::1]:9702,server', '--secondary-in', `unix:${join(dir, 's')},server`, '--outdev', `unix:${join(dir, 'o')},server`, '--metrics', '[::1]:9702'],
      /^colo-proxy: compare: --primary-in tcp:\[::1\]:9702,server and --metrics \[::1\]:9702 are the same socket; each needs its own$/],
    // Nothing is logged before everything listens: not the start-up lines, not a connecting port's failures.
    [['--primary-in', `unix:${join(dir, 'p')},server`, '--secondary-in', `unix:${join(dir, 's')},server`, '--outdev', `unix:${join(dir, 'o')},server`, '--metrics', `127.0.0.1:${busyPort}`],
      /^colo-proxy: compare: --metrics: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/],
    [['--primary-in', `unix:${join(dir, 'p')},server`, '--secondary-in', `unix:${join(dir, 's')},server`, '--outdev', `unix:${join(dir, 'nobody-here')}`, '--notify-dev', `unix:${join(dir, 'no', 'such', 'n')},server`],
      /^colo-proxy: compare: --notify-dev: cannot listen: no directory \S+\/no\/such for \S+\/no\/such\/n$/],
    // A unix path already taken: by a file, or by a socket another process listens on.
    [['--primary-in', `unix:${join(dir, 'a-file')},server`, '--secondary-in', `unix:${join(dir, 's')},server`, '--outdev', `unix:${join(dir, 'o')},server`],
      /^colo-proxy: compare: --primary-in: cannot listen: \S+\/a-file exists and is not a socket$/],
    [['--primary-in', `unix:${join(dir, 'p')},server`, '--secondary-in', `unix:${join(dir, 's')},server`, '--outdev', `unix:${join(dir, 'taken')},server`],
      /^colo-proxy: compare: --outdev: cannot listen: \S+\/taken is in use by another process \(it accepts connections\)$/],
    // A path the kernel would cut short: the socket would be created at another path.
    [['--primary-in', `unix:${join(dir, 'x'.repeat(120))},server`, '--secondary-in', `unix:${join(dir, 's')},server`, '--outdev', `unix:${join(dir, 'o')},server`],
      /^colo-proxy: compare: --primary-in: unix socket path of \d+ bytes in "unix:\S+,server" is too long \(at most 107; the kernel would cut it short\)$/],
  ];
  writeFileSync(join(dir, 'a-file'), 'not a socket');
  const taken = createServer((s) => s.destroy());
  await new Promise<void>((r) => taken.listen(join(dir, 'taken'), r));
  try {
    for (const [args, re] of cases) {
      const child = spawn(process.execPath, coloProxyArgv(['compare', ...args]), { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      const running = setTimeout(() => child.kill('SIGKILL'), 15_000); // accepted: it would run for ever
      const code = await new Promise((r) => child.once('exit', r));
      clearTimeout(running);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr.trimEnd(), re);
      assert.equal(stderr.trimEnd().split('\n').length, 1, stderr);
    }
    assert.equal(readFileSync(join(dir, 'a-file'), 'utf8'), 'not a socket', 'the file is left alone');
    (await dial(join(dir, 'taken'), 1000)).destroy(); // the other process keeps its socket
  } finally {
    taken.close();
    busy.close();
  }
});

test('compare: a log reader that goes away ends the log, not the comparator', async () => {
  const tag = `c${run++}`;
  const sock = (name: string) => join(dir, `${tag}-${name}.sock`);
  const child = spawn(process.execPath, coloProxyArgv([
    'compare', '--primary-in', `unix:${sock('p')},server`, '--secondary-in', `unix:${sock('s')},server`, '--outdev', `unix:${sock('o')},server`,
  ]), { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  await waitFor('compare to start', () => stderr.includes('compare: primary-in'));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  child.stderr!.destroy(); // a `logger` or `tee` restarted: its next line meets EPIPE
  const [primary, secondary] = await Promise.all([FramePeer.open(sock('p')), FramePeer.open(sock('s'))]); // each logs a line
  const outdev = await FramePeer.open(sock('o'));
  const udp = (p: string) => emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: p });
  primary.send(udp('still comparing'));
  secondary.send(udp('still comparing'));
  await waitFor('the frame on outdev', () => outdev.received.length === 1, 5000);
  assert.equal(child.exitCode, null, 'compare exited');
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  for (const p of [primary, secondary, outdev]) p.close();
});

test('compare: a connecting outdev keeps released frames until its peer appears, and reconnects', async () => {
  const tag = `c${run++}`;
  const sock = (name: string) => join(dir, `${tag}-${name}.sock`);
  const child = spawn(process.execPath, coloProxyArgv([
    'compare', '--primary-in', `unix:${sock('p')},server`, '--secondary-in', `unix:${sock('s')},server`, '--outdev', `unix:${sock('o')}`,
    '--notify-dev', `unix:${sock('n')}`,
  ]), { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const [primary, secondary] = await Promise.all([FramePeer.open(sock('p')), FramePeer.open(sock('s'))]);
  const udp = (p: string) => emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: p });
  primary.send(udp('early'));
  secondary.send(udp('early'));
  await waitFor('compare to start', () => stderr.includes('compare: primary-in'));
  await new Promise((r) => setTimeout(r, 200)); // the frames are compared; only now does an outdev peer exist
  assert.equal(stderr.split(`outdev: cannot connect to unix:${sock('o')} (ENOENT); retrying`).length, 2, `said once; stderr: ${stderr}`);
  assert.equal(stderr.split(`notify-dev: cannot connect to unix:${sock('n')} (ENOENT); retrying`).length, 2, `the controller's port too; stderr: ${stderr}`);
  const received: Buffer[] = [];
  let decoder = new QemuFrameDecoder({ vnetHeader: false });
  let current: Socket | null = null;
  const server = createServer((s) => {
    current = s;
    decoder = new QemuFrameDecoder({ vnetHeader: false });
    s.on('data', (chunk: Buffer) => received.push(...decoder.push(chunk).map((f) => Buffer.from(f.packet))));
  });
  await new Promise<void>((r) => server.listen(sock('o'), r));
  try {
    await waitFor('the early frame on outdev', () => received.length === 1);
    current!.destroy();
    await waitFor('compare to notice outdev went away', () => stderr.includes('outdev: peer gone'));
    primary.send(udp('late'));
    secondary.send(udp('late'));
    await waitFor('the late frame after the reconnect', () => received.length === 2, 8000);
    assert.deepEqual(received.map((b) => b.toString('hex')), [udp('early'), udp('late')].map((b) => Buffer.from(b).toString('hex')));
  } finally {
    primary.close();
    secondary.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    server.close();
  }
});

test('compare: when outdev stops reading, the inputs stop being read too; nothing is lost', async () => {
  // Frames held while the senders are stalled would time out into a checkpoint that this test's
  // controller never completes: give them the time the test needs. The queue limit stays at its
  // default: an input read far ahead of the other is paused on its own instead of filling a queue.
  const r = await startCompare(['--compare-timeout', '600000']);
  try {
    // ~17 MB per input: far more than the socket buffers between us, so it can only sit in the
    // senders' own buffers once compare has stopped reading.
    const total = 12_000;
    await stallOutdev(r, total);
    for (const side of ['primary', 'secondary'] as const) {
      const read = await metric(r, `colo_proxy_frames_total{side="${side}"}`);
      assert.ok(read < total / 2, `${side}: compare read ${read} of ${total} frames while outdev was stalled`);
      assert.ok(r[side].socket.writableLength > 8_000_000, `${side}: the rest waits in the sender (${r[side].socket.writableLength} bytes)`);
    }
    r.outdev.socket.resume();
    await r.outdev.waitForFrames(total, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; compare's log: ${r.log()}`);
    });
    assert.doesNotMatch(r.log(), /mismatch|checkpoint requested/);
    assert.deepEqual(r.outdev.received.map((f) => numberOf(f.packet)), Array.from({ length: total }, (_, i) => i));
  } finally {
    await stop(r);
  }
});

test('compare: an input far ahead is paused within a read: a burst of small frames, more than the queue in one read, costs no checkpoint', async () => {
  const r = await startCompare(['--compare-timeout', '600000']);
  try {
    // 46-byte payloads: one 64 KiB read carries over 700, the queue holds 1,024. The SVM's
    // output comes first, 400 frames, then 1,100 more in one write; then the PVM's, the same.
    const small = (i: number): Uint8Array => emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload: `${String(i).padStart(6, '0')}${'d'.repeat(40)}` });
    const frames = (from: number, to: number): Uint8Array => encodeQemuFrames(Array.from({ length: to - from }, (_, k) => ({ packet: small(from + k) })), false);
    const total = 1500;
    r.secondary.sendRaw(frames(0, 400));
    await new Promise((resolve) => setTimeout(resolve, 200));
    r.secondary.sendRaw(frames(400, total));
    await new Promise((resolve) => setTimeout(resolve, 300));
    r.primary.sendRaw(frames(0, total));
    await waitFor(() => `all released, or a checkpoint request; log ${r.log()}`, () => r.outdev.received.length >= total || r.notify.count(DO_CHECKPOINT) > 0, 10_000);
    assert.equal(r.notify.count(DO_CHECKPOINT), 0, `no checkpoint requested for identical output; log ${r.log()}`);
    assert.deepEqual(r.outdev.received.map((f) => numberOf(f.packet)), Array.from({ length: total }, (_, i) => i));
  } finally {
    await stop(r);
  }
});

test('compare: inputs paused for a stalled outdev resume when that peer goes and another comes; later frames flow, in order', async () => {
  const r = await startCompare(['--compare-timeout', '600000']);
  let next: FramePeer | undefined;
  try {
    const total = 12_000;
    await stallOutdev(r, total);
    assert.ok((await metric(r, 'colo_proxy_frames_total{side="primary"}')) < total / 2, 'the inputs were paused');
    // The stalled peer goes away without reading; a new one takes its place.
    r.outdev.socket.destroy();
    await waitFor('compare to notice outdev went away', () => r.log().includes('outdev: peer gone'));
    next = await FramePeer.open(r.sock('outdev'));
    await waitFor('the last frame on the new outdev peer', () => next!.received.some((f) => numberOf(f.packet) === total - 1), 30_000)
      .catch((e: Error) => { throw new Error(`${e.message}; ${next!.received.length} frames came; compare's log: ${r.log()}`); });
    // What the dead connection had taken into the kernel is lost with it; the rest comes in order.
    const got = next.received.map((f) => numberOf(f.packet));
    assert.ok(got.every((n, i) => i === 0 || n === got[i - 1]! + 1), 'released in order, no gap or repeat after the first');
    assert.doesNotMatch(r.log(), /mismatch|checkpoint requested/);
  } finally {
    next?.close();
    await stop(r);
  }
});

test('compare: while a checkpoint is pending, the primary stops being read past a limit; nothing is lost', async () => {
  // The controller here answers only when the test says so; the flow's secondary is silent, so
  // everything the primary sends is held. ~100 MB: past the limit, and far more than the socket
  // buffers between us, so what compare does not read can only sit in the sender.
  const r = await startCompare(['--compare-timeout', '600000']);
  try {
    const total = 72_000;
    r.primary.send(numbered(-1));
    r.secondary.send(numbered(-2));
    await r.notify.waitFor(DO_CHECKPOINT);
    for (const bytes of numberedWrites(0, total, 54)) r.primary.sendRaw(bytes);
    await waitFor(() => `compare to pause the primary; its log: ${r.log()}`, () => /primary-in: paused: \d+ bytes read since the checkpoint request, \d+ frames \(\d+ bytes\) held; waiting for the checkpoint/.test(r.log()), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300)); // time to read on, were compare still reading
    const held = await metric(r, 'colo_proxy_held_bytes');
    assert.ok(held > PENDING_READ_LIMIT / 2 && held <= PENDING_READ_LIMIT + 128 * 1024, `held ${held} bytes: what was read up to the limit, no more than one read past it`);
    assert.ok(r.primary.socket.writableLength > 20_000_000, `the rest waits in the sender (${r.primary.socket.writableLength} bytes)`);
    assert.equal(r.outdev.received.length, 0, 'nothing released before the checkpoint is done');
    r.notify.send(COLO_CHECKPOINT);
    await until(r, 'the checkpoint to be done', async () => (await metric(r, 'colo_proxy_checkpoints_done_total')) === 1);
    // The flush released the diverged flow's frame and what was read of the other before it;
    // what is read after waits for the secondary's copies.
    const flushed = (await metric(r, 'colo_proxy_released_frames_total')) - 1;
    assert.ok(flushed > 0 && flushed < total, `${flushed} frames flushed`);
    for (const bytes of numberedWrites(flushed, total, 54)) r.secondary.sendRaw(bytes);
    await r.outdev.waitForFrames(total + 1, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; compare's log: ${r.log()}`);
    });
    assert.deepEqual(r.outdev.received.slice(1).map((f) => numberOf(f.packet)), Array.from({ length: total }, (_, i) => i));
    assert.equal(r.notify.count(DO_CHECKPOINT), 1);
  } finally {
    await stop(r);
  }
});

test('compare: batches written while earlier ones are still queued for a slow outdev come out intact, in order', async () => {
  // Small batches make small writes: once outdev's socket buffer is full they queue in compare
  // while the inputs are still read (a write under the stream's high-water mark reports no
  // backpressure), so later batches are encoded while earlier ones still wait to be sent.
  const r = await startCompare();
  try {
    r.outdev.socket.pause();
    const batches = 40;
    const perBatch = 100;
    const payload = (i: number) => `${String(i).padStart(6, '0')}${'z'.repeat(58)}`;
    for (let b = 0; b < batches; b++) {
      const frames = Array.from({ length: perBatch }, (_, k) => ({ packet: emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 54, dstPort: 5353, payload: payload(b * perBatch + k) }) }));
      const bytes = encodeQemuFrames(frames, false);
      r.primary.sendRaw(bytes);
      r.secondary.sendRaw(bytes);
      await new Promise((resolve) => setTimeout(resolve, 5)); // one batch per read
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    r.outdev.socket.resume();
    await r.outdev.waitForFrames(batches * perBatch, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; compare's log: ${r.log()}`);
    });
    assert.deepEqual(r.outdev.received.map((f) => Buffer.from(f.packet).subarray(42).toString()), Array.from({ length: batches * perBatch }, (_, i) => payload(i)));
  } finally {
    await stop(r);
  }
});

test("compare: the write outdev's peer was taking when it went away is dropped, said and counted; the rest of a large flush goes to the next peer", async () => {
  // 600 held datagrams of ~1.4 KB flushed by one COLO_CHECKPOINT: 850 KB, written in pieces of
  // at most 256 KiB (180 of these frames). The first peer reads some and goes away while the
  // kernel holds what it took; the piece it was taking is dropped, the pieces behind it are not.
  const total = 600;
  const r = await startCompare(['--compare-timeout', '600000']);
  let next: FramePeer | undefined;
  try {
    r.outdev.close();
    await waitFor('compare to notice outdev went away', () => r.log().includes('outdev: peer gone'));
    const first = await dial(r.sock('outdev'));
    first.on('error', () => {});
    first.pause();
    await waitFor('the new outdev peer', () => r.log().split('outdev: peer connected').length === 3);
    r.primary.sendRaw(encodeQemuFrames(Array.from({ length: total }, (_, i) => ({ packet: numbered(i) })), false));
    await until(r, 'the frames to be held', async () => (await metric(r, 'colo_proxy_held_frames')) === total);
    r.notify.send(COLO_CHECKPOINT);
    await until(r, 'the flush', async () => (await metric(r, 'colo_proxy_released_frames_total')) === total);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const decoder = new QemuFrameDecoder({ vnetHeader: false });
    const readByFirst: number[] = [];
    for (let c = first.read() as Buffer | null; c !== null; c = first.read() as Buffer | null) {
      for (const f of decoder.push(c)) readByFirst.push(numberOf(f.packet));
    }
    first.destroy();
    await waitFor('compare to notice the first peer went away', () => r.log().split('outdev: peer gone').length === 3);
    next = await FramePeer.open(r.sock('outdev'));
    // Later traffic reaches the new peer; then nothing else is coming.
    for (const bytes of numberedWrites(total, total + 10)) {
      r.primary.sendRaw(bytes);
      r.secondary.sendRaw(bytes);
    }
    await waitFor('the later frames', () => next!.received.some((f) => numberOf(f.packet) === total + 9), 10_000);
    const readByNext = next.received.map((f) => numberOf(f.packet));
    const dropped = Number(/outdev: peer gone \([^)]*\); the write it was taking, (\d+) released frames \(\d+ bytes\), is dropped, not resent/.exec(r.log())?.[1]);
    assert.ok(dropped > 0 && dropped <= 180, `dropped ${dropped} frames: one write of at most 256 KiB`);
    assert.equal(await metric(r, 'colo_proxy_outdev_dropped_frames_total'), dropped);
    assert.ok(readByFirst.length > 0 && readByFirst.length < total, `the first peer read ${readByFirst.length} frames`);
    assert.deepEqual(readByNext.filter((n) => readByFirst.includes(n)), [], 'no frame reached both peers');
    // What the next peer gets of the flush is its tail, whole and in order: the pieces queued
    // behind the dropped one (the kernel's buffer, lost with the first peer, sits in between).
    const tail = readByNext.filter((n) => n < total);
    assert.ok(tail.length > 0, 'the rest of the flush reached the next peer');
    assert.deepEqual(readByNext, Array.from({ length: tail.length + 10 }, (_, i) => total - tail.length + i));
  } finally {
    next?.close();
    await stop(r);
  }
});

test('compare: a checkpoint request pending when a controller connects goes out after the reply to its hello', async () => {
  // Xen's libxl reads the one message after its hello as the reply: DO_CHECKPOINT first would be lost.
  const r = await startCompare();
  try {
    r.notify.close();
    await waitFor('compare to notice the controller went away', () => r.log().includes('notify-dev: controller gone'));
    r.primary.send(segment(1000, 'hello'));
    r.secondary.send(segment(1000, 'HELLO'));
    await waitFor('the checkpoint request', () => r.log().includes('checkpoint requested'));
    const controller = await NotifyPeer.open(r.sock('notify_dev'));
    try {
      await new Promise((resolve) => setTimeout(resolve, 100)); // a controller says hello right after connecting
      assert.deepEqual(controller.received.map((m) => m.text), [], 'nothing before the hello');
      controller.send(COLO_USERSPACE_PROXY_INIT);
      await controller.waitFor(DO_CHECKPOINT);
      assert.deepEqual(controller.received.map((m) => m.text), [COLO_COMPARE_GET_XEN_INIT, DO_CHECKPOINT]);
    } finally {
      controller.close();
    }
    // A controller that never says hello still gets the request, a moment after connecting.
    const silent = await NotifyPeer.open(r.sock('notify_dev'));
    try {
      await silent.waitFor(DO_CHECKPOINT, 1, 5000);
      assert.deepEqual(silent.received.map((m) => m.text), [DO_CHECKPOINT]);
    } finally {
      silent.close();
    }
  } finally {
    await stop(r);
  }
});

/**
 * A controller just taken, with a checkpoint request pending: nothing reaches it before its hello
 * (a libxl reads the one message after its hello as the reply), then the reply and the request.
 */
async function aConversationOfItsOwn(controller: NotifyPeer): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100)); // a controller says hello right after connecting
  assert.deepEqual(controller.received.map((m) => m.text), [], 'nothing before its hello');
  controller.send(COLO_USERSPACE_PROXY_INIT);
  await controller.waitFor(DO_CHECKPOINT);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(controller.received.map((m) => m.text), [COLO_COMPARE_GET_XEN_INIT, DO_CHECKPOINT]);
}

test('compare: a controller that never reads what it asked for is closed; the next one starts a conversation of its own', async () => {
  const r = await startCompare();
  try {
    // A hung controller: says hello over and over, reads nothing. Its replies pile up unsent.
    r.notify.socket.pause();
    r.notify.socket.write(Buffer.concat(Array.from({ length: 40_000 }, () => encodeNotify(COLO_USERSPACE_PROXY_INIT))));
    await waitFor(() => `the unread controller to be closed; log ${r.log()}`, () => r.log().includes('notify-dev: controller gone'), 10_000);
    assert.match(r.log(), /notify-dev: the controller left \d+ bytes of ours unread; closing the connection/);
    r.primary.send(segment(1000, 'hello'));
    r.secondary.send(segment(1000, 'HELLO'));
    await waitFor('the checkpoint request', () => r.log().includes('checkpoint requested'));
    const next = await NotifyPeer.open(r.sock('notify_dev'));
    try {
      await aConversationOfItsOwn(next);
    } finally {
      next.close();
    }
  } finally {
    await stop(r);
  }
});

test('compare: the controller waiting behind one closed for not reading gets nothing before its own hello', async () => {
  const r = await startCompare();
  try {
    r.notify.send(COLO_USERSPACE_PROXY_INIT);
    await r.notify.waitFor(COLO_COMPARE_GET_XEN_INIT);
    r.primary.send(segment(1000, 'hello'));
    r.secondary.send(segment(1000, 'HELLO'));
    await r.notify.waitFor(DO_CHECKPOINT);
    const next = await NotifyPeer.open(r.sock('notify_dev'));
    try {
      await waitFor('the next controller to wait', () => r.log().includes('a new peer waits'));
      // The first stops reading and says hello until it is closed: the reply that overflows is
      // sent while its hello is handled, and the next controller is taken right then.
      r.notify.socket.pause();
      const hellos = Buffer.concat(Array.from({ length: 500 }, () => encodeNotify(COLO_USERSPACE_PROXY_INIT)));
      for (let i = 0; i < 100 && !r.log().includes('bytes of ours unread'); i++) {
        r.notify.socket.write(hellos);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.match(r.log(), /bytes of ours unread; closing the connection/);
      await aConversationOfItsOwn(next);
    } finally {
      next.close();
    }
  } finally {
    await stop(r);
  }
});

test('compare: unknown notify messages are each counted, and logged at most 20 lines a second', async () => {
  const r = await startCompare();
  try {
    const n = 5000;
    r.notify.socket.write(Buffer.alloc(4 * n)); // n empty messages
    await until(r, 'every unknown message counted', async () => (await metric(r, 'colo_proxy_notify_unknown_total')) === n);
    await waitFor(() => `the count of lines left out; log ${r.log().slice(-500)}`, () => /more notify-dev unknown-message lines left out/.test(r.log()), 3000);
    const lines = r.log().split('\n').filter((l) => l.includes('unknown message')).length;
    assert.ok(lines >= 1 && lines <= 40, `${lines} log lines for ${n} unknown messages`);
  } finally {
    await stop(r);
  }
});

test('compare: a notify message with a NUL is an unknown message, counted, and the controller stays connected (as QEMU does)', async () => {
  const r = await startCompare();
  try {
    const withNul = Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('COLO_CHECKPOINT\0', 'latin1')]);
    r.notify.socket.write(Buffer.concat([withNul, encodeNotify(COLO_CHECKPOINT)]));
    await until(r, 'the good message handled', async () => (await metric(r, 'colo_proxy_checkpoints_done_total')) === 1);
    assert.equal(await metric(r, 'colo_proxy_notify_unknown_total'), 1, r.log());
    assert.ok(!r.log().includes('notify-dev: controller gone'), r.log());
    assert.match(r.log(), /notify-dev: unknown message "COLO_CHECKPOINT\\u0000" ignored/);
  } finally {
    await stop(r);
  }
});

test('compare: a bad notify message right behind a good one in the same read closes the controller connection at once', async () => {
  const r = await startCompare();
  try {
    r.notify.socket.write(Buffer.concat([encodeNotify(COLO_CHECKPOINT), Buffer.from([0, 0, 1, 0x2c])])); // then a length of 300
    await waitFor('the connection to be closed', () => r.log().includes('notify-dev: controller gone'));
    assert.equal(await metric(r, 'colo_proxy_checkpoints_done_total'), 1, 'the good message was handled');
    assert.equal(await metric(r, 'colo_proxy_framing_errors_total{port="notify-dev",code="notify.too_long"}'), 1, r.log());
  } finally {
    await stop(r);
  }
});

test('compare: a notify message cut off by the controller going away is counted and logged as a framing error', async () => {
  const r = await startCompare();
  try {
    r.notify.socket.write(encodeNotify(COLO_CHECKPOINT).subarray(0, 9));
    await new Promise((resolve) => setTimeout(resolve, 100)); // read before the close
    r.notify.close();
    await until(r, 'the count', async () => (await metric(r, 'colo_proxy_framing_errors_total{port="notify-dev",code="notify.truncated"}')) === 1);
    assert.match(r.log(), /notify-dev: stream ends after 5 of the 15 bytes of a message at byte 0 \(notify\.truncated\); that partial message is dropped/);
  } finally {
    await stop(r);
  }
});

test('compare: a frame cut off by its peer going away is counted and logged as a framing error', async () => {
  const r = await startCompare();
  try {
    const frame = encodeQemuFrames([{ packet: numbered(1) }], false);
    r.primary.sendRaw(frame.subarray(0, 300));
    await new Promise((resolve) => setTimeout(resolve, 100)); // read before the close
    r.primary.close();
    await waitFor(() => `the primary to be gone; log ${r.log()}`, () => r.log().includes('primary-in: peer gone'));
    await until(r, 'the count', async () => (await metric(r, 'colo_proxy_framing_errors_total{port="primary-in",code="qemu.truncated"}')) === 1);
    assert.match(r.log(), new RegExp(`primary-in: stream ends after 296 of the ${frame.length - 4} bytes of a frame at byte 0 \\(qemu\\.truncated\\); that partial frame is dropped`));
    // A connection closed at a frame boundary loses nothing, and one closed for a framing error counts that one only.
    r.primary = await FramePeer.open(r.sock('primary_in'));
    r.primary.sendRaw(frame);
    r.primary.sendRaw(Buffer.from([0, 1, 0x10, 1]));
    await waitFor(() => `the bad frame to close the connection; log ${r.log()}`, () => r.primary.closed);
    const third = await FramePeer.open(r.sock('primary_in'));
    third.sendRaw(frame);
    await until(r, 'the frames to be read', async () => (await metric(r, 'colo_proxy_frames_total{side="primary"}')) === 2);
    third.close();
    await waitFor(() => `the third peer to be gone; log ${r.log()}`, () => r.log().split('primary-in: peer gone').length === 4);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await metric(r, 'colo_proxy_framing_errors_total{port="primary-in",code="qemu.truncated"}'), 1, r.log());
    assert.equal(await metric(r, 'colo_proxy_framing_errors_total{port="primary-in",code="qemu.frame_too_long"}'), 1, r.log());
  } finally {
    await stop(r);
  }
});

test('compare: an outdev stall longer than the timeout costs no checkpoint: the held frames wait for copies the paused input has not read', async () => {
  // Flow 54's primary frames are held for their secondary copies, which the secondary sends after
  // flow 53's frames: enough of those to fill a stalled outdev, so the inputs are paused with
  // the copies unread, for longer than --compare-timeout.
  const r = await startCompare(['--compare-timeout', '1000', '--expired-scan-cycle', '100']);
  try {
    r.outdev.socket.pause();
    const frames = (from: number, n: number, srcPort: number) => encodeQemuFrames(Array.from({ length: n }, (_, k) => ({ packet: numbered(from + k, srcPort) })), false);
    r.primary.sendRaw(frames(0, 50, 54));
    await until(r, 'the flow 54 frames to be held', async () => (await metric(r, 'colo_proxy_held_frames')) === 50);
    const filler = frames(1000, 2000, 53);
    r.primary.sendRaw(filler);
    r.secondary.sendRaw(filler);
    r.secondary.sendRaw(frames(0, 50, 54));
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.ok((await metric(r, 'colo_proxy_frames_total{side="secondary"}')) < 2050, 'the secondary input was paused with flow 54 unread');
    assert.doesNotMatch(r.log(), /checkpoint requested|mismatch/);
    r.outdev.socket.resume();
    await r.outdev.waitForFrames(2050, 20_000).catch((e: Error) => {
      throw new Error(`${e.message}; compare's log: ${r.log()}`);
    });
    assert.doesNotMatch(r.log(), /checkpoint requested|mismatch/);
    assert.equal(r.notify.count(DO_CHECKPOINT), 0);
    // The clock runs again: a frame whose copy never comes still times out.
    r.primary.send(numbered(0, 55));
    await r.notify.waitFor(DO_CHECKPOINT, 1, 10_000);
    assert.match(r.log(), /checkpoint requested \(timeout, udp 10\.0\.0\.2:55 /);
  } finally {
    await stop(r);
  }
});

/**
 * In a stop's summary: what was read of primary-in and not compared, when outdev held the inputs
 * paused with some of it still to read, and the start of a frame whose rest was not read.
 */
const UNREAD = String.raw`(, \d+ primary frames and \d+ more bytes of primary-in read while it was paused, not compared yet)?(, \d+ bytes of a primary frame read only in part)?`;

/**
 * Stops outdev's reader, then sends 300 datagrams of ~1.4 KB (more than a unix socket's buffer),
 * the secondary's copies first, so that each primary frame is released as soon as it is read,
 * until outdev's stall pauses the inputs: released frames then wait in compare, none is held.
 */
async function releaseIntoStalledOutdev(r: Running): Promise<void> {
  r.outdev.socket.pause();
  const bytes = encodeQemuFrames(Array.from({ length: 300 }, (_, i) => ({ packet: numbered(i) })), false);
  r.secondary.sendRaw(bytes);
  await until(r, 'the secondary copies to be read', async () => (await metric(r, 'colo_proxy_frames_total{side="secondary"}')) === 300);
  r.primary.sendRaw(bytes);
  await until(r, 'frames to be released', async () => (await metric(r, 'colo_proxy_released_frames_total')) > 0);
  await new Promise((resolve) => setTimeout(resolve, 300)); // until outdev's stall pauses the inputs
}

test('compare: on SIGTERM after every frame went out, it says nothing is discarded', async () => {
  const r = await startCompare();
  try {
    const bytes = encodeQemuFrames(Array.from({ length: 10 }, (_, i) => ({ packet: numbered(i) })), false);
    r.secondary.sendRaw(bytes);
    r.primary.sendRaw(bytes);
    await r.outdev.waitForFrames(10);
    assert.equal(await sigterm(r), 0);
    assert.match(r.log(), /compare: stopping\n.*compare: nothing discarded: no frame held, every released frame written to outdev\n$/);
  } finally {
    await stop(r);
  }
});

test('compare: on SIGTERM with a primary frame read only in part, its bytes are said discarded', async () => {
  const r = await startCompare();
  try {
    const bytes = encodeQemuFrames(Array.from({ length: 10 }, (_, i) => ({ packet: numbered(i) })), false);
    r.secondary.sendRaw(bytes);
    // One write: read with the frames before it, so it is in when the last of them is released.
    const partial = encodeQemuFrames([{ packet: numbered(10) }], false).subarray(0, 44);
    r.primary.sendRaw(Buffer.concat([bytes, partial]));
    await r.outdev.waitForFrames(10);
    assert.equal(await sigterm(r), 0);
    assert.match(r.log(), /compare: stopping\n.*compare: discarding 0 held frames \(0 bytes\), 44 bytes of a primary frame read only in part and 0 released frames not written to outdev \(0 bytes\)\n$/);
  } finally {
    await stop(r);
  }
});

test('compare: on SIGTERM, released frames queued for a slow outdev get time to go out, and none is said discarded', async () => {
  const r = await startCompare();
  try {
    await releaseIntoStalledOutdev(r);
    const released = await metric(r, 'colo_proxy_released_frames_total');
    const exited = sigterm(r);
    await new Promise((resolve) => setTimeout(resolve, 300));
    r.outdev.socket.resume();
    assert.equal(await exited, 0);
    await r.outdev.waitForFrames(released);
    assert.deepEqual(r.outdev.received.map((f) => numberOf(f.packet)), Array.from({ length: released }, (_, i) => i));
    // The rest of the primary's 300 frames, not read while outdev held the inputs paused, are.
    assert.match(r.log(), new RegExp(String.raw`compare: stopping\n.*compare: discarding 0 held frames \(0 bytes\)${UNREAD} and 0 released frames not written to outdev \(0 bytes\)\n$`));
  } finally {
    await stop(r);
  }
});

test('compare: on SIGTERM, an outdev that takes nothing holds the stop up for a second, no more; what it did not take is said', async () => {
  const r = await startCompare();
  try {
    await releaseIntoStalledOutdev(r);
    assert.equal(await sigterm(r), 0);
    assert.match(r.log(), new RegExp(String.raw`compare: discarding 0 held frames \(0 bytes\)${UNREAD} and [1-9]\d* released frames not written to outdev \(\d+ bytes; outdev did not take them within 1000 ms\)\n$`));
  } finally {
    await stop(r);
  }
});

test('compare: a second SIGINT while outdev holds the stop up cuts the wait short, and what is discarded is still said', async () => {
  const r = await startCompare();
  try {
    await releaseIntoStalledOutdev(r);
    const exited = new Promise((resolve) => r.child.once('exit', (code, signal) => resolve(signal ?? code)));
    r.child.kill('SIGINT');
    await waitFor('compare to start stopping', () => r.log().includes('compare: stopping'));
    r.child.kill('SIGINT');
    assert.equal(await exited, 0, 'not killed by the second SIGINT');
    assert.match(r.log(), new RegExp(String.raw`compare: discarding 0 held frames \(0 bytes\)${UNREAD} and [1-9]\d* released frames not written to outdev \(\d+ bytes; SIGINT again before outdev took them\)\n$`));
  } finally {
    await stop(r);
  }
});

test('compare: on SIGTERM, what was read of primary-in while outdev held the inputs paused is said to be discarded too', async () => {
  const r = await startCompare();
  try {
    await releaseIntoStalledOutdev(r);
    const frames = await metric(r, 'colo_proxy_frames_total{side="primary"}');
    // More of the primary's output while the inputs are paused: Node reads ahead into the
    // socket's buffer (up to its high-water mark), none of it compared.
    r.primary.sendRaw(encodeQemuFrames(Array.from({ length: 300 }, (_, i) => ({ packet: numbered(1000 + i) })), false));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await metric(r, 'colo_proxy_frames_total{side="primary"}'), frames, 'nothing more compared');
    assert.equal(await sigterm(r), 0);
    assert.match(r.log(), /compare: discarding \d+ held frames \(\d+ bytes\), \d+ primary frames and [1-9]\d* more bytes of primary-in read while it was paused, not compared yet(, \d+ bytes of a primary frame read only in part)? and [1-9]\d* released frames not written to outdev/);
  } finally {
    await stop(r);
  }
});

test('compare: on SIGTERM, held frames and released frames with no outdev peer are discarded, and it says how many', async () => {
  const r = await startCompare();
  try {
    r.outdev.close();
    await waitFor('compare to notice outdev went away', () => r.log().includes('outdev: peer gone'));
    const bytes = encodeQemuFrames(Array.from({ length: 300 }, (_, i) => ({ packet: numbered(i) })), false);
    r.primary.sendRaw(bytes);
    r.secondary.sendRaw(bytes);
    const held = segment(1000, 'held for ever');
    r.primary.send(held);
    await until(r, 'the frames to be released and held', async () =>
      (await metric(r, 'colo_proxy_released_frames_total')) === 300 && (await metric(r, 'colo_proxy_held_frames')) === 1);
    assert.equal(await sigterm(r), 0);
    assert.match(r.log(), new RegExp(`compare: discarding 1 held frames \\(${held.length} bytes\\) and 300 released frames not written to outdev \\(${bytes.length} bytes; outdev has no peer\\)\\n$`));
  } finally {
    await stop(r);
  }
});

/** `compare` without --notify-dev (as beside KVM), its three frame ports connected. */
async function startWithoutController(): Promise<Without<'notify'>> {
  const runDir = join(dir, `r${run++}`);
  mkdirSync(runDir);
  const sock = (name: string) => join(runDir, name);
  const metricsPort = await freePort();
  const full = coloProxyCompareArgs(runDir);
  const at = full.indexOf('--notify-dev');
  const args = [...full.slice(0, at), ...full.slice(at + 2), '--metrics', `127.0.0.1:${metricsPort}`];
  const child = spawnTracked(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  await waitFor('compare to start', () => stderr.includes('metrics: http://'), 15000).catch((e: Error) => { throw new Error(`${e.message}; stderr: ${stderr}`); });
  const [primary, secondary, outdev] = await Promise.all([FramePeer.open(sock('primary_in')), FramePeer.open(sock('secondary_in')), FramePeer.open(sock('outdev'))]);
  return { child, log: () => stderr, primary, secondary, outdev, metricsPort, sock };
}

test('compare: without --notify-dev a request resynchronises only the flow that diverged; the SVM\'s copies queued for others still match', async () => {
  const r = await startWithoutController();
  try {
    assert.match(r.log(), /no --notify-dev, so nothing can checkpoint the VMs/);
    const udp = (srcPort: number, payload: string) => emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort, dstPort: 5353, payload });
    // The SVM ahead on one flow; then a real difference on another.
    r.secondary.send(udp(54, 'on time'));
    await until(r, 'the SVM\'s copy read', async () => (await metric(r, 'colo_proxy_frames_total{side="secondary"}')) === 1);
    r.primary.send(udp(53, 'x'));
    r.secondary.send(udp(53, 'X'));
    await r.outdev.waitForFrames(1);
    r.primary.send(udp(54, 'on time'));
    await r.outdev.waitForFrames(2);
    assert.deepEqual(r.outdev.received.map((f) => Buffer.from(f.packet.subarray(42)).toString()), ['x', 'on time']);
    assert.equal(await metric(r, 'colo_proxy_checkpoint_requests_total{reason="udp.payload"}'), 1);
    assert.equal(await metric(r, 'colo_proxy_mismatches_total{reason="timeout"}'), 0, 'released on arrival, not after a timeout');
    assert.equal(await metric(r, 'colo_proxy_held_frames'), 0);
  } finally {
    await stop(r);
  }
});

test('compare: without --notify-dev, "checkpoint requested" lines are logged at most 20 a second too', async () => {
  const r = await startWithoutController();
  try {
    const udp = (payload: string) => emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 53, dstPort: 5353, payload });
    // Every pair differs, each in a write of its own: one request each, each ended at once.
    for (let i = 0; i < 60; i++) {
      r.primary.send(udp(`p${i}`));
      r.secondary.send(udp(`s${i}`));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await r.outdev.waitForFrames(60);
    const requests = await metric(r, 'colo_proxy_checkpoint_requests_total{reason="udp.payload"}');
    await until(r, 'the window\'s summary line', async () => /more checkpoint lines? left out of the log/.test(r.log()));
    const lines = r.log().split('\n').filter((l) => l.includes('checkpoint requested')).length;
    const summaries = r.log().split('\n').filter((l) => /more checkpoint lines? left out/.test(l)).length;
    assert.ok(requests > 20, `enough requests to need the limit (${requests})`);
    // Each window writes at most 20, and one summary if it left any out; the last may leave none out.
    assert.ok(lines <= 20 * (summaries + 1), `${lines} lines for ${requests} requests, ${summaries} windows leaving some out`);
  } finally {
    await stop(r);
  }
});
