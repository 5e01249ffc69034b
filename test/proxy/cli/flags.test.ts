import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFlags, formatFlagHelp, type FlagTable } from '../../../proxy/cli/flags.js';
import { UsageError } from '../../../proxy/cli/errors.js';

const table = {
  limit: { type: 'integer', help: 'stop after N frames', metavar: 'N', min: 1, max: 1000 },
  timeout: { type: 'integer', help: 'ms', metavar: 'MS', min: 0, max: 60000, default: 3000 },
  time: { type: 'string', help: 'time format', metavar: 'FMT', choices: ['relative', 'absolute'], default: 'relative' },
  json: { type: 'boolean', help: 'print JSON' },
} satisfies FlagTable;

function usageMessage(argv: string[]): string {
  try {
    parseFlags('inspect', table, argv);
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected UsageError, got ${String(err)}`);
    return err.message;
  }
  assert.fail(`expected ${JSON.stringify(argv)} to be rejected`);
}

test('flags: values, defaults and positionals', () => {
  const { flags, positionals } = parseFlags('inspect', table, ['a.pcap', '--limit', '5', '--time=absolute', '--json', '--', '--not-a-flag']);
  assert.deepEqual(flags, { limit: 5, timeout: 3000, time: 'absolute', json: true });
  assert.deepEqual(positionals, ['a.pcap', '--not-a-flag']);
});

test('flags: a boolean may be repeated', () => {
  assert.equal(parseFlags('inspect', table, ['--json', '--json']).flags.json, true);
});

test('flags: absent optional values stay undefined and booleans false', () => {
  const { flags } = parseFlags('inspect', table, []);
  assert.deepEqual(flags, { limit: undefined, timeout: 3000, time: 'relative', json: false });
});

test('flags: each mistake is one line naming the flag and what it accepts', () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /^inspect: unknown flag --bogus \(accepted: --limit, --timeout, --time, --json\)$/],
    [['-x'], /^inspect: unknown flag -x /],
    // Names of Object.prototype's members are flags like any other: unknown.
    [['--toString=1'], /^inspect: unknown flag --toString /],
    [['--__proto__=x'], /^inspect: unknown flag --__proto__ /],
    [['--constructor'], /^inspect: unknown flag --constructor /],
    [['--hasOwnProperty', 'x'], /^inspect: unknown flag --hasOwnProperty /],
    [['--limit'], /^inspect: --limit needs N, an integer from 1 to 1000$/],
    [['--limit', '--json'], /^inspect: --limit needs N, an integer from 1 to 1000$/],
    [['--limit', 'ten'], /^inspect: --limit must be an integer from 1 to 1000 \(got "ten"\)$/],
    [['--limit', '0'], /^inspect: --limit must be an integer from 1 to 1000 \(got "0"\)$/],
    [['--limit', '1e3'], /must be an integer/],
    [['--limit', '5.5'], /must be an integer/],
    [['--timeout=99999999999999999999'], /^inspect: --timeout must be an integer from 0 to 60000/],
    [['--time', 'utc'], /^inspect: --time must be one of relative, absolute \(got "utc"\)$/],
    [['--json=yes'], /^inspect: --json takes no value \(got "yes"\)$/],
    [['--limit', '5', '--limit', '6'], /^inspect: --limit given twice \("5", then "6"\); give it once$/],
    [['--time=relative', '--time', 'relative'], /^inspect: --time given twice \("relative", then "relative"\); give it once$/],
  ];
  for (const [argv, re] of cases) {
    const msg = usageMessage(argv);
    assert.match(msg, re, `for ${JSON.stringify(argv)}`);
    assert.ok(!msg.includes('\n'), 'one line');
  }
});

test('flags: help lists every flag with its default', () => {
  const help = formatFlagHelp(table);
  assert.match(help, /--limit N\s+stop after N frames\n/);
  assert.match(help, /--timeout MS\s+ms \(default 3000\)/);
  assert.match(help, /--json\s+print JSON$/);
});
