/**
 * Command-line flags for one subcommand: declared once as a table, parsed with Node's own
 * `util.parseArgs`, then checked here so that every mistake becomes a `UsageError` whose one-line
 * message names the flag and what it accepts. Flags are long-form only (`--name value` or
 * `--name=value`); `--` ends flags. A value that looks like another flag (`--limit --json`) is
 * reported as missing rather than taken literally. A flag with a value may be given once: a
 * second one is refused rather than silently winning (a boolean may be repeated).
 */

import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';

export type FlagSpec =
  | { type: 'boolean'; help: string }
  | { type: 'string'; help: string; metavar: string; choices?: readonly string[]; default?: string }
  | { type: 'integer'; help: string; metavar: string; min: number; max: number; default?: number };

export type FlagTable = Record<string, FlagSpec>;

/** The parsed value type of each flag: booleans are always present, others when given or defaulted. */
export type FlagValues<T extends FlagTable> = {
  [K in keyof T]: T[K] extends { type: 'boolean' }
    ? boolean
    : T[K] extends { type: 'integer'; default: number }
      ? number
      : T[K] extends { type: 'integer' }
        ? number | undefined
        : T[K] extends { default: string }
          ? string
          : string | undefined;
};

export interface ParsedCommandLine<T extends FlagTable> {
  flags: FlagValues<T>;
  positionals: string[];
}

function describe(spec: FlagSpec): string {
  if (spec.type === 'integer') return `an integer from ${spec.min} to ${spec.max}`;
  if (spec.type === 'string' && spec.choices) return `one of ${spec.choices.join(', ')}`;
  return 'a value';
}

/** Parses `argv` against `table`; throws `UsageError` naming `command` and the offending flag. */
export function parseFlags<T extends FlagTable>(command: string, table: T, argv: readonly string[]): ParsedCommandLine<T> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [name, spec] of Object.entries(table)) options[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string' };
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });

  const known = Object.keys(table).map((n) => `--${n}`).join(', ');
  const values: Record<string, unknown> = {};
  /** Flags with a value given so far, and the value as given. */
  const given = new Map<string, string>();
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== 'option') continue;
    // Own properties only: `--toString` or `--__proto__` must not find Object.prototype's.
    const spec = Object.hasOwn(table, token.name) ? table[token.name] : undefined;
    if (spec === undefined || token.rawName.startsWith('-') && !token.rawName.startsWith('--')) {
      throw new UsageError(`${command}: unknown flag ${token.rawName}${known ? ` (accepted: ${known})` : ''}`);
    }
    const flag = `--${token.name}`;
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${command}: ${flag} takes no value (got "${token.value}")`);
      values[token.name] = true;
      continue;
    }
    const raw = token.value;
    if (raw === undefined || (!token.inlineValue && raw.startsWith('--'))) {
      throw new UsageError(`${command}: ${flag} needs ${spec.metavar}, ${describe(spec)}`);
    }
    if (given.has(token.name)) throw new UsageError(`${command}: ${flag} given twice ("${given.get(token.name)}", then "${raw}"); give it once`);
    given.set(token.name, raw);
    values[token.name] = convert(command, flag, spec, raw);
  }
  for (const [name, spec] of Object.entries(table)) {
    if (values[name] !== undefined) continue;
    values[name] = spec.type === 'boolean' ? false : spec.default;
  }
  return { flags: values as FlagValues<T>, positionals };
}

function convert(command: string, flag: string, spec: FlagSpec, raw: string): string | number {
  if (spec.type === 'integer') {
    const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) {
      throw new UsageError(`${command}: ${flag} must be ${describe(spec)} (got "${raw}")`);
    }
    return n;
  }
  if (spec.type === 'string' && spec.choices && !spec.choices.includes(raw)) {
    throw new UsageError(`${command}: ${flag} must be ${describe(spec)} (got "${raw}")`);
  }
  return raw;
}

/** Formats the flag table as aligned help lines. */
export function formatFlagHelp(table: FlagTable): string {
  const rows = Object.entries(table).map(([name, spec]) => {
    const left = spec.type === 'boolean' ? `--${name}` : `--${name} ${spec.metavar}`;
    const dflt = spec.type !== 'boolean' && spec.default !== undefined ? ` (default ${spec.default})` : '';
    return [left, spec.help + dflt] as const;
  });
  const width = Math.max(0, ...rows.map(([l]) => l.length));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`).join('\n');
}
