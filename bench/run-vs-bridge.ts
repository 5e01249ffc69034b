/**
 * `colo-proxy run` against a plain Linux bridge, in the same topology and the same run
 * (test/proxy/run/topology.ts: client, PVM and SVM namespaces, the proxy's namespace between
 * them). Measured: a 50 MB HTTP download from the guest to the client (curl), best of three, and
 * the round trip of a small HTTP request on a keep-alive connection (p50/p99 over 2,000). The
 * baseline bridges the client's and the PVM's veths (no SVM, no comparison); then `run` takes
 * the same veths with the SVM attached and a Xen controller counting checkpoint requests, which
 * must stay at zero. Four times: with the guests' offloads off (every frame at most the MTU, as
 * the tests run them); the same with `run --send-thread` (sends from a second thread); the same
 * with `run --gro` (GRO on the guest-facing veths merges those frames before capture); and with
 * the guests' segmentation offload on, as virtio-net guests usually run (frames of up to 64 KiB;
 * run then needs --keep-offloads and ring room, and hands them to the kernel to segment for the
 * client). Needs root, like the tests. Goal (issue 6): >= 1 Gbit/s through run.
 */

import type { BenchResult } from './result.js';
import { ColoLab, GUEST_IP, PORT, TWIN } from '../test/proxy/run/topology.js';

const BYTES = 50_000_000;
const DOWNLOADS = 3;
const LATENCY_SAMPLES = 2000;

interface Figures {
  gbits: number;
  p50us: number;
  p99us: number;
}

async function measure(t: ColoLab): Promise<Figures> {
  let best = 0;
  for (let i = 0; i < DOWNLOADS; i++) {
    const r = await t.lab.exec(t.client, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download} %{speed_download}', `http://${GUEST_IP}:${PORT}/blob`], { timeoutMs: 120_000 });
    const [size, speed] = r.stdout.trim().split(' ').map(Number);
    if (r.code !== 0 || size !== BYTES) throw new Error(`download failed (exit ${r.code}, ${size} bytes): ${r.stderr}`);
    best = Math.max(best, (speed! * 8) / 1e9);
  }
  const l = await t.lab.exec(t.client, 'python3', [TWIN, 'latency', `http://${GUEST_IP}:${PORT}/small`, String(LATENCY_SAMPLES)], { timeoutMs: 120_000 });
  if (l.code !== 0) throw new Error(`latency client failed: ${l.stderr}`);
  const lat = JSON.parse(l.stdout) as { p50_us: number; p99_us: number };
  return { gbits: best, p50us: lat.p50_us, p99us: lat.p99_us };
}

export async function benchRunVsBridge(): Promise<BenchResult[]> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    console.log('  run-vs-bridge: needs root (network namespaces); skipped');
    return [];
  }
  const t = new ColoLab();
  const results: BenchResult[] = [];
  try {
    t.build();
    await Promise.all([t.startServers(BYTES), t.startController()]);
    results.push(...await side(t, 'guests without offloads', []));
    results.push(...await side(t, 'guests without offloads, run --send-thread', ['--send-thread']));
    results.push(...await side(t, 'guests without offloads, run --gro', ['--gro', '--ring-mb', '256']));
    for (const ns of [t.pvm, t.svm]) t.lab.segmentationOffloadOn(ns, 'eth0');
    // run turned its own interfaces' offloads off; a 64 KiB capture slot needs one on (veth defaults).
    for (const i of ['p0', 's0']) t.lab.run(t.proxy, 'ethtool', ['-K', i, 'tso', 'on', 'gso', 'on']);
    results.push(...await side(t, 'guests with TSO', ['--keep-offloads', '--ring-mb', '256']));
    return results;
  } finally {
    await t.cleanup();
  }
}

/** The bridge, then run with `proxyArgs`, in the lab as it is. */
async function side(t: ColoLab, label: string, proxyArgs: string[]): Promise<BenchResult[]> {
  t.bridge();
  const bridge = await measure(t);
  t.unbridge();
  const before = t.checkpointRequests;
  const proxy = await t.startProxy(proxyArgs);
  const run = await measure(t);
  const checkpoints = t.checkpointRequests - before;
  const m = await t.metrics();
  if (checkpoints > 0) {
    // The goal is zero: say why there were any (the proxy's mismatch and checkpoint lines).
    const why = proxy.log().split('\n').filter((l) => / (mismatch|checkpoint requested|secondary lost)/.test(l));
    console.log(`  ${label}: ${checkpoints} checkpoint requests; the first of ${why.length} lines:\n${why.slice(0, 6).map((l) => `    ${l}`).join('\n')}`);
  }
  await t.lab.stop(proxy.child);
  const truncated = ColoLab.total(m, 'colo_proxy_interface_truncated_total');
  return [
    { name: `${label}: bridge: 50 MB download`, value: bridge.gbits, unit: 'Gbit/s' },
    { name: `${label}: run: 50 MB download`, value: run.gbits, unit: 'Gbit/s', baseline: 'bridge', ratio: run.gbits / bridge.gbits },
    { name: `${label}: run: checkpoint requests during the bench`, value: checkpoints, unit: 'requests' },
    { name: `${label}: run: frames truncated by the capture`, value: truncated, unit: 'frames' },
    { name: `${label}: bridge: small request round trip p50`, value: bridge.p50us, unit: 'us' },
    { name: `${label}: run: small request round trip p50`, value: run.p50us, unit: 'us', baseline: 'bridge (time: below 1 is faster)', ratio: run.p50us / bridge.p50us },
    { name: `${label}: bridge: small request round trip p99`, value: bridge.p99us, unit: 'us' },
    { name: `${label}: run: small request round trip p99`, value: run.p99us, unit: 'us', baseline: 'bridge (time: below 1 is faster)', ratio: run.p99us / bridge.p99us },
  ];
}
