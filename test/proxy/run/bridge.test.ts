/**
 * `colo-proxy bridge` and `run --secondary-socket`: the SVM on another host. Two namespaces
 * stand for the two hosts, linked by a veth: the proxy's (run, with the client's and the PVM's
 * veths) and the secondary's (bridge on the SVM's veth, connecting over TCP to run). Real stacks
 * and clients as in run.test.ts: identical twins give zero checkpoints; when the secondary's
 * host goes away (bridge killed) the client is not stalled: timeouts, then pass-through.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ColoLab, GUEST_IP, GUEST_IP6, PORT, TWIN, waitFor, type ProxyProcess } from './topology.js';

const BLOB = 10_000_000;
const blobSha = spawnSync('python3', [TWIN, 'blobsha', String(BLOB)], { encoding: 'utf8' }).stdout.trim();
const t = new ColoLab();
let proxy: ProxyProcess;
let bridge: ProxyProcess;

before(async () => {
  t.build({ remoteSvm: true });
  await Promise.all([t.startServers(BLOB), t.startController()]);
  proxy = await t.startProxy(['--compare-timeout', '300', '--expired-scan-cycle', '50']);
  bridge = t.startBridge();
  await waitFor('the bridge to connect', () => proxy.log().includes('secondary-socket: peer connected'), 15_000);
});
after(() => t.cleanup());

test('through the bridge: ping, a 10 MB download, short connections, UDP; zero checkpoints', async () => {
  const m0 = await t.metrics();
  const ping = await t.lab.exec(t.client, 'ping', ['-c', '5', '-i', '0.05', '-W', '2', GUEST_IP6]);
  assert.match(ping.stdout, /5 packets transmitted, 5 received/, ping.stdout + ping.stderr);
  const get = await t.lab.exec(t.client, 'python3', [TWIN, 'get', `http://${GUEST_IP}:${PORT}/blob`], { timeoutMs: 60_000 });
  assert.equal(get.stdout.trim(), blobSha, get.stderr);
  const short = await t.lab.exec(t.client, 'python3', [TWIN, 'short', `http://${GUEST_IP}:${PORT}/small`, '100'], { timeoutMs: 60_000 });
  assert.deepEqual(JSON.parse(short.stdout), { ok: 100, bad: 0 }, short.stderr);
  const udp = await t.lab.exec(t.client, 'python3', [TWIN, 'udp', GUEST_IP, String(PORT), '50'], { timeoutMs: 60_000 });
  assert.deepEqual(JSON.parse(udp.stdout), { ok: 50, bad: 0 }, udp.stderr);
  const m = await t.metrics();
  assert.equal(t.checkpointRequests, 0, `proxy log:\n${proxy.log()}\nbridge log:\n${bridge.log()}`);
  assert.equal(ColoLab.total(m, 'colo_proxy_checkpoint_requests_total'), 0, proxy.log());
  // The SVM's output really came through the bridge and was compared.
  const svmFrames = (m.get('colo_proxy_frames_total{side="secondary"}') ?? 0) - (m0.get('colo_proxy_frames_total{side="secondary"}') ?? 0);
  assert.ok(svmFrames > 5000, `only ${svmFrames} SVM frames compared`);
  assert.ok((m.get('colo_proxy_compared_bytes_total') ?? 0) >= BLOB);
});

test("the secondary's host goes away mid-transfer: timeouts, then pass-through; the client completes", async () => {
  const download = t.lab.exec(t.client, 'python3', [TWIN, 'get', `http://${GUEST_IP}:${PORT}/blob`], { timeoutMs: 60_000 });
  await new Promise((r) => setTimeout(r, 200));
  await t.lab.stop(bridge.child);
  const r = await download;
  assert.equal(r.stdout.trim(), blobSha, `proxy log:\n${proxy.log()}`);
  await waitFor('the secondary to be declared lost', () => proxy.log().includes('secondary lost'), 10_000);
  assert.equal((await t.metrics()).get('colo_proxy_secondary_lost'), 1);
});

test("bridge on its own: its tap going down and up starts a new engine that reconnects; a stop puts the tap's offloads back", async () => {
  const features = (): string => t.lab.run(t.hostB, 'ethtool', ['-k', 's0']);
  await t.lab.stop(bridge.child); // run takes one secondary peer at a time
  const found = features();
  const again = t.startBridge();
  try {
    const peers = (): number => proxy.log().split('secondary-socket: peer connected').length - 1;
    const connected = peers();
    await waitFor('the new bridge to connect', () => peers() > connected, 15_000);
    assert.notEqual(features(), found, 'the bridge turns offloads off on its tap');
    t.lab.run(t.hostB, 'ip', ['link', 'set', 's0', 'down']);
    await waitFor('the engine to notice', () => again.log().includes('the capture engine died'), 5000);
    t.lab.run(t.hostB, 'ip', ['link', 'set', 's0', 'up']);
    await waitFor('a new engine', () => again.log().includes('bridge: every interface is up: starting a new engine'), 15_000);
    await waitFor('it to reconnect', () => peers() > connected + 1, 15_000);
    assert.equal(again.child.exitCode, null, `bridge exited:\n${again.log()}`);
    assert.doesNotMatch(again.log(), /no IPv4 address assigned/, 'libpcap\'s warning is left out');
  } finally {
    await t.lab.stop(again.child);
  }
  assert.equal(features(), found, `offloads as found:\n${again.log()}`);
});
