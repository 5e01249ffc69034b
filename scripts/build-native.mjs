#!/usr/bin/env node
// Builds colo-proxy's packet socket addon (native/packet-socket: a Node-API module in C that lets
// `run` hand frames over the MTU to the kernel to segment; see proxy/ports/packet-socket.ts) with
// the node-gyp that ships with npm, against this Node's own headers when they are installed beside
// it (as Debian's and NodeSource's packages do; otherwise node-gyp fetches them).
//   --optional  (npm's `prepare`, so `npm ci` builds it): on failure, say why and exit 0; `run`
//               then cuts such frames in JavaScript.
//   --check     (before `npm test`): exit 2, naming the fix, when it is not built.
//   (none)      (`npm run setup`): build it; exit 2 on failure.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native', 'packet-socket');
const built = join(dir, 'build', 'Release', 'packet_socket.node');
const mode = process.argv[2] ?? '';

function loads() {
  try {
    createRequire(import.meta.url)(built);
    return true;
  } catch {
    return false;
  }
}

if (mode === '--check') {
  if (loads()) process.exit(0);
  console.error("colo-proxy tests need the packet socket addon (native/packet-socket), which is not built here. Run `npm run setup`.");
  process.exit(2);
}

// npm sets npm_config_node_gyp for its scripts; otherwise use the copy inside npm next to this node.
const nodeGyp = process.env.npm_config_node_gyp ?? join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const prefix = join(dirname(process.execPath), '..');
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
const r = existsSync(nodeGyp)
  ? spawnSync(process.execPath, [nodeGyp, 'rebuild', ...nodedir, '--directory', dir], { encoding: 'utf8' })
  : { status: -1, stdout: '', stderr: `node-gyp not found at ${nodeGyp}` };
if (r.status === 0 && loads()) process.exit(0);
const why = `${r.stderr ?? ''}`.split('\n').filter((l) => /error|not found/i.test(l)).slice(0, 3).join(' | ') || `node-gyp exited ${r.status}`;
if (mode === '--optional') {
  console.error(`colo-proxy: the packet socket addon was not built (${why}); \`run\` will cut offload frames in JavaScript. A C compiler and make are needed: apt-get install build-essential, then npm run setup`);
  process.exit(0);
}
console.error(`setup: building the packet socket addon failed: ${why}`);
process.exit(2);
