/**
 * `colo-proxy run` and `colo-proxy bridge` refuse to start with one clear line and exit code 2:
 * missing flags, not root (no CAP_NET_RAW/CAP_NET_ADMIN), no libpcap/cap, an unknown interface, an
 * interface that is down, the same interface twice, two interfaces that would forward in a circle; but `run` starts without the SVM's interface
 * when it is missing. The interface checks run inside a namespace made here.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coloProxyArgv } from '../../support/colo-proxy-cli.js';
import { NetnsLab, execFile } from '../../support/netns.js';
import { waitFor } from '../../support/socket-peer.js';

const lab = new NetnsLab();
let ns = '';

let far = '';

before(() => {
  ns = lab.ns('cli');
  // Each interface's veth peer is in another namespace: two ends of one pair would be refused.
  far = lab.ns('far');
  for (const name of ['up0', 'up1', 'up2', 'down0']) lab.veth({ ns, name }, { ns: far, name: `peer-${name}` });
  lab.run(ns, 'ip', ['link', 'set', 'down0', 'down']);
  lab.veth({ ns, name: 'pair0' }, { ns, name: 'pair1' });
  lab.run(ns, 'ip', ['link', 'add', 'name', 'br9', 'type', 'bridge']);
  for (const name of ['port0', 'port1']) {
    lab.veth({ ns, name }, { ns: far, name: `peer-${name}` });
    lab.run(ns, 'ip', ['link', 'set', name, 'master', 'br9']);
  }
  lab.run(ns, 'ip', ['link', 'set', 'br9', 'up']);

});
after(() => lab.cleanup());

async function colo(args: readonly string[], prefix: readonly string[] = ['ip', 'netns', 'exec', ns], node: readonly string[] = []): Promise<{ code: number | null; stderr: string }> {
  const [cmd, ...rest] = [...prefix, process.execPath, ...node, ...coloProxyArgv(args)];
  const r = await execFile(cmd!, rest, { timeoutMs: 20_000 });
  return { code: r.code, stderr: r.stderr };
}

/** Asserts exit 2 with exactly one line on stderr matching `pattern`. */
function oneLine(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, pattern);
}

const ifs = (c: string, p: string, s: string): string[] => ['--client-if', c, '--primary-if', p, '--secondary-if', s];

/** Runs every case at once (each is a process start-up) and checks each one's single line. */
async function cases(list: readonly [args: readonly string[], pattern: RegExp, prefix?: readonly string[]][]): Promise<void> {
  const results = await Promise.all(list.map(([args, , prefix]) => colo(args, prefix)));
  results.forEach((r, i) => oneLine(r, list[i]![1]));
}

const noCaps = (): string[] => ['ip', 'netns', 'exec', ns, 'setpriv', '--inh-caps=-all', '--bounding-set=-all'];

test('run: missing flags, an unknown interface, an interface that is down, the same interface twice', async () => {
  await cases([
    [['run'], /^colo-proxy: run: --client-if IF is required$/],
    [['run', '--client-if', 'up0', '--primary-if', 'up1'], /exactly one of --secondary-if IF and --secondary-socket EP/],
    [['run', ...ifs('up0', 'nope0', 'up1')], /^colo-proxy: run: --primary-if: no interface named "nope0"/],
    [['run', ...ifs('up0', 'down0', 'up1')], /^colo-proxy: run: --primary-if: interface down0 is down; bring it up with: ip link set down0 up$/],
    [['run', ...ifs('up0', 'up1', 'up0')], /^colo-proxy: run: --secondary-if and --client-if name the same interface up0$/],
    [['run', ...ifs('pair0', 'up1', 'pair1')], /^colo-proxy: run: --client-if pair0 and --secondary-if pair1 are the two ends of one veth pair: what is sent on one comes back on the other/],
    [['run', ...ifs('up0', 'port1', 'port0')], /^colo-proxy: run: --primary-if port1 and --secondary-if port0 are ports of the same bridge br9, which forwards between them itself: take them out of it \(ip link set port1 nomaster; ip link set port0 nomaster\)$/],
    [['run', ...ifs('br9', 'up1', 'port0')], /^colo-proxy: run: --secondary-if port0 is a port of --client-if br9, a bridge, which forwards what is sent on it to port0: take it out \(ip link set port0 nomaster\)$/],
  ]);
});

/** Starts `run` in the namespace and waits for its start-up line (or its exit). */
async function startRun(args: readonly string[]): Promise<{ child: ReturnType<typeof lab.spawn>; text: () => string; exited: Promise<number | null> }> {
  const child = lab.spawn(ns, process.execPath, coloProxyArgv(['run', ...args]));
  let text = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await waitFor(() => `the start-up lines; stderr:\n${text}`, () => text.includes(' run: client-if') || child.exitCode !== null, 15_000);
  return { child, text: () => text, exited };
}

test('run: a --secondary-if that does not exist (the SVM not started yet) is no error: run starts without it and says so', async () => {
  const { child, text, exited } = await startRun(ifs('up0', 'up1', 'svm-tap9'));
  try {
    assert.equal(child.exitCode, null, text());
    assert.match(text(), / run: svm-tap9 does not exist: starting without it; once it is up, SIGUSR2 hands over to an engine that compares\n/);
    assert.match(text(), / secondary svm-tap9: gone; passing the primary's output through uncompared/);
    assert.match(text(), / run: client-if up0, primary-if up1, secondary-if svm-tap9 \(gone\);/);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, text());
});

test('run: SIGTERM while it waits for a lost interface to come back stops it at once, saying so', async () => {
  for (const name of ['wait0', 'wait1']) lab.veth({ ns, name }, { ns: far, name: `peer-${name}` });
  const { child, text, exited } = await startRun(ifs('wait0', 'wait1', 'up2'));
  try {
    lab.run(ns, 'ip', ['link', 'set', 'wait1', 'down']);
    await waitFor(() => `the engine to die; stderr:\n${text()}`, () => text().includes('the capture engine died') || child.exitCode !== null, 15_000);
    // The wait backs off (0.25, 0.5, 1, 2, 4 s): 4 s after the death the look at 3.75 s is past
    // and the next is 4 s away. A stop must not wait that out.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const signalled = Date.now();
    child.kill('SIGTERM');
    await waitFor(() => `the stop; stderr:\n${text()}`, () => child.exitCode !== null, 15_000);
    assert.ok(Date.now() - signalled < 2000, `stopped ${Date.now() - signalled} ms after SIGTERM: it waited for its next look at the interfaces`);
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(await exited, 0, text());
  assert.match(text(), / run: stopped while waiting for wait1 to come up\n/);
});

/**
 * A forwarding loop the start-up check cannot see: the peers of --client-if and --primary-if are
 * ports of one bridge in another namespace, so every frame run injects onto one comes back on the
 * other. cap's native loop then never hands back to the event loop (capture-stall.ts).
 */
async function runInAStorm(name: string, flags: readonly string[] = []): Promise<{ child: ReturnType<typeof lab.spawn>; text: () => string; engine: number }> {
  const loop = lab.ns(`loop${name}`);
  for (const end of ['c', 'a', 's']) lab.veth({ ns, name: `${name}${end}` }, { ns: loop, name: `${name}${end}-peer` });
  lab.run(loop, 'ip', ['link', 'add', 'name', 'br0', 'type', 'bridge']);
  for (const end of ['c', 'a']) lab.run(loop, 'ip', ['link', 'set', `${name}${end}-peer`, 'master', 'br0']);
  lab.run(loop, 'ip', ['addr', 'add', '10.77.0.1/24', 'dev', 'br0']);
  lab.run(loop, 'ip', ['link', 'set', 'br0', 'up']);
  const { child, text } = await startRun([...ifs(`${name}c`, `${name}a`, `${name}s`), ...flags]);
  // An ARP request from the bridge floods to both ports: it goes round from then on.
  await lab.exec(loop, 'ping', ['-c', '1', '-W', '1', '10.77.0.9']);
  await waitFor(() => `the stall; stderr:\n${text()}`, () => text().includes('capture: frames have kept the event loop busy') || child.exitCode !== null, 15_000);
  const engines = (await execFile('pgrep', ['-P', String(child.pid)])).stdout.trim().split('\n').filter(Boolean).map(Number);
  assert.equal(engines.length, 1, `children of run: ${engines.join(', ')}`);
  return { child, text, engine: engines[0]! };
}

test('run: frames that hold up the engine\'s event loop (a forwarding loop) do not make it unstoppable: SIGTERM kills it after a grace period', async () => {
  const { child, text } = await runInAStorm('st');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const code = await exited;
  assert.match(text(), / run: the engine has not stopped 5 s after SIGTERM: killing it; what it held is lost\n/);
  assert.equal(code, 137, text());
});

test('run: an engine whose event loop frames hold up still exits when its supervisor is killed', async () => {
  // No timeout while it lasts: a checkpoint line logged into the dead supervisor's pipe would
  // end the engine too (EPIPE), and this is about the engine noticing by itself.
  const { child, engine, text } = await runInAStorm('sk', ['--compare-timeout', '3600000']);
  child.kill('SIGKILL');
  // Gone, or a zombie not reaped yet (its parent is gone too).
  const alive = (): boolean => {
    try {
      return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${engine}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  await waitFor(() => `engine ${engine} to exit after its supervisor was killed; stderr:\n${text()}`, () => !alive(), 15_000);
});

test('run: a socket or metrics address it cannot listen on is the only line, naming the flag (the metrics address is announced only once running)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'colo-run-cli-'));
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a socket');
  const taken = createServer((s) => s.destroy());
  await new Promise<void>((r) => taken.listen(join(dir, 'taken'), r));
  try {
    await cases([
      [['run', ...ifs('up0', 'up1', 'up2'), '--notify-dev', `unix:${file},server`], /^colo-proxy: run: --notify-dev: cannot listen: \S+\/a-file exists and is not a socket$/],
      [['run', '--client-if', 'up0', '--primary-if', 'up1', '--secondary-socket', `unix:${join(dir, 'taken')},server`], /^colo-proxy: run: --secondary-socket: cannot listen: \S+\/taken is in use by another process \(it accepts connections\)$/],
      [['run', ...ifs('up0', 'up1', 'up2'), '--metrics', '10.9.9.9:9100'], /^colo-proxy: run: --metrics: cannot listen on 10\.9\.9\.9:9100: .*EADDRNOTAVAIL/],
      [['run', ...ifs('up0', 'up1', 'up2'), '--notify-dev', `unix:${file},server`, '--metrics', '127.0.0.1:9101'], /^colo-proxy: run: --notify-dev: cannot listen: \S+\/a-file exists and is not a socket$/],
      [['run', '--client-if', 'up0', '--primary-if', 'up1', '--secondary-socket', 'tcp:nohost', '--metrics', '127.0.0.1:9102'], /^colo-proxy: run: --secondary-socket: no HOST:PORT in "tcp:nohost"/],
      [['run', '--client-if', 'up0', '--primary-if', 'up1', '--secondary-socket', `unix:${join(dir, 'same')},server`, '--notify-dev', `unix:${join(dir, 'same')},server`],
        /^colo-proxy: run: --secondary-socket unix:\S+\/same,server and --notify-dev unix:\S+\/same,server are the same socket; each endpoint needs its own$/],
    ]);
  } finally {
    taken.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run and bridge: not root (no capture capabilities)', async () => {
  await cases([
    [['run', ...ifs('up0', 'up1', 'up2')], /^colo-proxy: run: live capture needs root \(or the capabilities CAP_NET_RAW and CAP_NET_ADMIN\)/, noCaps()],
    [['bridge', '--if', 'up0', '--connect', 'tcp:127.0.0.1:9'], /^colo-proxy: bridge: live capture needs root/, noCaps()],
  ]);
});

test('bridge: flags and interface checks', async () => {
  await cases([
    [['bridge', '--if', 'up0'], /^colo-proxy: bridge: give exactly one of --connect EP and --listen EP$/],
    [['bridge', '--if', 'nope0', '--connect', 'tcp:127.0.0.1:9'], /^colo-proxy: bridge: --if: no interface named "nope0"/],
    [['bridge', '--if', 'down0', '--listen', 'tcp:127.0.0.1:9'], /^colo-proxy: bridge: --if: interface down0 is down/],
    [['bridge', '--if', 'up0', '--connect', 'tcp:127.0.0.1:9,server'], /^colo-proxy: bridge: --connect tcp:127\.0\.0\.1:9,server asks to listen \("server"\): use --listen$/],
    [['bridge', '--if', 'up0', '--listen', 'unix:/x,bogus'], /^colo-proxy: bridge: --listen: unknown option "bogus" in "unix:\/x,bogus" /],
    [['bridge', '--if', 'up0', '--listen', 'unix:/x,server,server=off'], /^colo-proxy: bridge: --listen unix:\/x,server,server=off asks not to listen \("server=off"\): use --connect$/],
  ]);
});

test('bridge: a socket it cannot listen on is the only line (no libpcap warning before it)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'colo-bridge-cli-'));
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a socket');
  try {
    await cases([[['bridge', '--if', 'up0', '--listen', `unix:${file}`], /^colo-proxy: bridge: --listen: cannot listen: \S+\/a-file exists and is not a socket$/]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run and bridge: without the cap package (no libpcap) they say what to install', async () => {
  const noCap = ['--require', fileURLToPath(new URL('./fixtures/no-cap.cjs', import.meta.url))];
  const results = await Promise.all([['run', ...ifs('up0', 'up1', 'up2')], ['bridge', '--if', 'up0', '--connect', 'tcp:127.0.0.1:9']].map((args) => colo(args, undefined, noCap)));
  for (const r of results) oneLine(r, /needs libpcap and the cap package, which cannot be loaded \(Cannot find module 'cap'\); install them: apt-get install libpcap-dev && npm install cap/);
});
