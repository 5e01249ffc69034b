#!/usr/bin/env node
// Runs every test/**/*.test.ts file with Node's own test runner, TypeScript loaded by tsx.
// Node 20's --test does not expand globs, so the files are listed here. Extra arguments are
// passed to the runner (for example `npm test -- --test-name-pattern=pcapng`), and a path
// argument ending in .ts narrows the run to those files.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function listTests(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...listTests(path));
    else if (name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const args = process.argv.slice(2);
const chosen = args.filter((a) => a.endsWith('.ts'));
const passThrough = args.filter((a) => !a.endsWith('.ts'));
const files = chosen.length > 0 ? chosen : listTests('test');
if (files.length === 0) {
  console.error('run-tests: no test files found under test/');
  process.exit(2);
}
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...passThrough, ...files], { stdio: 'inherit' });
process.exit(run.status ?? 1);
