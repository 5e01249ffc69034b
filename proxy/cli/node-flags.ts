/**
 * The Node.js flags colo-proxy runs with: the executable's shebang passes them (`env -S`), the
 * `run` supervisor adds any that are missing to its capture engine, and `compare` and `run` say
 * at start-up when they run without them (started as `node main.js` by hand, say).
 *
 * `--single-threaded-gc`: V8 otherwise scavenges the young generation with helper threads and
 * marks the old one concurrently. A COLO host's cores are busy (the guests, QEMU's iothreads, the
 * kernel's socket copies), and a parallel scavenge whose helper is not scheduled stalls the main
 * thread until it is: measured on a 2-core machine in `bench/compare-vs-qemu.ts`, young-generation
 * pauses of 1-7.5 ms on an idle heap, and the release latency p99 at 1400-byte frames 2.4-5.8 ms
 * without the flag against 1.4-2.2 ms with it (eight runs each way), frames/s unchanged or better.
 * The replay benchmark ran as fast or faster with it, the comparator core alone the same.
 */

/** Flags for `node`, in the order the shebang gives them. */
export const NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

/** The flags of NODE_FLAGS that `execArgv` (a process's `process.execArgv`) lacks. */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  return NODE_FLAGS.filter((f) => !execArgv.includes(f));
}

/** The start-up notice for a process without some of NODE_FLAGS, or undefined when it has them all. */
export function nodeFlagsNotice(execArgv: readonly string[]): string | undefined {
  const missing = missingNodeFlags(execArgv);
  if (missing.length === 0) return undefined;
  return `note: node runs without ${missing.join(' ')}: garbage collection pauses are longer on a busy host (the colo-proxy executable passes it; with node by hand, add it)`;
}
