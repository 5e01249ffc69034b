/**
 * Rewrites captures/<case>/expected-report.txt for every golden case with what replay prints
 * now. Run after an intended change to the comparator or the report, then review `git diff
 * captures/`: the golden test fails until the reports are updated, and the diff is the review.
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseReplayArgs } from '../proxy/cli/replay.js';
import { formatReport } from '../proxy/replay/report.js';
import { runReplay } from '../proxy/replay/run-replay.js';
import { REPORT_FILE, goldenCases } from '../test/support/golden-cases.js';

for (const c of goldenCases()) {
  const { options } = await parseReplayArgs(c.argv);
  const { report } = await runReplay(options);
  writeFileSync(join(c.dir, REPORT_FILE), formatReport(report));
  process.stdout.write(`${c.name}: ${report.checkpointCount} checkpoints, ${report.released}/${report.primaryFrames} released\n`);
}
