/**
 * `npm run bench`: every benchmark, each reporting its figures next to a baseline measured in the
 * same run (so the ratios, not the absolute numbers, are what carry from machine to machine). Not
 * part of `npm test`: timings never decide a test. `npm run bench -- parse` runs only the
 * benchmarks whose name contains "parse". What they measure is the code users run, the build in
 * dist/ (`npm run bench` builds it first; see shipped-code.mjs).
 *
 * Each suite runs in a process of its own (this command line again, with the node flags it was
 * given), which loads that suite's modules only: in one process with every suite loaded, the
 * comparator's 64-byte rate read 7-12 % lower than with its own module alone (three alternating
 * pairs, 2026-11-28), and a suite ran on whatever heap the suites before it had left.
 */

import { spawnSync } from 'node:child_process';
import type { BenchResult } from './result.js';

const suites: [string, () => Promise<BenchResult[]>][] = [
  ['parse', async () => (await import('./parse.js')).benchParse()],
  ['pcap-read', async () => (await import('./pcap-read.js')).benchPcapRead()],
  ['tcp-stream', async () => (await import('./tcp-stream.js')).benchTcpStream()],
  ['comparator', async () => (await import('./comparator.js')).benchComparator()],
  ['qemu-frames', async () => (await import('./qemu-frames.js')).benchQemuFrames()],
  ['compare-vs-qemu', async () => (await import('./compare-vs-qemu.js')).benchCompareVsQemu()],
  ['replay', async () => (await import('./replay.js')).benchReplay()],
  ['run-vs-bridge', async () => (await import('./run-vs-bridge.js')).benchRunVsBridge()],
];

/** Set in a suite's own process: the suite it runs. */
const SUITE_ENV = 'COLO_BENCH_SUITE';

function format(r: BenchResult): string {
  const value = r.value >= 100 ? Math.round(r.value).toLocaleString('en-US') : r.value.toFixed(2);
  const ratio = r.ratio !== undefined ? `  ${r.ratio.toFixed(2)}x ${r.baseline ?? 'baseline'}` : '';
  return `  ${r.name.padEnd(44)} ${value.padStart(14)} ${r.unit.padEnd(9)}${ratio}`;
}

const suite = suites.find(([name]) => name === process.env[SUITE_ENV]);
if (suite !== undefined) {
  for (const r of await suite[1]()) console.log(format(r));
} else {
  const only = process.argv[2];
  console.log(`colo-proxy bench: node ${process.version}, ${process.platform}/${process.arch}`);
  for (const [name] of suites) {
    if (only && !name.includes(only)) continue;
    console.log(`\n${name}`);
    const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!], { stdio: 'inherit', env: { ...process.env, [SUITE_ENV]: name } });
    if (child.status !== 0) {
      console.error(`bench: ${name} failed (${child.signal ?? `exit code ${child.status}`})`);
      process.exitCode = 1;
    }
  }
}
