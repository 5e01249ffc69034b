// The Node flags colo-proxy runs with (proxy/cli/node-flags.ts): the executable's shebang passes
// exactly NODE_FLAGS, `npm run bench` runs with them, and `compare` started without them says so
// at start-up, and only then.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAIN, coloProxyArgv } from '../../support/colo-proxy-cli.js';
import { NODE_FLAGS, missingNodeFlags, nodeFlagsNotice } from '../../../proxy/cli/node-flags.js';
import { waitFor } from '../../support/socket-peer.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-proxy-node-flags-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the executable passes NODE_FLAGS to node through its shebang', () => {
  const first = readFileSync(MAIN, 'utf8').split('\n', 1)[0];
  assert.equal(first, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
});

test('missing flags are named; none missing, no notice', () => {
  assert.ok(NODE_FLAGS.length > 0);
  assert.deepEqual(missingNodeFlags([]), [...NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags(['--expose-gc', ...NODE_FLAGS]), []);
  assert.deepEqual(missingNodeFlags(NODE_FLAGS.map((f) => `--no-${f.slice(2)}`)), [], 'an operator who turned a flag off keeps it off');
  assert.deepEqual(missingNodeFlags(NODE_FLAGS.map((f) => f.replace(/-/g, '_').replace(/^__/, '--'))), [], 'V8 spells flags with _ too');
  for (const flag of NODE_FLAGS) assert.ok(nodeFlagsNotice(['--expose-gc'])!.includes(flag));
  assert.equal(nodeFlagsNotice([...NODE_FLAGS]), undefined);
});

/** The start-up log of `colo-proxy compare` started as `node ...argv` plus its endpoints. */
async function compareStartLog(tag: string, argv: string[]): Promise<string> {
  const ep = (name: string): string => `unix:${join(dir, `${tag}-${name}`)},server`;
  const child = spawn(process.execPath, [...argv, '--primary-in', ep('p'), '--secondary-in', ep('s'), '--outdev', ep('o')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  try {
    // The notice comes before the start line, on the same pipe.
    await waitFor('compare to start', () => log.includes('compare: primary-in') || child.exitCode !== null, 20_000);
  } finally {
    child.kill('SIGTERM');
  }
  return log;
}

test('compare started without the flags says which are missing; with them it does not', async () => {
  const [without, withFlags] = await Promise.all([
    compareStartLog('bare', ['--import', 'tsx', MAIN, 'compare']),
    compareStartLog('flags', coloProxyArgv(['compare'])),
  ]);
  assert.match(without, /compare: note: node runs without --single-threaded-gc/);
  assert.match(withFlags, /compare: primary-in/);
  assert.doesNotMatch(withFlags, /note: node runs without/);
});

test('npm run bench runs the in-process benchmarks (replay, the core) with the same flags', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  const bench = pkg.scripts['bench']!.split(' ');
  for (const flag of NODE_FLAGS) assert.ok(bench.includes(flag), `bench script lacks ${flag}: ${pkg.scripts['bench']}`);
});
