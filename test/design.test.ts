// Guards the one architectural property everything else relies on: compare/ is a pure,
// deterministic core. It imports nothing from Node or from proxy/, reads no clock, sets no timer,
// logs nothing and draws no random numbers; proxy/ reaches the core only through compare/index.ts.
// The one package the core may use is lru-cache, which without TTLs reads no clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

function codeLines(path: string): { line: number; text: string }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((text, i) => ({ line: i + 1, text }))
    .filter(({ text }) => !/^\s*(\/\/|\*|\/\*)/.test(text));
}

const IMPORT = /\bfrom\s+['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]|\brequire\s*\(\s*['"]([^'"]+)['"]/g;

const FORBIDDEN_IN_CORE: [RegExp, string][] = [
  [/\bDate\.now\s*\(|\bnew Date\s*\(/, 'reads the wall clock'],
  [/\bperformance\.now\s*\(|\bprocess\./, 'reads the clock or the process'],
  [/\bset(Timeout|Interval|Immediate)\s*\(/, 'sets a timer'],
  [/\bconsole\./, 'logs'],
  [/\bMath\.random\s*\(/, 'draws random numbers'],
];

const PURE_PACKAGES = new Set(['lru-cache']);

test('compare/ imports only compare/ modules (and lru-cache)', () => {
  const offences: string[] = [];
  for (const file of tsFiles('compare')) {
    for (const { line, text } of codeLines(file)) {
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2] ?? m[3]!;
        const target = resolve(dirname(file), spec);
        if (PURE_PACKAGES.has(spec)) continue;
        if (!spec.startsWith('.') || relative(resolve('compare'), target).startsWith('..')) {
          offences.push(`${file}:${line} imports ${spec}`);
        }
      }
    }
  }
  assert.deepEqual(offences, []);
});

test('compare/ has no clock, timer, console or randomness', () => {
  const offences: string[] = [];
  for (const file of tsFiles('compare')) {
    for (const { line, text } of codeLines(file)) {
      for (const [re, why] of FORBIDDEN_IN_CORE) if (re.test(text)) offences.push(`${file}:${line} ${why}: ${text.trim()}`);
    }
  }
  assert.deepEqual(offences, []);
});

test('proxy/ reaches the core only through compare/index.ts', () => {
  const offences: string[] = [];
  for (const file of tsFiles('proxy')) {
    for (const { line, text } of codeLines(file)) {
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2] ?? m[3]!;
        if (!spec.startsWith('.')) continue;
        const target = relative(resolve('.'), resolve(dirname(file), spec));
        if (target.startsWith('compare') && target !== join('compare', 'index.js')) offences.push(`${file}:${line} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(offences, []);
});

test('the guards above see the files they guard', () => {
  // A scan that finds nothing would pass vacuously; make sure both trees are really read.
  assert.ok(tsFiles('compare').some((f) => f.endsWith(join('wire', 'ethernet.ts'))));
  assert.ok(tsFiles('proxy').some((f) => f.endsWith(join('cli', 'main.ts'))));
});
