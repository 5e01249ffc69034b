/**
 * Writes the replay benchmark's synthetic twin captures (bench/replay.ts: interleaved TCP
 * connections, mixed segment sizes, the secondary's copy a little later) for use outside the
 * benchmark, such as CI's check that a replay large enough for the reader thread works from the
 * built CLI.
 *
 *   npx tsx scripts/make-bench-twins.ts DIR FRAMES_PER_SIDE    # DIR/primary-N.pcap, DIR/secondary-N.pcap
 */

import { mkdir } from 'node:fs/promises';
import { writeTwins } from '../bench/replay.js';

const [dir, count] = process.argv.slice(2);
const frames = Number(count);
if (dir === undefined || !Number.isInteger(frames) || frames < 1) {
  console.error('usage: make-bench-twins.ts DIR FRAMES_PER_SIDE');
  process.exit(2);
}
await mkdir(dir, { recursive: true });
const { primary, secondary, bytes } = await writeTwins(dir, frames);
console.log(`${primary}\n${secondary}\n${bytes} bytes`);
