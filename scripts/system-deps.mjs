#!/usr/bin/env node
// The Debian packages colo-proxy's test suite needs, checked (--check, run before `npm test`) or
// installed (--install, `npm run setup`). The suite never skips a test for a missing tool: this
// check stops it first, naming the exact apt-get line, and `npm run setup` runs that line when
// the user is root.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// tool on PATH -> Debian package that provides it
const NEEDED = {
  tshark: 'tshark',
  editcap: 'wireshark-common',
  capinfos: 'wireshark-common',
  text2pcap: 'wireshark-common',
  // QEMU's own colo-compare, the reference peer of test/proxy/qemu-reference.test.ts
  'qemu-system-x86_64': 'qemu-system-x86',
  // `run` and `bridge` end-to-end tests (test/proxy/run/): namespaces, veths, offloads, real clients
  ip: 'iproute2',
  ethtool: 'ethtool',
  curl: 'curl',
  ping: 'iputils-ping',
  python3: 'python3',
  // node-gyp compiles the optional `cap` package (C++) and the packet socket addon (C)
  'g++': 'g++',
  make: 'make',
};

// header or library file -> Debian package that provides it (for packages that put no tool on PATH)
const NEEDED_FILES = {
  // libpcap's headers: the optional `cap` package compiles against them (live capture for `run`)
  '/usr/include/pcap/pcap.h': 'libpcap-dev',
};

function onPath(tool) {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

function missingPackages() {
  const pkgs = new Set();
  for (const [tool, pkg] of Object.entries(NEEDED)) if (!onPath(tool)) pkgs.add(pkg);
  for (const [file, pkg] of Object.entries(NEEDED_FILES)) if (!existsSync(file)) pkgs.add(pkg);
  return [...pkgs].sort();
}

const mode = process.argv[2];
if (mode !== '--check' && mode !== '--install') {
  console.error('system-deps: usage: system-deps.mjs --check | --install');
  process.exit(2);
}
const missing = missingPackages();
if (missing.length === 0) process.exit(ensureCap(mode));

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
process.exit(ensureCap(mode));

// `cap` (libpcap binding, live capture for `run` and `bridge`) is an optional dependency: on a
// machine without libpcap's headers `npm ci` fails to compile it and leaves it out, so the
// package still installs. Once libpcap-dev is there, --install compiles it (the version in
// package-lock.json); --check stops the test run if it is missing.
function ensureCap(how) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const loads = () => spawnSync(process.execPath, ['-e', "require('cap')"], { cwd: root, stdio: 'ignore' }).status === 0;
  if (loads()) return 0;
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const version = lock.packages?.['node_modules/cap']?.version ?? 'latest';
  const line = `npm install --no-save --no-audit --no-fund cap@${version}`;
  if (how === '--check') {
    console.error(`colo-proxy tests need the optional package cap (libpcap binding), which is not built here.`);
    console.error(`Run \`npm run setup\` (it installs libpcap-dev and then runs: ${line})`);
    return 2;
  }
  console.error(`setup: compiling the optional package cap against libpcap: ${line}`);
  const r = spawnSync('npm', line.split(' ').slice(1), { cwd: root, stdio: 'inherit' });
  if (r.status !== 0 || !loads()) {
    console.error(`setup: cap still does not load after \`${line}\``);
    return 2;
  }
  return 0;
}
