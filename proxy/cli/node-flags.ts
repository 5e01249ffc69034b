/**
 * The Node.js flags colo-proxy runs with: the executable's shebang passes them (`env -S`, GNU
 * coreutils 8.30 or later), the `run` supervisor adds any that are missing to its capture engine,
 * and `compare` says at start-up when it runs without them (started as `node main.js` by hand,
 * say). A flag given in its `--no-` form counts as given: that is an operator's choice.
 *
 * `--single-threaded-gc`: V8 otherwise collects with helper threads (parallel scavenges,
 * concurrent marking of the old generation), which on a COLO host compete with the guests, QEMU's
 * iothreads and the kernel's socket copies for busy cores. Measured on a 2-core machine in
 * `bench/compare-vs-qemu.ts`: in one run each way, `compare` did 14 incremental-marking rounds and
 * 14 full collections (57 ms, up to 8.5 ms each) without the flag, 1 of each (3.4 ms) with it,
 * the scavenges alike (76 and 84, up to 7-10 ms); the release latency p99 at 1400-byte frames was
 * 2.4-5.8 ms without it against 1.4-2.2 ms with it (eight runs each way), frames/s unchanged or
 * better. The replay, core and run benchmarks showed no difference outside their noise.
 */

/** Flags for `node`, in the order the shebang gives them. */
export const NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

/** The flags of NODE_FLAGS that `execArgv` (a process's `process.execArgv`) lacks, in either form, `-` or `_` spelt. */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map((a) => `--${a.slice(2).replace(/_/g, '-').replace(/^no-/, '')}`));
  return NODE_FLAGS.filter((f) => !given.has(f));
}

/** The start-up notice for a process without some of NODE_FLAGS, or undefined when it has them all. */
export function nodeFlagsNotice(execArgv: readonly string[]): string | undefined {
  const missing = missingNodeFlags(execArgv);
  if (missing.length === 0) return undefined;
  return `note: node runs without ${missing.join(' ')}: garbage collection pauses are longer on a busy host (the colo-proxy executable passes it; with node by hand, add it)`;
}
