/**
 * `npm run bench`: every benchmark, one after another in one process, each reporting its figures
 * next to a baseline measured in the same run (so the ratios, not the absolute numbers, are what
 * carry from machine to machine). Not part of `npm test`: timings never decide a test.
 * `npm run bench -- parse` runs only the benchmarks whose name contains "parse". What they measure
 * is the code users run, the build in dist/ (`npm run bench` builds it first; see shipped-code.mjs).
 */

import type { BenchResult } from './result.js';
import { benchParse } from './parse.js';
import { benchPcapRead } from './pcap-read.js';
import { benchTcpStream } from './tcp-stream.js';
import { benchComparator } from './comparator.js';
import { benchQemuFrames } from './qemu-frames.js';
import { benchCompareVsQemu } from './compare-vs-qemu.js';
import { benchReplay } from './replay.js';
import { benchRunVsBridge } from './run-vs-bridge.js';

const suites: [string, () => Promise<BenchResult[]>][] = [
  ['parse', benchParse],
  ['pcap-read', benchPcapRead],
  ['tcp-stream', benchTcpStream],
  ['comparator', benchComparator],
  ['qemu-frames', benchQemuFrames],
  ['compare-vs-qemu', benchCompareVsQemu],
  ['replay', benchReplay],
  ['run-vs-bridge', benchRunVsBridge],
];

function format(r: BenchResult): string {
  const value = r.value >= 100 ? Math.round(r.value).toLocaleString('en-US') : r.value.toFixed(2);
  const ratio = r.ratio !== undefined ? `  ${r.ratio.toFixed(2)}x ${r.baseline ?? 'baseline'}` : '';
  return `  ${r.name.padEnd(44)} ${value.padStart(14)} ${r.unit.padEnd(9)}${ratio}`;
}

const only = process.argv[2];
console.log(`colo-proxy bench: node ${process.version}, ${process.platform}/${process.arch}`);
for (const [name, run] of suites) {
  if (only && !name.includes(only)) continue;
  console.log(`\n${name}`);
  for (const r of await run()) console.log(format(r));
}
