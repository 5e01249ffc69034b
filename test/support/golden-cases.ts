/**
 * The golden replay cases in captures/: one folder each with primary.pcapng, secondary.pcapng
 * (and client.pcapng when the client's traffic was captured apart), case.json (the replay flags
 * and the expected outcome, stated independently of the report text) and expected-report.txt
 * (the report, as `colo-proxy replay` prints it, reviewed by a person when it changes).
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const CAPTURES_DIR = 'captures';
export const REPORT_FILE = 'expected-report.txt';

export interface GoldenCase {
  name: string;
  dir: string;
  summary: string;
  /** The full `colo-proxy replay` argument list, paths relative to the repository root. */
  argv: string[];
  expect: { exit: 0 | 1; checkpoints: Record<string, number>; released: number };
}

interface CaseFile {
  summary: string;
  args?: string[];
  expect: GoldenCase['expect'];
}

/** Every case folder, sorted by name. */
export function goldenCases(): GoldenCase[] {
  return readdirSync(CAPTURES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(CAPTURES_DIR, d.name, 'case.json')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const dir = join(CAPTURES_DIR, name);
      const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as CaseFile;
      const argv = ['--primary', join(dir, 'primary.pcapng'), '--secondary', join(dir, 'secondary.pcapng')];
      if (existsSync(join(dir, 'client.pcapng'))) argv.push('--client', join(dir, 'client.pcapng'));
      return { name, dir, summary: c.summary, argv: [...argv, ...(c.args ?? [])], expect: c.expect };
    });
}
