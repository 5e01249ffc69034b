#!/usr/bin/env node
// The Debian packages colo-proxy's test suite needs, checked (--check, run before `npm test`) or
// installed (--install, `npm run setup`). The suite never skips a test for a missing tool: this
// check stops it first, naming the exact apt-get line, and `npm run setup` runs that line when
// the user is root.
import { spawnSync } from 'node:child_process';

// tool on PATH -> Debian package that provides it
const NEEDED = {
  tshark: 'tshark',
  editcap: 'wireshark-common',
  capinfos: 'wireshark-common',
  text2pcap: 'wireshark-common',
  // QEMU's own colo-compare, the reference peer of test/proxy/qemu-reference.test.ts
  'qemu-system-x86_64': 'qemu-system-x86',
};

function onPath(tool) {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

function missingPackages() {
  const pkgs = new Set();
  for (const [tool, pkg] of Object.entries(NEEDED)) if (!onPath(tool)) pkgs.add(pkg);
  return [...pkgs].sort();
}

const mode = process.argv[2];
if (mode !== '--check' && mode !== '--install') {
  console.error('system-deps: usage: system-deps.mjs --check | --install');
  process.exit(2);
}
const missing = missingPackages();
if (missing.length === 0) process.exit(0);

const line = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (mode === '--check' || !isRoot || !onPath('apt-get')) {
  console.error(`colo-proxy tests need Debian packages that are not installed: ${missing.join(', ')}.`);
  console.error(`Install them with: ${isRoot ? '' : 'sudo '}apt-get update && ${isRoot ? '' : 'sudo '}${line}`);
  if (mode === '--check') console.error('(or run `npm run setup` as root, which does exactly that)');
  process.exit(2);
}

console.error(`setup: installing ${missing.join(', ')} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...missing]]) {
  const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`setup: apt-get ${args.join(' ')} failed (exit ${r.status})`);
    process.exit(2);
  }
}
const still = missingPackages();
if (still.length > 0) {
  console.error(`setup: still missing after install: ${still.join(', ')}`);
  process.exit(2);
}
