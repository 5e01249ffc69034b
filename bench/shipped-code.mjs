/**
 * Makes a bench measure the code users run. `colo-proxy` and `colo-proxy/compare` are the tsc
 * build in dist/, while the benches are TypeScript run through tsx, which would load the sources
 * through its own esbuild transform. That transform is not the shipped code: it keeps function
 * and class names (esbuild's `keepNames`, always on in tsx), wrapping every class and function in
 * a naming helper. In a one-form harness of 64-byte lockstep pairs the core ran 10-15 % slower
 * that way than as tsc's output (alternating runs, 2026-11-27); in the comparator and
 * compare-vs-qemu benches the two measured within this machine's noise of each other. Either
 * way a bench should time what ships, not a transform of it that only development uses.
 *
 * Imported after tsx (`node --import tsx --import ./bench/shipped-code.mjs`), this registers a
 * resolve hook that sends every module of `compare/` and `proxy/` to its build in `dist/`; the
 * benches' own code and test/support still run from source. A child process started through
 * test/support/colo-proxy-cli.ts follows the same resolution, so it runs dist/proxy/cli/main.js
 * too. A source newer than its build stops the bench: run `npm run build` (`npm run bench` does).
 */

import { register } from 'node:module';

register('./shipped-code-hooks.mjs', import.meta.url);
