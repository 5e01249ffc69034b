// The README's replay examples print what the README shows. Each ```sh block that runs
// `colo-proxy replay` and is followed by an output block is run as written (from the repository
// root, `npm ci &&` left out), and the output block's lines, `...` aside, must appear in the
// command's output in the same order, each whole; the exit code must be the one the paragraph
// before the example states (1 where it says "exit code 1", else 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coloProxyArgv } from './support/colo-proxy-cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

interface Example {
  args: string[];
  shown: string[];
  exit: number;
}

/** The replay examples: a sh block with the command, then a plain block with what it prints. */
function examples(): Example[] {
  const found: Example[] = [];
  const block = /```sh\n([\s\S]*?)```\s*\n```\n([\s\S]*?)```/g;
  for (const m of readme.matchAll(block)) {
    const command = m[1]!.replace(/\\\n\s*/g, ' ').trim();
    const at = command.indexOf('npx colo-proxy replay ');
    if (at === -1) continue;
    const args = command.slice(at + 'npx colo-proxy '.length).split(/\s+/);
    const shown = m[2]!.split('\n').filter((l) => l.trim() !== '' && l.trim() !== '...');
    const before = readme.slice(0, m.index).trimEnd();
    const paragraph = before.slice(before.lastIndexOf('\n\n'));
    found.push({ args, shown, exit: /exit code 1/.test(paragraph) ? 1 : 0 });
  }
  return found;
}

test('README: the quick start and the one-byte example are found (this test reads the README)', () => {
  const all = examples();
  assert.ok(all.length >= 2, `${all.length} replay examples with output`);
  assert.ok(all.some((e) => e.exit === 1), 'the divergence example says it exits 1');
});

for (const e of examples()) {
  test(`README: colo-proxy ${e.args.join(' ')} prints what the README shows`, () => {
    const r = spawnSync(process.execPath, coloProxyArgv(e.args), { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, e.exit, `exit code; stderr: ${r.stderr}`);
    const lines = r.stdout.split('\n');
    let from = 0;
    for (const line of e.shown) {
      const i = lines.indexOf(line, from);
      assert.notEqual(i, -1, `README line not printed (in this order):\n${line}\n--- printed:\n${r.stdout}`);
      from = i + 1;
    }
  });
}
