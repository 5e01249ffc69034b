/**
 * The replay report: one plain object (what `--json` prints) and its readable text form (the
 * default). Both are deterministic — no wall-clock times, no host names, maps sorted by key — so
 * a second replay of the same files prints the same bytes and golden reports can be diffed.
 * Times are virtual: milliseconds since the first frame of all inputs.
 */

import type { Counters } from '../../compare/index.js';
import type { EpisodeRecord, MismatchRecord, ReplaySession } from './session.js';
import type { SkippedFrames } from './route.js';

export interface ReportInputs {
  primary: string;
  secondary: string;
  client: string | undefined;
  mode: string;
  checkpointMs: number;
  compareTimeoutMs: number;
  scanIntervalMs: number;
  maxQueueFrames: number;
  compareHeaders: readonly string[];
}

export interface ReplayReport {
  primary: string;
  secondary: string;
  client: string | null;
  mode: string;
  settings: { checkpointMs: number; compareTimeoutMs: number; scanIntervalMs: number; maxQueueFrames: number; compareHeaders: string[] };
  guest: string | null;
  virtualMs: number;
  primaryFrames: number;
  secondaryFrames: number;
  clientFrames: number;
  skipped: SkippedFrames;
  released: number;
  releasedVerified: number;
  releasedAtCheckpoints: number;
  unreleased: number;
  releaseDelayMs: { p50: number; p90: number; p99: number; max: number } | null;
  comparedBytes: number;
  /** Checkpoint episodes, all counted. */
  checkpointCount: number;
  /** The first MAX_RECORDS of them. */
  checkpoints: EpisodeRecord[];
  checkpointsOmitted: number;
  checkpointsByReason: Record<string, number>;
  mismatchCount: number;
  mismatches: MismatchRecord[];
  mismatchesOmitted: number;
  timeBackwards: number;
  warnings: string[];
  counters: Record<string, number | Record<string, number>>;
}

function sorted(map: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

function countersObject(c: Counters): Record<string, number | Record<string, number>> {
  return {
    clientFrames: c.clientFrames,
    primaryFrames: c.primaryFrames,
    secondaryFrames: c.secondaryFrames,
    releasedFrames: c.releasedFrames,
    comparedBytes: c.comparedBytes,
    unverifiedBytes: c.unverifiedBytes,
    checkpointsDone: c.checkpointsDone,
    checkpointsCoalesced: c.checkpointsCoalesced,
    connectionsOpened: c.connectionsOpened,
    connectionsClosed: c.connectionsClosed,
    mismatches: sorted(c.mismatches),
    checkpoints: sorted(c.checkpoints),
    events: sorted(c.events),
  };
}

/** Rounds virtual milliseconds to the microsecond, the finest a classic pcap records. */
function ms(v: number): number {
  return Math.round(v * 1000) / 1000;
}

export function buildReport(inputs: ReportInputs, session: ReplaySession, guest: string, skipped: SkippedFrames, warnings: readonly string[]): ReplayReport {
  const c = session.comparator.counters;
  const d = session.delays;
  // HDR percentiles are bucket tops; clamp to the exact maximum so p99 never exceeds max.
  const at = (p: number): number => Math.min(d.getValueAtPercentile(p), d.maxValue) / 1000;
  return {
    primary: inputs.primary,
    secondary: inputs.secondary,
    client: inputs.client ?? null,
    mode: inputs.mode,
    settings: {
      checkpointMs: inputs.checkpointMs, compareTimeoutMs: inputs.compareTimeoutMs, scanIntervalMs: inputs.scanIntervalMs,
      maxQueueFrames: inputs.maxQueueFrames, compareHeaders: [...inputs.compareHeaders],
    },
    guest: guest === '' ? null : guest,
    virtualMs: ms(session.nowMs),
    primaryFrames: c.primaryFrames,
    secondaryFrames: c.secondaryFrames,
    clientFrames: c.clientFrames,
    skipped: { ...skipped },
    released: session.released,
    releasedVerified: session.released - session.releasedAtCheckpoints,
    releasedAtCheckpoints: session.releasedAtCheckpoints,
    unreleased: session.unreleased,
    releaseDelayMs: d.totalCount === 0 ? null : {
      p50: at(50), p90: at(90), p99: at(99), max: d.maxValue / 1000,
    },
    comparedBytes: c.comparedBytes,
    checkpointCount: session.episodeCount,
    checkpoints: session.episodes.map((e) => ({ ...e, requestedAtMs: ms(e.requestedAtMs), doneAtMs: ms(e.doneAtMs) })),
    checkpointsOmitted: session.episodeCount - session.episodes.length,
    checkpointsByReason: sorted(c.checkpoints),
    mismatchCount: session.mismatchCount,
    mismatches: session.mismatches.map((m) => ({ ...m, atMs: ms(m.atMs) })),
    mismatchesOmitted: session.mismatchCount - session.mismatches.length,
    timeBackwards: session.timeBackwards,
    warnings: [...warnings],
    counters: countersObject(c),
  };
}

/** Exit code of a replay: 0 when the outputs never diverged, 1 when a checkpoint was needed. */
export function replayExitCode(r: ReplayReport): number {
  return r.checkpointCount === 0 && r.unreleased === 0 ? 0 : 1;
}

/** The released frames no checkpoint flushed: verified, unless a stream was picked up mid-way (its bytes before the other side's first are not). */
function releasedByComparison(r: ReplayReport): string {
  const unverified = r.counters.unverifiedBytes as number;
  return unverified === 0
    ? `${r.releasedVerified} verified`
    : `${r.releasedVerified} by the comparator (${unverified} bytes unverified: picked up mid-stream)`;
}

function seconds(msValue: number): string {
  return `${(msValue / 1000).toFixed(6)} s`;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record);
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k} ${v}`).join(', ');
}

/** The readable report (ends with a newline). */
export function formatReport(r: ReplayReport): string {
  const out: string[] = [];
  out.push(`replay: primary ${r.primary}, secondary ${r.secondary}${r.client ? `, client ${r.client}` : ''}`);
  out.push(
    `settings: mode ${r.mode}, checkpoint ${r.settings.checkpointMs} ms, compare timeout ${r.settings.compareTimeoutMs} ms, ` +
    `scan every ${r.settings.scanIntervalMs} ms, queue ${r.settings.maxQueueFrames} frames` +
    (r.settings.compareHeaders.length > 0 ? `, headers ${r.settings.compareHeaders.join(',')}` : ''),
  );
  if (r.guest) out.push(`guest: ${r.guest}`);
  out.push('');
  const verdict = r.checkpointCount === 0
    ? 'identical: no checkpoint needed'
    : `diverged: ${r.checkpointCount} checkpoint${r.checkpointCount === 1 ? '' : 's'} (${counts(r.checkpointsByReason)})`;
  const rows: string[][] = [
    ['outcome', verdict],
    ['frames', `primary ${r.primaryFrames}, secondary ${r.secondaryFrames}, client ${r.clientFrames}`],
    ['released', `${r.released}: ${releasedByComparison(r)}, ${r.releasedAtCheckpoints} flushed by checkpoints`],
    ['delay', r.releaseDelayMs
      ? `p50 ${r.releaseDelayMs.p50.toFixed(3)} ms, p90 ${r.releaseDelayMs.p90.toFixed(3)} ms, p99 ${r.releaseDelayMs.p99.toFixed(3)} ms, max ${r.releaseDelayMs.max.toFixed(3)} ms (arrival to release)`
      : 'none released'],
    ['compared', `${r.comparedBytes} payload bytes`],
    ['mismatches', `${r.mismatchCount} (${counts(r.counters.mismatches as Record<string, number>)})`],
    ['events', counts(r.counters.events as Record<string, number>)],
    ['duration', `${seconds(r.virtualMs)} of capture time`],
  ];
  if (r.skipped.secondaryInput > 0 || r.skipped.primaryInput > 0) {
    rows.push(['skipped', `client traffic in the captures: ${r.skipped.secondaryInput} in the secondary, ${r.skipped.primaryInput} in the primary`]);
  }
  if (r.unreleased > 0) rows.push(['NOT RELEASED', `${r.unreleased} primary frames were still held when the replay ended`]);
  if (r.timeBackwards > 0) rows.push(['clamped', `${r.timeBackwards} timestamps earlier than the frame before them`]);
  out.push(...table(rows).map((l) => `  ${l}`));

  if (r.checkpoints.length > 0) {
    out.push('', 'checkpoints');
    out.push(...table([
      ['#', 'requested', 'reason', 'mismatches', 'flushed', 'flow'],
      ...r.checkpoints.map((e) => [String(e.number), seconds(e.requestedAtMs), e.reason, String(e.mismatches), String(e.flushed), e.flow]),
    ]).map((l) => `  ${l}`));
    if (r.checkpointsOmitted > 0) out.push(`  ... and ${r.checkpointsOmitted} more (counted above, not listed)`);
  }
  if (r.mismatches.length > 0) {
    out.push('', 'mismatches');
    for (const [i, m] of r.mismatches.entries()) {
      const where = m.sequence < 0 ? 'no position' : m.flow.startsWith('tcp ') ? `seq ${m.sequence}, stream byte ${m.offset}` : `message ${m.sequence}, byte ${m.offset}`;
      out.push(`  ${i + 1}. ${seconds(m.atMs)}  ${m.reason}  ${m.flow}  (checkpoint ${m.episode})`);
      out.push(`     ${where}: ${m.detail}`);
      if (m.primaryHex !== '' || m.secondaryHex !== '') {
        out.push(`     primary    ${m.primaryHex || '-'}`);
        out.push(`     secondary  ${m.secondaryHex || '-'}`);
      }
    }
    if (r.mismatchesOmitted > 0) out.push(`  ... and ${r.mismatchesOmitted} more (counted above, not listed)`);
  }
  if (r.warnings.length > 0) {
    out.push('', 'warnings');
    for (const w of r.warnings) out.push(`  ${w}`);
  }
  return `${out.join('\n')}\n`;
}
