// The colo-proxy executable end to end: exit codes, one-line errors, and `inspect` checked
// frame by frame against tshark's reading of the same captures.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coloProxyArgv, coloProxyCommandLine } from '../../support/colo-proxy-cli.js';
import { fromHex, LINKTYPE_ETHERNET } from '../../../compare/index.js';
import { createCaptureFileWriter } from '../../../proxy/ports/capture-file.js';
import { runTool } from '../../support/tshark.js';
import { concat, pcapngInterface, pcapngPacket, pcapngSection, pcapngSimplePacket } from '../framing/support.js';

const CAPTURES = ['captures/linux-download/primary.pcapng', 'captures/linux-download/secondary.pcapng', 'captures/linux-mixed/primary.pcapng'];
const dir = mkdtempSync(join(tmpdir(), 'colo-proxy-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, coloProxyArgv(args), { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code, stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^colo-proxy: /);
  assert.match(lines[0]!, pattern);
}

test('cli: --version prints the package version', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const r = cli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `colo-proxy ${pkg.version}\n`);
});

test('cli: --help lists the working commands; no command is a usage error', () => {
  const r = cli(['--help']);
  assert.equal(r.code, 0);
  for (const name of ['compare', 'replay', 'run', 'bridge', 'inspect']) assert.match(r.stdout, new RegExp(`^ {2}${name} +\\S`, 'm'), `${name} listed`);
  const bare = cli([]);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /Usage: colo-proxy COMMAND/);
  const sub = cli(['inspect', '--help']);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /^Usage: colo-proxy inspect /);
  assert.match(sub.stdout, /--limit N\s+stop after N frames/);
});

test('cli: command-line mistakes are one line and exit code 2', () => {
  assertOneLineError(cli(['frobnicate']), /unknown command "frobnicate" \(commands: compare, replay, run, bridge, inspect;/);
  assertOneLineError(cli(['--frob']), /unknown flag --frob/);
  assertOneLineError(cli(['inspect', CAPTURES[0]!, '--limit', 'x']), /inspect: --limit must be an integer from 1 to \d+ \(got "x"\)/);
  assertOneLineError(cli(['inspect', CAPTURES[0]!, '--limit']), /inspect: --limit needs N/);
  assertOneLineError(cli(['inspect', CAPTURES[0]!, '--time', 'local']), /--time must be one of relative, absolute, epoch/);
  assertOneLineError(cli(['inspect', CAPTURES[0]!, '--verbose']), /inspect: unknown flag --verbose \(accepted: --limit, --time\)/);
  assertOneLineError(cli(['inspect']), /inspect: expected one capture FILE, got 0 arguments/);
});

test('cli: a missing file is one line naming it', () => {
  assertOneLineError(cli(['inspect', join(dir, 'absent.pcap')]), /absent\.pcap: cannot open capture file: ENOENT.*\(capture\.io\)$/);
});

interface SharkFrame {
  seq: number;
  ack: number;
  len: number;
}

// tshark's view of every TCP frame: raw (absolute) seq and ack, and the TCP payload length.
function tsharkTcp(path: string): Map<number, SharkFrame> {
  const out = runTool('tshark', ['-r', path, '-Y', 'tcp', '-T', 'fields', '-e', 'frame.number', '-e', 'tcp.seq_raw', '-e', 'tcp.ack_raw', '-e', 'tcp.len', '-e', 'tcp.flags.ack']);
  const frames = new Map<number, SharkFrame>();
  for (const line of out.trim().split('\n')) {
    const [n, seq, ack, len] = line.split('\t');
    frames.set(Number(n), { seq: Number(seq), ack: Number(ack), len: Number(len) });
  }
  return frames;
}

test('cli: inspect agrees with tshark on every TCP frame of the bundled captures', () => {
  for (const path of CAPTURES) {
    const expected = tsharkTcp(path);
    assert.ok(expected.size > 10, `tshark found TCP frames in ${path}`);
    const r = cli(['inspect', path]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const total = Number(runTool('capinfos', ['-M', '-c', '-r', path]).match(/(\d+)\s*$/)![1]);
    assert.equal(lines.length, total, 'one line per frame');
    let tcp = 0;
    for (const line of lines) {
      const m = /^\s*(\d+) \S+ .* tcp \[[^\]]+\] seq (\d+)(?: ack (\d+))? win \d+ len (\d+)/.exec(line);
      if (!m) continue;
      tcp++;
      const shark = expected.get(Number(m[1]));
      assert.ok(shark, `frame ${m[1]} is TCP for tshark too`);
      assert.equal(Number(m[2]), shark.seq, `seq of frame ${m[1]}`);
      if (m[3] !== undefined) assert.equal(Number(m[3]), shark.ack, `ack of frame ${m[1]}`);
      assert.equal(Number(m[4]), shark.len, `payload length of frame ${m[1]}`);
    }
    assert.equal(tcp, expected.size, 'same number of TCP frames');
    assert.match(r.stderr, new RegExp(`${total} frames, all decoded`));
  }
});

test('cli: inspect --limit stops early and --time epoch prints exact nanoseconds', () => {
  const r = cli(['inspect', '--limit', '3', '--time', 'epoch', CAPTURES[0]!]);
  assert.equal(r.code, 0);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 3);
  const shark = runTool('tshark', ['-r', CAPTURES[0]!, '-c', '3', '-T', 'fields', '-e', 'frame.time_epoch']);
  assert.deepEqual(lines.map((l) => l.trim().split(' ')[1]), shark.trim().split('\n'));
  assert.match(r.stderr, /3 frames \(limit reached\)/);
});

// A TCP segment whose data offset is 3 (less than the minimum 5): the frame cannot be decoded.
const BAD_TCP = fromHex(
  '525400c01001 525400c01002 0800' +
    '45000028 0001 0000 40 06 0000 0a4d0002 0a4d0001' +
    '1f90 9c40 00000001 00000000 3010 ffff 0000 0000',
);
// ARP who-has 10.77.0.2 tell 10.77.0.1, padded to the 60-byte Ethernet minimum.
const ARP = fromHex('ffffffffffff 525400c01001 0806 0001 0800 06 04 0001 525400c01001 0a4d0001 000000000000 0a4d0002' + '00'.repeat(18));

test('cli: an undecodable frame is shown with its reason and counted, not fatal', async () => {
  const path = join(dir, 'bad-tcp.pcapng');
  const w = await createCaptureFileWriter(path, 'pcapng');
  w.addInterface(LINKTYPE_ETHERNET);
  await w.write({ timeNs: 1_700_000_000_000_000_000n, data: ARP });
  await w.write({ timeNs: 1_700_000_000_000_000_001n, data: BAD_TCP, comment: 'broken on purpose' });
  await w.close();
  const r = cli(['inspect', path]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], '    1 0.000000 arp who-has 10.77.0.2 tell 10.77.0.1');
  assert.match(lines[1]!, /^ {4}2 0\.000000 ! decode\.tcp\.bad_data_offset at byte \d+ \(frame length 54\) # "broken on purpose"$/);
  assert.match(r.stderr, /2 frames, not decoded: decode\.tcp\.bad_data_offset: 1/);
  // A link type the decoder does not know (BSD loopback, 0): shown by length, and not "all decoded".
  const loopback = join(dir, 'loopback.pcapng');
  const l = await createCaptureFileWriter(loopback, 'pcapng');
  l.addInterface(0);
  await l.write({ timeNs: 1_700_000_000_000_000_000n, data: Uint8Array.from([2, 0, 0, 0, ...BAD_TCP.subarray(14)]) });
  await l.close();
  const lr = cli(['inspect', loopback]);
  assert.equal(lr.code, 0, lr.stderr);
  assert.equal(lr.stdout, '    1 0.000000 link type 0 len 44\n');
  assert.match(lr.stderr, /1 frames, not decoded: link type linktype-0: 1\n$/);
});

test('cli: inspect shows an untimed frame as "-", and times before 1970 or past what a date holds without error', () => {
  const path = join(dir, 'times.pcapng');
  writeFileSync(path, concat(
    // Interface 0 plain (microseconds), interface 1 with if_tsoffset -100 s.
    pcapngSection(), pcapngInterface(LINKTYPE_ETHERNET), pcapngInterface(LINKTYPE_ETHERNET, -100),
    pcapngSimplePacket(ARP), // no time, before any timed block
    pcapngPacket(0, 1_700_000_000_000_000n, ARP),
    pcapngPacket(1, 1_001_399n, ARP), // -98.998601 s
    pcapngPacket(0, 0xffffffffffffffffn, ARP), // 2^64 - 1 us: past year 275760
  ));
  const times = (mode: string): string[] => {
    const r = cli(['inspect', '--time', mode, path]);
    assert.equal(r.code, 0, `${mode}: ${r.stderr}`);
    return r.stdout.trimEnd().split('\n').map((l) => l.trim().split(' ')[1]!);
  };
  assert.deepEqual(times('relative'), ['-', '0.000000', '-1700000098.998601', '18445044073709.551615']);
  assert.deepEqual(times('epoch'), ['-', '1700000000.000000000', '-98.998601000', '18446744073709.551615000']);
  assert.deepEqual(times('absolute'), ['-', '2023-11-14T22:13:20.000000000Z', '1969-12-31T23:58:21.001399000Z', '18446744073709.551615000']);
});

test('cli: a truncated or corrupt capture stops with one line naming the byte offset', () => {
  const whole = readFileSync(CAPTURES[0]!);
  for (const cut of [3, 20, 100, 1000, whole.length - 1]) {
    const path = join(dir, `cut-${cut}.pcapng`);
    writeFileSync(path, whole.subarray(0, cut));
    const r = cli(['inspect', path]);
    assert.equal(r.code, 2, `cut at ${cut}: ${r.stderr}`);
    assert.match(r.stderr, /^colo-proxy: .*cut-\d+\.pcapng: .* at byte \d+ \(capture\.truncated\)\n$/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const corrupt = join(dir, 'corrupt.pcap');
  writeFileSync(corrupt, Buffer.from('this is not a capture file at all'));
  assertOneLineError(cli(['inspect', corrupt]), /corrupt\.pcap: .* at byte 0 \(capture\.bad_magic\)$/);
});

test('cli: inspect stops quietly when its reader goes away', async () => {
  const path = join(dir, 'many.pcap');
  const w = await createCaptureFileWriter(path, 'pcap');
  w.addInterface(LINKTYPE_ETHERNET);
  for (let i = 0; i < 100_000; i++) await w.write({ timeNs: BigInt(i) * 1000n, data: ARP });
  await w.close();
  const r = spawnSync('sh', ['-c', `${coloProxyCommandLine(['inspect', path])} | head -n 2; echo "status \${PIPESTATUS:-0}"`], { encoding: 'utf8' });
  assert.equal(r.stdout.split('\n').filter((l) => l.includes('arp who-has')).length, 2);
  assert.doesNotMatch(r.stderr, /EPIPE|Error|internal error/);
});
