// Every golden case in captures/ replayed: the outcome its case.json states (exit code,
// checkpoints by reason, every primary frame released) and the report text diffed against the
// reviewed expected-report.txt; a second replay must print the same bytes.
// After an intended change to the report, regenerate with `npm run golden:update` and review the diff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseReplayArgs } from '../../proxy/cli/replay.js';
import { formatReport, replayExitCode } from '../../proxy/replay/report.js';
import { runReplay } from '../../proxy/replay/run-replay.js';
import { REPORT_FILE, goldenCases } from '../support/golden-cases.js';

const cases = goldenCases();

test('golden: captures/ holds the generated cases and at least three recorded from real Linux stacks', () => {
  assert.ok(cases.length >= 30, `only ${cases.length} cases`);
  assert.ok(cases.filter((c) => c.name.startsWith('linux-')).length >= 3, 'recorded cases (captures/linux-*)');
});

for (const c of cases) {
  test(`golden: ${c.name}: ${c.summary}`, async () => {
    const { options } = await parseReplayArgs(c.argv);
    const { report } = await runReplay(options);
    assert.equal(replayExitCode(report), c.expect.exit, `exit code; checkpoints ${JSON.stringify(report.checkpointsByReason)}`);
    assert.deepEqual(report.checkpointsByReason, c.expect.checkpoints);
    assert.equal(report.released, c.expect.released, 'released');
    assert.equal(report.released, report.primaryFrames, 'every primary frame released exactly once');
    const text = formatReport(report);
    assert.equal(text, readFileSync(join(c.dir, REPORT_FILE), 'utf8'), `${c.dir}/${REPORT_FILE} differs (npm run golden:update, then review)`);
    const again = await runReplay(options);
    assert.equal(formatReport(again.report), text, 'a second replay prints the same bytes');
  });
}
