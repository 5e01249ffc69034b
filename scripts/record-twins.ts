/**
 * Records a golden replay case from real Linux TCP stacks, with colo-proxy run in the loop:
 * the `run` end-to-end topology (test/proxy/run/topology.ts: a client namespace, PVM and SVM
 * namespaces with the same IP and MAC running the same deterministic `twin.py` servers, and
 * `colo-proxy run` between them in a proxy namespace), with dumpcap on each guest's interface
 * (both directions). The PVM's capture becomes primary.pcapng; the SVM's, raw output in its own
 * sequence space with the client frames as `run` translated them for it, becomes
 * secondary.pcapng, replayed with --mode translate.
 *
 * Why `run` must be in the loop: without a comparator holding the PVM's output until the SVM has
 * sent the same, the client acknowledges bytes the SVM has not sent yet, and Linux discards such
 * segments ("ACK of unsent data"), requests and all: the SVM stalls and the capture shows a false
 * divergence. Needs root, iproute2, dumpcap, python3 and libpcap (cap).
 *
 * usage: npx tsx scripts/record-twins.ts SCENARIO OUTDIR
 *   download    one 300 kB download over HTTP/1.1
 *   keepalive   4 parallel keep-alive connections of 5 requests each, then 20 short connections
 *   mixed       20 UDP datagrams echoed, 5 pings, and 3 HTTP requests over IPv6
 *   random      20 kB that each guest draws at random: the outputs really differ
 */

import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ColoLab, GUEST_IP, GUEST_IP6, PORT, TWIN, waitFor } from '../test/proxy/run/topology.js';

const SCENARIOS: Record<string, string[][]> = {
  download: [['python3', TWIN, 'get', `http://${GUEST_IP}:${PORT}/blob`]],
  keepalive: [
    ['python3', TWIN, 'keepalive', `http://${GUEST_IP}:${PORT}/small`, '4', '5'],
    ['python3', TWIN, 'short', `http://${GUEST_IP}:${PORT}/small`, '20'],
  ],
  mixed: [
    ['python3', TWIN, 'udp', GUEST_IP, String(PORT), '20'],
    ['ping', '-q', '-c', '5', '-i', '0.2', GUEST_IP],
    ['python3', TWIN, 'short', `http://[${GUEST_IP6}]:${PORT}/small`, '3'],
  ],
  random: [['python3', TWIN, 'get', `http://${GUEST_IP}:${PORT}/random/20000`]],
};

const [scenario, outDir] = process.argv.slice(2);
const steps = scenario === undefined ? undefined : SCENARIOS[scenario];
if (steps === undefined || outDir === undefined) {
  process.stderr.write(`usage: npx tsx scripts/record-twins.ts (${Object.keys(SCENARIOS).join('|')}) OUTDIR\n`);
  process.exit(2);
}

const lab = new ColoLab();
try {
  lab.build();
  await lab.startServers(300_000);
  await lab.startController();
  const proxy = await lab.startProxy();
  const captures = [lab.pvm, lab.svm].map((ns, i) => {
    const file = join(lab.dir, `${i === 0 ? 'primary' : 'secondary'}.pcapng`);
    const child = lab.lab.spawn(ns, 'dumpcap', ['-q', '-i', 'eth0', '-w', file]);
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    return { file, child, err: () => err };
  });
  // dumpcap says nothing on stderr with -q until it stops; give it a moment to open the ring.
  await new Promise((r) => setTimeout(r, 1000));
  for (const step of steps) {
    const [command, ...args] = step as [string, ...string[]];
    const r = await lab.lab.exec(lab.client, command, args, { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${step.join(' ')} exited ${r.code}: ${r.stderr}`);
    process.stdout.write(`client: ${step.slice(1).join(' ')}: ${r.stdout.trim().split('\n').at(-1)}\n`);
  }
  await new Promise((r) => setTimeout(r, 1000));
  for (const c of captures) c.child.kill('SIGINT');
  await waitFor('dumpcap to stop', () => captures.every((c) => c.child.exitCode !== null || c.child.signalCode !== null), 10_000);
  mkdirSync(outDir, { recursive: true });
  copyFileSync(captures[0]!.file, join(outDir, 'primary.pcapng'));
  copyFileSync(captures[1]!.file, join(outDir, 'secondary.pcapng'));
  process.stdout.write(`recorded ${scenario} into ${outDir} (checkpoint requests while recording: ${lab.checkpointRequests})\n`);
  proxy.child.kill('SIGTERM');
} finally {
  await lab.cleanup();
}
