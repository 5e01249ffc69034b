/**
 * Wireshark's command-line tools as an independent judge of what colo-proxy writes. `runTool`
 * runs one (tshark, text2pcap, capinfos, editcap) and fails the test when it is missing or exits
 * non-zero: they are system dependencies (Debian packages tshark and wireshark-common), a test
 * never skips for want of them. `tsharkFields` writes frames to a pcap with text2pcap in a temp
 * dir (removed afterwards) and returns tshark's `-T fields` reading of them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs a Wireshark tool and returns its stdout; fails the test (never skips) if it cannot be run or exits non-zero. */
export function runTool(tool: string, args: readonly string[]): string {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.error) {
    assert.fail(`${tool} is required for this test and could not be run (${r.error.message}); install Wireshark's command-line tools (Debian: apt-get install tshark wireshark-common)`);
  }
  assert.equal(r.status, 0, `${tool} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** text2pcap's input: per frame, offset-prefixed lines of 16 hex bytes starting again at 000000. */
function hexDump(frames: readonly Uint8Array[]): string {
  let out = '';
  for (const bytes of frames) {
    for (let at = 0; at < bytes.length; at += 16) {
      const line = Array.from(bytes.subarray(at, at + 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
      out += `${at.toString(16).padStart(6, '0')} ${line}\n`;
    }
  }
  return out;
}

/**
 * tshark's reading of `frames` (Ethernet, in order, through a text2pcap pcap): one line per frame
 * with `fields` separated by commas, read with `-n` and the extra `options` (`-o pref:value`,
 * `-E aggregator=;`, ...).
 */
export function tsharkFields(frames: readonly Uint8Array[], fields: readonly string[], options: readonly string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'colo-tshark-'));
  try {
    const dump = join(dir, 'frames.txt');
    const pcap = join(dir, 'frames.pcap');
    writeFileSync(dump, hexDump(frames));
    runTool('text2pcap', ['-q', dump, pcap]);
    return runTool('tshark', ['-r', pcap, '-n', ...options, '-T', 'fields', '-E', 'separator=,', ...fields.flatMap((f) => ['-e', f])]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
