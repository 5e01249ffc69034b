// `colo-proxy replay` as a user runs it: exit codes, the JSON report, the captures it writes
// (read back by tshark), byte-identical reruns, and one-line errors for bad input.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coloProxyArgv, coloProxyCommandLine } from '../../support/colo-proxy-cli.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, toHex } from '../../../compare/index.js';
import { emitTcp, emitUdp, type TcpFields } from '../../../compare/wire/emit.js';
import { createCaptureFileWriter, readCaptureFile } from '../../../proxy/ports/capture-file.js';
import { runTool } from '../../support/tshark.js';
import { pattern } from '../../support/twins.js';
import { concat, pcapngInterface, pcapngPacket, pcapngSection } from '../framing/support.js';
import { QemuPacketDecoder, encodeQemuFrame } from '../../../proxy/framing/qemu-frames.js';
import { COLO_CHECKPOINT, COLO_COMPARE_GET_XEN_INIT, COLO_USERSPACE_PROXY_INIT, DO_CHECKPOINT, NotifyDecoder, encodeNotify } from '../../../proxy/framing/notify.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-replay-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  // The timeout only keeps a hang from stalling the suite: a killed replay has no exit code and fails.
  const r = spawnSync(process.execPath, coloProxyArgv(['replay', ...args]), { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function out(f: Partial<TcpFields> & { payload?: string }): Uint8Array {
  return emitTcp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort: 80, dstPort: 40000, seq: 0, ack: 5000, flags: TCP_ACK | (f.payload ? TCP_PSH : 0), ...f });
}

const BODY = pattern(0, 4000);

/** Writes `frames` to dir/`name` as a pcapng (of `linkType`, Ethernet by default), 1 ms apart from `t0Ms`; returns its path. */
async function writeCapture(name: string, frames: readonly Uint8Array[], t0Ms = 0, linkType = 1): Promise<string> {
  const w = await createCaptureFileWriter(join(dir, name), 'pcapng');
  w.addInterface(linkType);
  for (const [i, data] of frames.entries()) await w.write({ timeNs: 1_000_000_000n + BigInt(Math.round((t0Ms + i) * 1e6)), data });
  await w.close();
  return join(dir, name);
}

/** One download from ISN 1000 with `body` cut at `cuts`; returns the frames written. */
async function download(name: string, body: string, cuts: number[], t0Ms: number): Promise<Uint8Array[]> {
  const frames = [out({ seq: 1000, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } })];
  let at = 0;
  for (const end of [...cuts, body.length]) {
    frames.push(out({ seq: 1001 + at, payload: body.slice(at, end) }));
    at = end;
  }
  frames.push(out({ seq: 1001 + at, flags: TCP_ACK | TCP_FIN }));
  await writeCapture(name, frames, t0Ms);
  return frames;
}

const primaryFrames = await download('p.pcapng', BODY, [1448, 2896], 0);
await download('s-same.pcapng', BODY, [1000, 3500], 0.3);
await download('s-diff.pcapng', `${BODY.slice(0, 2000)}X${BODY.slice(2001)}`, [1448, 2896], 0.3);
const P = join(dir, 'p.pcapng');

interface JsonReport {
  primaryFrames: number;
  secondaryFrames: number;
  released: number;
  checkpointCount: number;
  checkpoints: { reason: string; requestedAtMs: number }[];
  mismatches: { reason: string; flow: string; sequence: number; offset: number; primaryHex: string; secondaryHex: string }[];
  counters: { mismatches: Record<string, number> };
}

test('replay cli: identical outputs exit 0; --json has the frames, releases and no checkpoints', () => {
  const r = cli(['--primary', P, '--secondary', join(dir, 's-same.pcapng'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as JsonReport;
  assert.equal(report.primaryFrames, primaryFrames.length);
  assert.equal(report.secondaryFrames, 5);
  assert.equal(report.released, primaryFrames.length);
  assert.deepEqual(report.checkpoints, []);
  assert.deepEqual(report.mismatches, []);
});

test('replay cli: a difference exits 1 and the text report shows the reason, flow, sequence and hex of both sides', () => {
  const r = cli(['--primary', P, '--secondary', join(dir, 's-diff.pcapng')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /outcome +diverged: 1 checkpoint \(tcp\.payload 1\)/);
  assert.match(r.stdout, /tcp\.payload +tcp 10\.0\.0\.2:80 <> 10\.0\.0\.1:40000/);
  assert.match(r.stdout, /seq 3001, stream byte 2000/);
  const x = toHex(new TextEncoder().encode('X'));
  assert.match(r.stdout, new RegExp(`secondary +[0-9a-f]*${x}`));
});

test('replay cli: --out holds exactly the primary frames, in order, as tshark reads them', () => {
  const file = join(dir, 'released.pcapng');
  const r = cli(['--primary', P, '--secondary', join(dir, 's-diff.pcapng'), '--out', file, '--quiet']);
  assert.equal(r.code, 1, r.stderr);
  const lines = runTool('tshark', ['-r', file, '-n', '-T', 'fields', '-e', 'frame.protocols', '-e', 'data.data', '-e', 'tcp.seq_raw', '-E', 'separator=,']).trim().split('\n');
  assert.equal(lines.length, primaryFrames.length);
  const hex = runTool('tshark', ['-r', file, '-n', '-x']);
  for (const f of primaryFrames) {
    const firstRow = toHex(f.subarray(0, 16)).match(/../g)!.join(' ');
    assert.ok(hex.includes(firstRow), `released capture holds frame starting ${firstRow}`);
  }
  const seqs = lines.map((l) => Number(l.split(',').at(-1)));
  assert.deepEqual(seqs, [1000, 1001, 2449, 3897, 5001], 'release order is the primary\'s');
});

test('replay cli: --mismatch-dir writes one capture per checkpoint with both sides\' frames, side in the comment', () => {
  const mdir = join(dir, 'mismatches');
  const r = cli(['--primary', P, '--secondary', join(dir, 's-diff.pcapng'), '--mismatch-dir', mdir, '--quiet']);
  assert.equal(r.code, 1, r.stderr);
  const files = readdirSync(mdir);
  assert.deepEqual(files, ['checkpoint-0001-tcp.payload.pcapng']);
  const lines = runTool('tshark', ['-r', join(mdir, files[0]!), '-n', '-T', 'fields', '-e', 'frame.interface_name', '-e', 'frame.comment', '-E', 'separator=|']).trim().split('\n');
  const sides = new Set(lines.map((l) => l.split('|')[0]));
  assert.deepEqual([...sides].sort(), ['primary', 'secondary']);
  assert.match(lines[0]!, /checkpoint 1: tcp\.payload tcp 10\.0\.0\.2:80 <> 10\.0\.0\.1:40000/);
  for (const l of lines) assert.match(l.split('|')[1]!, /^(primary|secondary)/);
});

test('replay cli: --mismatch-dir on a full disk: the replay and its report go on, the unwritten episodes a warning, the earlier set kept', () => {
  const small = mkdtempSync(join(tmpdir(), 'colo-replay-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', small]);
  try {
    const episodes = join(small, 'episodes');
    mkdirSync(episodes);
    writeFileSync(join(episodes, 'checkpoint-0001-timeout.pcapng'), 'an earlier replay\'s');
    const captures = fileURLToPath(new URL('../../../captures/queue-full/', import.meta.url));
    const r = cli(['--primary', join(captures, 'primary.pcapng'), '--secondary', join(captures, 'secondary.pcapng'), '--mismatch-dir', episodes]);
    assert.equal(r.code, 1, `the verdict's exit code; stderr: ${r.stderr}`);
    assert.match(r.stdout, /checkpoint/, 'the report');
    // The error names the file the capture was to be, not the staging directory it was written in.
    const named = new RegExp(`\\n {2}--mismatch-dir: \\d+ episode captures not written, from the first that failed: ${episodes}/checkpoint-\\d{4}-[a-z_.]+\\.pcapng: .*ENOSPC.*; none of this replay's are kept, and the directory is left as it was`);
    assert.match(r.stdout, named);
    assert.match(r.stderr, /--mismatch-dir: \d+ episode captures not written/);
    assert.deepEqual(readdirSync(episodes), ['checkpoint-0001-timeout.pcapng'], 'a partial set does not replace a complete one');
  } finally {
    execFileSync('umount', [small]);
    rmSync(small, { recursive: true, force: true });
  }
});

test('replay cli: --mismatch-dir in translate mode holds the SVM\'s frames of a flow it sends from another port', async () => {
  // A guest's DNS query, from its own random port on each: translate mode pairs the two flows.
  const query = (srcPort: number, name: string): Uint8Array => emitUdp({ src: '10.0.0.2', dst: '10.0.0.1', srcPort, dstPort: 53, payload: `query ${name}` });
  const p = await writeCapture('dns-p.pcapng', [query(40001, 'updates.example')]);
  const s = await writeCapture('dns-s.pcapng', [query(51234, 'updatez.example')], 0.3);
  const mdir = join(dir, 'mismatches-translate');
  const r = cli(['--primary', p, '--secondary', s, '--mode', 'translate', '--mismatch-dir', mdir, '--quiet']);
  assert.equal(r.code, 1, r.stderr);
  const files = readdirSync(mdir);
  assert.deepEqual(files, ['checkpoint-0001-udp.payload.pcapng']);
  const lines = runTool('tshark', ['-r', join(mdir, files[0]!), '-n', '-T', 'fields', '-e', 'frame.interface_name', '-e', 'udp.srcport', '-E', 'separator=|']).trim().split('\n');
  assert.deepEqual(lines, ['primary|40001', 'secondary|51234']);
});

test('replay cli: --mismatch-dir is made once the inputs are read, and keeps only this replay\'s captures besides files not ours', () => {
  const S = join(dir, 's-diff.pcapng');
  const fresh = join(dir, 'md-fresh', 'deeper');
  assertOneLineError(cli(['--primary', join(dir, 'missing.pcapng'), '--secondary', S, '--mismatch-dir', fresh]), /missing\.pcapng: cannot open capture file/);
  assert.equal(statSync(join(dir, 'md-fresh'), { throwIfNoEntry: false }), undefined, 'a mistyped input creates no directory');
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--mismatch-dir', P]), /--mismatch-dir .*p\.pcapng is not a directory$/);
  // Paths that cannot even be looked at, or made: one line naming the flag, not a crash.
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--mismatch-dir', join(P, 'under-a-file')]), /^colo-proxy: replay: --mismatch-dir \S+under-a-file: ENOTDIR: not a directory$/);
  const loop = join(dir, 'md-loop');
  symlinkSync(loop, loop);
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--mismatch-dir', loop]), /^colo-proxy: replay: --mismatch-dir \S+md-loop: ELOOP: too many symbolic links encountered$/);
  assertOneLineError(cli(['--primary', join(P, 'under-a-file'), '--secondary', S, '--against-qemu']), /^colo-proxy: replay: --primary \S+under-a-file: ENOTDIR: not a directory$/);
  // The kernel refuses mkdir under /proc (ENOENT), where Node's recursive mkdir never returns.
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--mismatch-dir', `/proc/colo-proxy-test-${process.pid}/episodes`]), /^colo-proxy: replay: --mismatch-dir \/proc\/\S+: ENOENT: no such file or directory$/);
  const both = join(dir, 'md-and-out');
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--out', both, '--mismatch-dir', both]), /^colo-proxy: replay: --out \S+md-and-out and --mismatch-dir \S+md-and-out are the same path; each needs its own$/);
  assert.equal(statSync(both, { throwIfNoEntry: false }), undefined, 'refused before anything is written');

  const reused = join(dir, 'md-reused');
  mkdirSync(reused);
  for (const name of ['checkpoint-007-tcp.payload.pcapng', 'checkpoint-0002-timeout.pcapng', 'notes.txt', 'checkpoint-001-tcp.payload.pcapng.txt']) writeFileSync(join(reused, name), 'earlier');
  const r = cli(['--primary', P, '--secondary', S, '--mismatch-dir', reused, '--quiet']);
  assert.equal(r.code, 1, r.stderr);
  assert.deepEqual(readdirSync(reused).sort(), ['checkpoint-0001-tcp.payload.pcapng', 'checkpoint-001-tcp.payload.pcapng.txt', 'notes.txt']);
  // An input or --out there under an episode's name would be removed or overwritten: refused.
  const episode = join(reused, 'checkpoint-0001-tcp.payload.pcapng');
  const kept = readFileSync(episode);
  assertOneLineError(cli(['--primary', episode, '--secondary', S, '--mismatch-dir', reused]), /^colo-proxy: replay: --primary \S+checkpoint-0001-tcp\.payload\.pcapng is in --mismatch-dir \S+md-reused under the name of an episode file/);
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--mismatch-dir', reused, '--out', join(reused, 'checkpoint-0009-timeout.pcapng')]), /^colo-proxy: replay: --out \S+checkpoint-0009-timeout\.pcapng is in --mismatch-dir/);
  const link = join(dir, 'episode-link.pcapng');
  symlinkSync(episode, link);
  assertOneLineError(cli(['--primary', link, '--secondary', S, '--mismatch-dir', reused]), /^colo-proxy: replay: --primary \S+episode-link\.pcapng is in --mismatch-dir/);
  assert.deepEqual(readFileSync(episode), kept, 'the input is untouched');
});

test('replay cli: a replay that fails leaves --mismatch-dir as it was; another replay\'s staging directory is pointed out, never touched', async () => {
  const m = join(dir, 'md-kept');
  const first = cli(['--primary', P, '--secondary', join(dir, 's-diff.pcapng'), '--mismatch-dir', m, '--quiet']);
  assert.equal(first.code, 1, first.stderr);
  const earlier = readdirSync(m);
  assert.deepEqual(earlier, ['checkpoint-0001-tcp.payload.pcapng'], 'one episode, and nothing else left there');
  const kept = readFileSync(join(m, earlier[0]!));
  // The same divergence, then a frame cut by a snap length a second later: an input error after
  // the episode was seen, which used to replace the earlier capture with this run's.
  const w = await createCaptureFileWriter(join(dir, 'cut-late.pcapng'), 'pcapng');
  w.addInterface(1);
  for (const [i, f] of primaryFrames.entries()) await w.write({ timeNs: 1_000_000_000n + BigInt(i) * 1_000_000n, data: f });
  const data = primaryFrames[1]!;
  await w.write({ timeNs: 2_000_000_000n, data: data.subarray(0, 100), originalLength: data.length });
  await w.close();
  assertOneLineError(cli(['--primary', join(dir, 'cut-late.pcapng'), '--secondary', join(dir, 's-diff.pcapng'), '--mismatch-dir', m]), /cut-late\.pcapng: the frame at byte \d+ was captured short/);
  assert.deepEqual(readdirSync(m), earlier, 'the earlier episode stays, and nothing of this replay');
  assert.deepEqual(readFileSync(join(m, earlier[0]!)), kept);
  // A staging directory of a replay killed outright, or of one running (in another PID namespace, say).
  const other = join(m, '.colo-replay-Ab3dE9');
  mkdirSync(other);
  writeFileSync(join(other, 'checkpoint-0001-timeout.pcapng'), 'another replay\'s');
  const r = cli(['--primary', P, '--secondary', join(dir, 's-diff.pcapng'), '--mismatch-dir', m]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /warning: --mismatch-dir: \.colo-replay-Ab3dE9 is a directory of replays killed before they could remove it, or still running there: remove it once no replay writes there/);
  assert.deepEqual(readdirSync(other), ['checkpoint-0001-timeout.pcapng'], 'untouched');
  assert.deepEqual(readdirSync(m).sort(), ['.colo-replay-Ab3dE9', 'checkpoint-0001-tcp.payload.pcapng']);
  rmSync(other, { recursive: true });
});

test('replay cli: a second replay prints the same bytes and writes the same capture', () => {
  const args = (n: number): string[] => ['--primary', P, '--secondary', join(dir, 's-diff.pcapng'), '--out', join(dir, `again-${n}.pcapng`), '--quiet'];
  const a = cli([...args(1), '--json']);
  const b = cli([...args(2), '--json']);
  assert.equal(a.code, 1);
  assert.equal(a.stdout.replaceAll('again-1', 'again-N'), b.stdout.replaceAll('again-2', 'again-N'));
  assert.deepEqual(readFileSync(join(dir, 'again-1.pcapng')), readFileSync(join(dir, 'again-2.pcapng')));
  assert.equal(cli(args(3)).stdout, cli(args(3)).stdout);
});

function assertOneLineError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code, stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^colo-proxy: replay: /, 'the line names the command');
  assert.match(lines[0]!, pattern);
}

test('replay cli: bad input is one line naming what was wrong, exit 2', () => {
  assertOneLineError(cli(['--secondary', P]), /--primary FILE is required/);
  assertOneLineError(cli(['--primary', P, '--secondary', join(dir, 'missing.pcapng')]), /missing\.pcapng: cannot open capture file/);
  assertOneLineError(cli(['--primary', P, '--secondary', P, '--guest-mac', 'nope']), /--guest-mac must be a MAC address/);
  assertOneLineError(cli(['--primary', P, '--secondary', P, '--mode', 'sideways']), /--mode/);
  assertOneLineError(cli(['--primary', P, '--secondary', P, '--compare-headers', 'ip.ttl,colour']), /unknown field "colour"/);
  const bytes = readFileSync(P);
  const truncated = join(dir, 'truncated.pcapng');
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 10));
  assertOneLineError(cli(['--primary', P, '--secondary', truncated]), /truncated\.pcapng: .*at byte \d+ \(capture\.truncated\)/);
  const garbage = join(dir, 'garbage.pcap');
  writeFileSync(garbage, 'this is not a capture at all');
  assertOneLineError(cli(['--primary', garbage, '--secondary', P]), /garbage\.pcap: .*\(capture\.bad_magic\)/);
});

test('replay cli: a frame captured short of its length, or decades from the first, is a one-line input error naming file and byte', async () => {
  // The two downloads differ at byte 2000 of the body, past a 100-byte snap length: compared as
  // captured, the cut frames would look equal and the replay would say "identical".
  const snap = async (name: string, from: string): Promise<string> => {
    const frames: Uint8Array[] = [];
    for await (const f of readCaptureFile(join(dir, from))) frames.push(f.data);
    const w = await createCaptureFileWriter(join(dir, name), 'pcapng');
    w.addInterface(1);
    for (const [i, data] of frames.entries()) await w.write({ timeNs: 1_000_000_000n + BigInt(i) * 1_000_000n, data: data.subarray(0, Math.min(100, data.length)), originalLength: data.length });
    await w.close();
    return join(dir, name);
  };
  const sp = await snap('snap-p.pcapng', 'p.pcapng');
  const ss = await snap('snap-s.pcapng', 's-diff.pcapng');
  assertOneLineError(cli(['--primary', sp, '--secondary', ss]), /^colo-proxy: replay: \S+snap-(p|s)\.pcapng: the frame at byte \d+ was captured short, 100 of its \d+ bytes \(the capture's snap length\): a replay compares whole frames/);
  // A capture time 40 years after the replay's first frame: nanoseconds written as microseconds, say.
  const w = await createCaptureFileWriter(join(dir, 'far.pcapng'), 'pcapng');
  w.addInterface(1);
  await w.write({ timeNs: 1_000_000_000n, data: primaryFrames[0]! });
  await w.write({ timeNs: 1_000_000_000n + 40n * 31_557_600n * 1_000_000_000n, data: primaryFrames[1]! });
  await w.close();
  assertOneLineError(cli(['--primary', join(dir, 'far.pcapng'), '--secondary', join(dir, 's-same.pcapng')]), /^colo-proxy: replay: \S+far\.pcapng: the frame at byte \d+ was captured 40\.0 years after the frame at byte \d+ of \S+far\.pcapng: one of the two has its capture times wrong/);
  // Frames over 262144 bytes (as Ethernet): written to --out, tshark called the file corrupt.
  const huge = (size: number): Uint8Array => {
    const f = new Uint8Array(size);
    f.set(primaryFrames[1]!.subarray(0, 14));
    return f;
  };
  const writeUnlimited = async (name: string, frames: Uint8Array[], linkType = 1): Promise<string> => {
    const u = await createCaptureFileWriter(join(dir, name), 'pcapng');
    u.addInterface(linkType, { snaplen: 0 });
    for (const [i, data] of frames.entries()) await u.write({ timeNs: 1_000_000_000n + BigInt(i) * 1_000_000n, data });
    await u.close();
    return join(dir, name);
  };
  const big = await writeUnlimited('big.pcapng', [primaryFrames[0]!, huge(262145)]);
  assertOneLineError(cli(['--primary', big, '--secondary', big, '--out', join(dir, 'big-out.pcapng')]), /^colo-proxy: replay: \S+big\.pcapng: frame at byte \d+: 262145 bytes of link type ethernet \(1\), over the 262144 a captured frame can have/);
  assert.ok(!existsSync(join(dir, 'big-out.pcapng')), 'no --out written');
  const edge = await writeUnlimited('edge.pcapng', [primaryFrames[0]!, huge(262144)]);
  assert.equal(cli(['--primary', edge, '--secondary', edge, '--quiet']).code, 0, 'at the limit');
  const raw = await writeUnlimited('big-raw.pcapng', [primaryFrames[0]!.subarray(14), huge(262145).subarray(14)], 101);
  assertOneLineError(cli(['--primary', raw, '--secondary', raw]), /big-raw\.pcapng: frame at byte \d+: 262131 bytes of link type raw \(101\) \(262145 as Ethernet\)/);
});

test('replay cli: the same pipe as two inputs is a usage error, before anything is read', () => {
  const fifo = join(dir, 'twice.fifo');
  execFileSync('mkfifo', [fifo]);
  assertOneLineError(cli(['--primary', fifo, '--secondary', fifo]), /^colo-proxy: replay: --primary and --secondary are the same pipe \(\S+twice\.fifo\), which can be read only once/);
});

test('replay cli: with --out on standard output, the capture has stdout to itself and the report goes to stderr', () => {
  const args = ['--primary', P, '--secondary', join(dir, 's-same.pcapng'), '--out', '/dev/stdout', '--quiet'];
  // Through a shell's pipe (Node's own stdio pipes are sockets, which /dev/stdout cannot open).
  const fromPipe = join(dir, 'stdout-pipe.pcapng');
  const piped = spawnSync('bash', ['-c', `${coloProxyCommandLine(['replay', ...args])} | cat >'${fromPipe}'; exit \${PIPESTATUS[0]}`], { encoding: 'utf8' });
  assert.equal(piped.status, 0, piped.stderr);
  assert.match(piped.stderr, /^replay: primary /);
  const read = (path: string): string[] => runTool('tshark', ['-r', path, '-T', 'fields', '-e', 'tcp.seq_raw']).trim().split('\n');
  assert.deepEqual(read(fromPipe), primaryFrames.map((f) => String(new DataView(f.buffer, f.byteOffset).getUint32(14 + 20 + 4))), 'a capture tshark reads whole: every released frame, nothing after');
  // Redirected to a file, /dev/stdout names that file: it gets the capture, the report is not lost.
  const toFile = join(dir, 'stdout-file.pcapng');
  const fd = openSync(toFile, 'w');
  try {
    const redirected = spawnSync(process.execPath, coloProxyArgv(['replay', ...args]), { stdio: ['ignore', fd, 'pipe'] });
    assert.equal(redirected.status, 0, redirected.stderr.toString());
    assert.match(redirected.stderr.toString(), /^replay: primary /);
  } finally {
    closeSync(fd);
  }
  assert.deepEqual(read(toFile), read(fromPipe));
});

test('replay cli: a flag given twice is a one-line usage error; the same capture as both guests is a warning', () => {
  const S = join(dir, 's-same.pcapng');
  assertOneLineError(cli(['--primary', P, '--primary', S, '--secondary', S]), /^colo-proxy: replay: --primary given twice \(".*p\.pcapng", then ".*s-same\.pcapng"\); give it once$/);
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--checkpoint-ms=5', '--checkpoint-ms', '5']), /--checkpoint-ms given twice/);
  const same = cli(['--primary', P, '--secondary', P]);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stderr, /^colo-proxy: replay: warning: --primary and --secondary are the same file \(.*p\.pcapng\): one capture is trivially identical to itself\n$/);
  assert.match(same.stdout, /warnings\n {2}--primary and --secondary are the same file/);
  const client = cli(['--primary', P, '--secondary', S, '--client', P]);
  assert.match(client.stderr, /^colo-proxy: replay: warning: --client and --primary are the same file \(.*p\.pcapng\): a guest's capture was taken for the client's input$/m);
});

test('replay cli: --out never overwrites an input, and a failed replay leaves an earlier --out as it was', () => {
  const copy = join(dir, 'p-copy.pcapng');
  writeFileSync(copy, readFileSync(P));
  assertOneLineError(cli(['--primary', copy, '--secondary', join(dir, 's-same.pcapng'), '--out', copy]), /--out .*p-copy\.pcapng is the --primary capture/);
  assert.deepEqual(readFileSync(copy), readFileSync(P), 'the input is untouched');
  const earlier = join(dir, 'earlier.pcapng');
  assert.equal(cli(['--primary', P, '--secondary', join(dir, 's-same.pcapng'), '--out', earlier, '--quiet']).code, 0);
  const good = readFileSync(earlier);
  const bytes = readFileSync(join(dir, 's-same.pcapng'));
  const cut = join(dir, 's-cut.pcapng');
  writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
  assertOneLineError(cli(['--primary', P, '--secondary', cut, '--out', earlier]), /s-cut\.pcapng: .*\(capture\.truncated\)/);
  assert.deepEqual(readFileSync(earlier), good, 'the earlier --out is as it was');
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.partial-')), [], 'no temporary file left behind');
});

test('replay cli: an --out that replaces a file keeps its permission bits, and a private one is never readable meanwhile', async () => {
  // Paused on a FIFO input, the temporary file is there to look at.
  const fifo = join(dir, 'mode.fifo');
  execFileSync('mkfifo', [fifo]);
  const private_ = join(dir, 'private.pcapng');
  writeFileSync(private_, 'earlier');
  chmodSync(private_, 0o600);
  const child = spawn(process.execPath, coloProxyArgv(['replay', '--primary', fifo, '--secondary', join(dir, 's-same.pcapng'), '--out', private_, '--quiet']));
  const exited = once(child, 'exit') as Promise<[number | null]>;
  try {
    let partial: string | undefined;
    while ((partial = readdirSync(dir).find((n) => n.startsWith('private.pcapng.partial-'))) === undefined && child.exitCode === null) await sleep(10);
    assert.ok(partial !== undefined, 'the temporary file');
    assert.equal(statSync(join(dir, partial)).mode & 0o777, 0o600);
    writeFileSync(fifo, readFileSync(P));
    const [code] = await exited;
    assert.equal(code, 0);
  } finally {
    child.kill('SIGKILL'); // paused on the FIFO when an assertion failed
  }
  assert.equal(statSync(private_).mode & 0o7777, 0o600);
  for (const mode of [0o640, 0o444]) {
    const out = join(dir, `mode-${mode.toString(8)}.pcapng`);
    writeFileSync(out, 'earlier');
    chmodSync(out, mode);
    const r = cli(['--primary', P, '--secondary', join(dir, 's-same.pcapng'), '--out', out, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(out).mode & 0o7777, mode, mode.toString(8));
    assert.notEqual(readFileSync(out, 'utf8'), 'earlier', 'replaced');
  }
});

test('replay cli: an error of another input, or a first SIGINT, stops a replay reading a pipe whose writer is quiet', async () => {
  const empty = join(dir, 'empty-input.pcap');
  writeFileSync(empty, '');
  for (const stop of ['an input error', 'SIGINT'] as const) {
    const fifo = join(dir, `quiet-${stop === 'SIGINT' ? 'sigint' : 'error'}.fifo`);
    execFileSync('mkfifo', [fifo]);
    const child = spawn(process.execPath, coloProxyArgv(['replay', '--primary', fifo, '--secondary', stop === 'SIGINT' ? join(dir, 's-same.pcapng') : empty, '--quiet']));
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    // The writer (tcpdump -w - on a quiet link, say): its capture's start, then nothing, still open.
    const writer = await open(fifo, 'w');
    try {
      await writer.write(readFileSync(P));
      if (stop === 'SIGINT') {
        await sleep(500); // time to read what was written and wait for more
        child.kill('SIGINT');
      }
      const outcome = await Promise.race([exited, sleep(20_000).then(() => 'still waiting for the writer')]);
      assert.notEqual(outcome, 'still waiting for the writer', `${stop}: ${stderr}`);
      const [code] = outcome as [number | null, string | null];
      if (stop === 'SIGINT') {
        assert.equal(code, 130, stderr);
        assert.match(stderr, /replay: stopped by SIGINT/);
      } else {
        assert.equal(code, 2, stderr);
        assert.match(stderr, /empty-input\.pcap: capture input ends after 0 bytes/);
      }
    } finally {
      child.kill('SIGKILL');
      await writer.close();
    }
  }
});

test('replay cli: an --out that cannot be a file is a one-line usage error before the replay, naming the path given', () => {
  const S = join(dir, 's-same.pcapng');
  const aDir = join(dir, 'out-is-a-directory');
  mkdirSync(aDir, { recursive: true });
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--out', aDir]), new RegExp(`--out ${aDir}: is a directory$`));
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--out', `${dir}/`]), /--out .*\/: names a directory, not a file$/);
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--out', '']), /^colo-proxy: replay: --out needs FILE, not an empty value$/);
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--out', join(dir, 'nowhere', 'x.pcapng')]), new RegExp(`--out ${join(dir, 'nowhere', 'x.pcapng')}: no directory ${join(dir, 'nowhere')}$`));
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--out', join(P, 'x.pcapng')]), /--out .*p\.pcapng\/x\.pcapng: ENOTDIR: not a directory$/);
  symlinkSync(join(dir, 'nothing-here'), join(dir, 'dangling-link'));
  assertOneLineError(cli(['--primary', P, '--secondary', S, '--out', join(dir, 'dangling-link')]), /--out .*dangling-link: is a symbolic link to nothing$/);
  assert.deepEqual(readdirSync(aDir), [], 'nothing written into the directory');
});

test('replay cli: an empty value for a file flag is a one-line usage error naming the flag', () => {
  assertOneLineError(cli(['--primary=', '--secondary', P]), /^colo-proxy: replay: --primary needs FILE, not an empty value$/);
  assertOneLineError(cli(['--primary', P, '--secondary', '']), /^colo-proxy: replay: --secondary needs FILE, not an empty value$/);
  assertOneLineError(cli(['--primary', P, '--secondary', P, '--client=']), /--client needs FILE/);
  assertOneLineError(cli(['--primary', P, '--secondary', P, '--mismatch-dir', '']), /--mismatch-dir needs DIR/);
});

test('replay cli: --out to a FIFO writes into it, to a symbolic link replaces the file it names; neither is replaced, a socket is refused', async () => {
  const S = join(dir, 's-diff.pcapng');
  // A FIFO, read by `cat` while the replay writes (a reader of a FIFO that is replaced instead
  // would wait for ever: it is stopped then).
  const fifo = join(dir, 'out.fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
  const chunks: Buffer[] = [];
  reader.stdout.on('data', (c: Buffer) => chunks.push(c));
  const read = once(reader, 'exit');
  const r0 = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, coloProxyArgv(['replay', '--primary', P, '--secondary', S, '--out', fifo, '--quiet']), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
  const stillFifo = lstatSync(fifo).isFIFO();
  if (!stillFifo) reader.kill();
  await read;
  assert.equal(r0.code, 1, r0.stderr);
  assert.ok(stillFifo, 'the FIFO is still a FIFO');
  const copy = join(dir, 'from-fifo.pcapng');
  writeFileSync(copy, Buffer.concat(chunks));
  const seqs = runTool('tshark', ['-r', copy, '-n', '-T', 'fields', '-e', 'tcp.seq_raw']).trim().split('\n').map(Number);
  assert.deepEqual(seqs, [1000, 1001, 2449, 3897, 5001]);

  // A symbolic link to a regular file: the file is replaced, the link stays.
  const target = join(dir, 'link-target.pcapng');
  writeFileSync(target, 'earlier');
  const link = join(dir, 'out-link.pcapng');
  symlinkSync(target, link);
  const r = cli(['--primary', P, '--secondary', S, '--out', link, '--quiet']);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');
  assert.ok(statSync(target).size > 100, 'the file it names holds the capture');
  assert.equal(runTool('capinfos', ['-c', '-M', target]).match(/Number of packets:\s+(\d+)/)?.[1], '5');

  // A socket is neither a file nor something to write a capture into.
  const sockets = mkdtempSync(join(tmpdir(), 'colo-out-'));
  const server = createServer().listen(join(sockets, 'sock'));
  try {
    await once(server, 'listening');
    const refused = spawn(process.execPath, coloProxyArgv(['replay', '--primary', P, '--secondary', S, '--out', join(sockets, 'sock')]));
    let err = '';
    refused.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
    const [refusedCode] = (await once(refused, 'exit')) as [number | null];
    assertOneLineError({ code: refusedCode, stderr: err }, /--out .*sock: is not a regular file, a FIFO or a character device$/);
    assert.ok(lstatSync(join(sockets, 'sock')).isSocket());
  } finally {
    server.close();
    rmSync(sockets, { recursive: true, force: true });
  }
});

/**
 * A replay whose primary capture comes through a FIFO the test holds open, written whole: the
 * replay has read every frame and waits for more (or the end) when `stopSignal` comes; once it
 * was heard, the FIFO ends, which would let an unstopped replay finish normally. Returns the
 * exit code and stderr.
 */
async function replayStoppedBy(name: string, stopSignal: NodeJS.Signals): Promise<{ code: number | null; signal: string | null; stderr: string; out: string }> {
  const r = replayFromFifo(name);
  const writer = await open(r.fifo, 'w'); // opens once the replay opened it for reading
  try {
    await writer.write(readFileSync(P));
    await r.outTemporaryMade();
    r.child.kill(stopSignal);
    while (r.running() && !r.stderr().includes('\n')) await sleep(10);
  } finally {
    await writer.close().catch(() => undefined);
  }
  const [code, signal] = await r.exited;
  return { code, signal, stderr: r.stderr(), out: r.out };
}

/** A replay whose primary capture is the FIFO `name`.fifo, with an earlier `name`.pcapng as --out. */
function replayFromFifo(name: string) {
  const fifo = join(dir, `${name}.fifo`);
  execFileSync('mkfifo', [fifo]);
  const out = join(dir, `${name}.pcapng`);
  writeFileSync(out, 'earlier');
  const child = spawn(process.execPath, coloProxyArgv(['replay', '--primary', fifo, '--secondary', join(dir, 's-same.pcapng'), '--guest-mac', '52:54:00:ab:cd:ef', '--out', out, '--quiet']));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    fifo, out, child, running,
    stderr: () => stderr,
    exited: once(child, 'exit') as Promise<[number | null, string | null]>,
    /** Resolves once --out's temporary file is made (just before the inputs are opened), or the replay ended. */
    async outTemporaryMade(): Promise<void> {
      while (running() && !readdirSync(dir).some((n) => n.startsWith(`${name}.pcapng.partial-`))) await sleep(10);
    },
  };
}

test('replay cli: SIGINT stops a replay with exit 130, leaving an earlier --out as it was and no temporary file', async () => {
  const r = await replayStoppedBy('sigint', 'SIGINT');
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /^colo-proxy: replay: SIGINT: stopping \(again to stop at once\)\ncolo-proxy: replay: stopped by SIGINT before the end; .*sigint\.pcapng left as it was\n$/);
  assert.equal(readFileSync(r.out, 'utf8'), 'earlier');
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.partial-')), []);
});

// The first signal's stop must still be under way when the second comes: with the replay blocked
// opening a FIFO nobody writes to, it cannot finish (a stop mid-read ends in milliseconds and
// would race the second signal).
for (const [first, second] of [['SIGINT', 'SIGTERM'], ['SIGINT', 'SIGINT']] as const) {
  test(`replay cli: a second signal stops at once (the process dies of it), even while opening a FIFO nobody writes to: ${first}, then ${second}`, async () => {
    const name = `never-written-${second}`;
    const { fifo, out, child, running, stderr, exited, outTemporaryMade } = replayFromFifo(name);
    await outTemporaryMade();
    for (const [i, signal] of [first, second].entries()) {
      child.kill(signal);
      // Bounded: a signal that goes unanswered must fail this test, not hang the suite.
      for (const until = Date.now() + 20_000; running() && stderr().split('\n').length - 1 <= i;) {
        if (Date.now() > until) {
          child.kill('SIGKILL');
          assert.fail(`${signal} ${i + 1} went unanswered for 20 s; stderr: ${stderr()}`);
        }
        await sleep(10);
      }
    }
    // Let a process still blocked in open() go: it would then exit with a status instead of dying of the signal.
    await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).then((h) => h.close(), () => undefined);
    const [code, signal] = await exited;
    assert.equal(signal, second, `code ${code}: ${stderr()}`);
    assert.equal(stderr(), `colo-proxy: replay: ${first}: stopping (again to stop at once)\ncolo-proxy: replay: ${second} again: stopped\n`);
    assert.equal(readFileSync(out, 'utf8'), 'earlier');
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(`${name}.pcapng.partial-`)), [], 'no temporary file left behind');
  });
}

test('replay cli: captures from a pipe are read once, the guest found in the same read', async () => {
  // Tap captures: the client's frames and the guest's in each, so the guest's MAC must be found.
  const guestMac = '52:54:00:12:34:56';
  const clientMac = '52:54:00:ab:cd:ef';
  const g = (f: Partial<TcpFields> & { payload?: string }): Uint8Array => out({ srcMac: guestMac, dstMac: clientMac, ...f });
  const c = (f: Partial<TcpFields>): Uint8Array => emitTcp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80, seq: 4999, ack: 0, flags: TCP_SYN, srcMac: clientMac, dstMac: guestMac, ...f });
  const tap = (payload: string): Uint8Array[] => [
    c({}), g({ seq: 1000, flags: TCP_SYN | TCP_ACK }), c({ seq: 5000, ack: 1001, flags: TCP_ACK }),
    g({ seq: 1001, payload }), c({ seq: 5000, ack: 1001 + payload.length, flags: TCP_ACK }),
  ];
  const p = await writeCapture('tap-p.pcapng', tap('primary says this'), 0);
  const s = await writeCapture('tap-s.pcapng', tap('secondary says that'), 0.3);
  // A shell pipe (a child's stdin from Node is a socket, which /dev/stdin cannot reopen).
  const piped = (args: string[]): { code: number | null; stdout: string; stderr: string } => {
    const r = spawnSync('sh', ['-c', `cat '${p}' | ${coloProxyCommandLine(['replay', '--primary', '/dev/stdin', '--secondary', s, ...args])}`], { encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const r = piped(['--json', '--quiet']);
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout) as JsonReport & { clientFrames: number; guest: string };
  assert.match(report.guest, /52:54:00:12:34:56/);
  assert.deepEqual([report.primaryFrames, report.secondaryFrames, report.clientFrames], [2, 2, 3]);
  assert.equal(report.checkpointCount, 1);
  assertOneLineError(piped(['--against-qemu']), /--primary \/dev\/stdin is not a regular file, and --against-qemu reads the captures a second time/);
});

test('replay cli: in Linux cooked captures (SLL, SLL2) the link-layer address tells the guest\'s frames from the client\'s', async () => {
  const guestMac = '52:54:00:12:34:56';
  const clientMac = '52:54:00:ab:cd:ef';
  const g = (f: Partial<TcpFields> & { payload?: string }): Uint8Array => out({ srcMac: guestMac, dstMac: clientMac, ...f });
  const c = (f: Partial<TcpFields>): Uint8Array => emitTcp({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 80, seq: 4999, ack: 0, flags: TCP_SYN, srcMac: clientMac, dstMac: guestMac, ...f });
  const primary = [
    c({}), g({ seq: 1000, flags: TCP_SYN | TCP_ACK }), c({ seq: 5000, ack: 1001, flags: TCP_ACK }),
    g({ seq: 1001, payload: 'the same answer' }), c({ seq: 5000, ack: 1016, flags: TCP_ACK }),
  ];
  // The secondary's capture holds its output only, as --secondary asks: were the client's frames
  // in the primary's taken for guest output, they would wait for copies that never come.
  const secondary = [primary[1]!, primary[3]!];
  // `tcpdump -i any` headers: the sender's MAC as link-layer address, the frame from the IP header on.
  const sll = (e: Uint8Array): Uint8Array => {
    const h = new Uint8Array(16);
    h.set([0, 0, 0, 1, 0, 6], 0); // packet type, ARPHRD_ETHER, address length
    h.set(e.subarray(6, 12), 6);
    h.set(e.subarray(12, 14), 14);
    return Uint8Array.from([...h, ...e.subarray(14)]);
  };
  const sll2 = (e: Uint8Array): Uint8Array => {
    const h = new Uint8Array(20);
    h.set(e.subarray(12, 14), 0);
    h.set([0, 0, 0, 3, 0, 1, 0, 6], 4); // reserved, interface index, ARPHRD_ETHER, packet type, address length
    h.set(e.subarray(6, 12), 12);
    return Uint8Array.from([...h, ...e.subarray(14)]);
  };
  for (const [name, linkType, cook] of [['sll', 113, sll], ['sll2', 276, sll2]] as const) {
    const p = await writeCapture(`${name}-p.pcapng`, primary.map(cook), 0, linkType);
    const s = await writeCapture(`${name}-s.pcapng`, secondary.map(cook), 0.3, linkType);
    for (const given of [[], ['--guest-mac', guestMac]]) {
      const r = cli(['--primary', p, '--secondary', s, '--json', '--quiet', ...given]);
      assert.equal(r.code, 0, `${name} ${given.join(' ')}: ${r.stderr}`);
      const report = JSON.parse(r.stdout) as JsonReport & { clientFrames: number };
      assert.deepEqual([report.primaryFrames, report.secondaryFrames, report.clientFrames, report.released], [2, 2, 3, 2], `${name} ${given.join(' ')}`);
    }
    // A record short of its cooked header says nothing of what it carries: fed as Ethernet, its
    // bytes passed for a frame of some other kind, compared and released without a word.
    const header = linkType === 113 ? 16 : 20;
    const cut = [...primary.map(cook)];
    cut.splice(2, 0, cook(primary[3]!).subarray(0, header - 1));
    const short = await writeCapture(`${name}-short.pcapng`, cut, 0, linkType);
    assertOneLineError(cli(['--primary', short, '--secondary', s, '--guest-mac', guestMac]), new RegExp(`${name}-short\\.pcapng: frame at byte \\d+: ${header - 1} bytes, too short for the ${header}-byte header every frame of link type linux-${name} \\(${linkType}\\) starts with$`));
  }
  // A raw IP record without even the version nibble.
  const raw = await writeCapture('raw-empty.pcapng', [primary[1]!.subarray(14), new Uint8Array(0)], 0, 101);
  assertOneLineError(cli(['--primary', raw, '--secondary', raw]), /raw-empty\.pcapng: frame at byte \d+: 0 bytes, too short for the IP version every frame of link type raw \(101\) starts with$/);
});

/**
 * Four sockets of a comparator that accepts and, when `barrier`, releases the first chunk it
 * reads on primary_in (the start-up barrier) and nothing after; otherwise never answers.
 */
async function stuckComparator(barrier: boolean): Promise<{ spec: string; accepted: () => number; close: () => void }> {
  const sockets = mkdtempSync(join(tmpdir(), 'colo-stuck-'));
  let accepted = 0;
  let outdev: Socket | undefined;
  let released = false;
  const servers = ['p', 's', 'o', 'n'].map((n) => createServer((c) => {
    accepted++;
    if (n === 'o') outdev = c;
    if (n === 'p' && barrier) c.on('data', (chunk: Buffer) => {
      if (!released && outdev !== undefined) outdev.write(chunk);
      released ||= outdev !== undefined;
    });
  }).listen(join(sockets, n)));
  await Promise.all(servers.map((srv) => once(srv, 'listening')));
  return {
    spec: ['p', 's', 'o', 'n'].map((n) => `unix:${join(sockets, n)}`).join(','),
    accepted: () => accepted,
    close: () => {
      for (const srv of servers) srv.close();
      rmSync(sockets, { recursive: true, force: true });
    },
  };
}

test('replay cli: --against a comparator that releases nothing fails before our replay, --out left as it was', async () => {
  const other = await stuckComparator(false);
  try {
    const out = join(dir, 'against-stuck.pcapng');
    writeFileSync(out, 'earlier');
    const child = spawn(process.execPath, coloProxyArgv(['replay', '--primary', P, '--secondary', join(dir, 's-same.pcapng'), '--out', out, '--quiet', '--against', other.spec]));
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 2, stderr);
    assert.match(stderr, /^colo-proxy: replay: --against: comparator at \S+ released nothing on outdev \(start-up barrier lost\)\n$/);
    assert.equal(readFileSync(out, 'utf8'), 'earlier', 'our replay never ran');
  } finally {
    other.close();
  }
});

test('replay cli: SIGINT while --against waits on the other comparator stops it, and says --out was written', async () => {
  // The comparator takes the start-up barrier, then our replay runs (--out in place), then it
  // releases nothing of the captures: the final barrier waits.
  const other = await stuckComparator(true);
  try {
    const out = join(dir, 'against-sigint.pcapng');
    rmSync(out, { force: true });
    const child = spawn(process.execPath, coloProxyArgv(['replay', '--primary', P, '--secondary', join(dir, 's-same.pcapng'), '--out', out, '--quiet', '--against', other.spec]));
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    while (statSync(out, { throwIfNoEntry: false }) === undefined && child.exitCode === null) await sleep(10);
    assert.equal(other.accepted(), 4, 'connected before our replay');
    child.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /stopped by SIGINT before the end; .*against-sigint\.pcapng holds our replay's released frames \(the --against run did not finish\)\n$/);
    const written: Uint8Array[] = [];
    for await (const f of readCaptureFile(out)) written.push(f.data);
    assert.equal(written.length, primaryFrames.length);
  } finally {
    other.close();
  }
});

/** A little-endian pcapng by hand: an interface with if_tsoffset `offsetS` (µs units), and one EPB per frame at `timeUs`. */
function pcapngWithOffset(offsetS: number, frames: { timeUs: number | bigint; data: Uint8Array }[]): Uint8Array {
  return concat(pcapngSection(), pcapngInterface(1, offsetS), ...frames.map((f) => pcapngPacket(0, f.timeUs, f.data)));
}

test('replay cli: --out is a valid capture with no frames, and holds frames timed before 1970 or of 256 KiB, the most a captured frame can have', async () => {
  const empty = await writeCapture('header-only.pcapng', []);
  const none = join(dir, 'none-out.pcapng');
  // The primary guest says nothing, so nothing is released; the secondary's output times out.
  const r = cli(['--primary', empty, '--secondary', join(dir, 's-same.pcapng'), '--out', none, '--quiet']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(runTool('capinfos', ['-c', '-M', none]).match(/Number of packets:\s+(\d+)/)?.[1], '0');

  // Times 100 s before the epoch (a negative if_tsoffset), and a 262,144-byte frame (one more is
  // refused: see "a frame captured short of its length...").
  const big = new Uint8Array(262_144).fill(0x42);
  big.set(out({ seq: 1, payload: 'x' }).subarray(0, 14));
  const frames = [{ timeUs: 1000, data: out({ seq: 1001, flags: TCP_SYN | TCP_ACK }) }, { timeUs: 2000, data: big }];
  const odd = join(dir, 'odd.pcapng');
  writeFileSync(odd, pcapngWithOffset(-100, frames));
  const written = join(dir, 'odd-out.pcapng');
  const m = join(dir, 'odd-mismatches');
  const ok = cli(['--primary', odd, '--secondary', odd, '--out', written, '--mismatch-dir', m, '--quiet']);
  assert.equal(ok.code, 0, ok.stderr);
  const back: number[] = [];
  for await (const f of readCaptureFile(written)) back.push(f.data.length);
  assert.deepEqual(back, frames.map((f) => f.data.length), 'both frames released and written whole');
  assert.deepEqual(runTool('tshark', ['-r', written, '-T', 'fields', '-e', 'frame.cap_len']).trim().split('\n'), back.map(String), 'and tshark reads them');
});

test('replay cli: times past what pcapng holds (nanoseconds read as microseconds: year 57971) are written as its last time, counted and warned of', () => {
  // A writer that stored nanoseconds and left out if_tsresol: readers take them as microseconds.
  const frames = (payload: string, offsetNs: bigint): { timeUs: bigint; data: Uint8Array }[] => [
    { timeUs: 1_767_225_600_000_000_000n + offsetNs, data: out({ seq: 1000, flags: TCP_SYN | TCP_ACK }) },
    { timeUs: 1_767_225_600_001_000_000n + offsetNs, data: out({ seq: 1001, payload }) },
  ];
  const p = join(dir, 'far-p.pcapng');
  const s = join(dir, 'far-s.pcapng');
  writeFileSync(p, pcapngWithOffset(0, frames('A'.repeat(100), 0n)));
  writeFileSync(s, pcapngWithOffset(0, frames('B'.repeat(100), 500n)));
  const written = join(dir, 'far-out.pcapng');
  const m = join(dir, 'far-mismatches');
  const r = cli(['--primary', p, '--secondary', s, '--out', written, '--mismatch-dir', m]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /warning: --out: 2 frames written have capture times pcapng cannot hold .*after 2554-07-21/);
  // Said without --out too: both files agree, so nothing else would show the time is stretched.
  assert.match(r.stderr, /warning: capture times start in the year 57971, past any real capture: a writer's unit error .* timeouts in this replay are not to be trusted/);
  assert.match(cli(['--primary', p, '--secondary', s]).stderr, /warning: capture times start in the year 57971/);
  // 2^64 microseconds, about the year 586,000: past what a Date holds ("the year NaN" before).
  const farther = join(dir, 'farther.pcapng');
  writeFileSync(farther, pcapngWithOffset(0, [0n, 1000n].map((t, i) => ({ timeUs: 0xffffffffffff0000n + t, data: frames('A', 0n)[i]!.data }))));
  assert.match(cli(['--primary', farther, '--secondary', farther]).stderr, /warning: capture times start after the year 275760, past any real capture/);
  assert.match(r.stderr, /warning: --mismatch-dir: \d+ frames written have capture times pcapng cannot hold/);
  const times = runTool('tshark', ['-r', written, '-n', '-T', 'fields', '-e', 'frame.time_epoch']).trim().split('\n');
  assert.deepEqual(times, ['18446744073.709551615', '18446744073.709551615']);
  const files = readdirSync(m);
  assert.equal(files.length, 1);
  assert.match(runTool('capinfos', ['-c', join(m, files[0]!)]), /Number of packets:\s+[1-9]/);
});

test('replay cli: no guest output in either capture is a one-line error, exit 2; none in one is a warning', async () => {
  const empty = await writeCapture('no-frames.pcapng', []);
  const earlier = join(dir, 'no-guest-out.pcapng');
  writeFileSync(earlier, 'earlier');
  assertOneLineError(cli(['--primary', empty, '--secondary', empty, '--out', earlier]), new RegExp(`^colo-proxy: replay: nothing to compare: neither ${empty} nor ${empty} holds a frame$`));
  // A --guest-mac that sent nothing: every frame is taken for client input.
  assertOneLineError(cli(['--primary', P, '--secondary', join(dir, 's-same.pcapng'), '--guest-mac', '52:54:00:00:00:99', '--out', earlier]),
    /^colo-proxy: replay: nothing to compare: neither .*p\.pcapng nor .*s-same\.pcapng holds a frame from the guest MAC 52:54:00:00:00:99 \(--guest-mac\)$/);
  assert.equal(readFileSync(earlier, 'utf8'), 'earlier', '--out is left as it was');
  const oneSided = cli(['--primary', P, '--secondary', empty]);
  assert.equal(oneSided.code, 1, oneSided.stderr);
  assert.match(oneSided.stderr, new RegExp(`warning: ${empty} \\(--secondary\\) holds no frame: the other guest's output had nothing to be compared with`));
});

interface AgainstJson {
  against: { comparator: string; primaryFrames: number; secondaryFrames: number; released: number; lost: number; duplicated: number; reordered: number; checkpoints: unknown[]; helloAnswered: boolean };
  coloProxy: JsonReport;
}

test('replay cli: --against-qemu plays the captures into QEMU\'s colo-compare as its controller; identical output needs no checkpoint there either', () => {
  const r = cli(['--primary', P, '--secondary', join(dir, 's-same.pcapng'), '--against-qemu', '--json', '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const { against, coloProxy } = JSON.parse(r.stdout) as AgainstJson;
  // The same words every run: QEMU's temporary socket directory is DIR.
  assert.match(against.comparator, /^QEMU colo-compare \(qemu-system-x86_64 -machine none .* -chardev socket,id=primary_in,path=DIR\/primary_in,server=on,wait=off /);
  assert.equal(against.helloAnswered, true);
  assert.equal(against.primaryFrames, primaryFrames.length);
  assert.equal(against.secondaryFrames, 5);
  assert.deepEqual([against.released, against.lost, against.duplicated, against.reordered], [primaryFrames.length, 0, 0, 0]);
  assert.deepEqual(against.checkpoints, []);
  assert.deepEqual(coloProxy.checkpoints, []);
});

test('replay cli: --against-qemu shows a payload difference on both comparators side by side, nothing lost', () => {
  const r = cli(['--primary', P, '--secondary', join(dir, 's-diff.pcapng'), '--against-qemu', '--quiet']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /against: QEMU colo-compare \(qemu-system-x86_64 -machine none/);
  assert.match(r.stdout, /released +5 of 5: 0 lost, 0 duplicated/);
  assert.match(r.stdout, /colo-proxy \(virtual clock\) +diverged: 1 checkpoint \(tcp\.payload 1\); released 5/);
  assert.match(r.stdout, /QEMU +diverged: [1-9]\d* checkpoints?; released 5, lost 0/);
});

/**
 * `replay --against-qemu` of P against a silent SVM (QEMU holds the PVM's frames for its compare
 * timeout, so the run lasts seconds) with its own TMPDIR, once QEMU listens: the replay, the QEMU
 * socket directory and QEMU's process id.
 */
async function replayAgainstRunningQemu(name: string): Promise<{ child: ReturnType<typeof spawn>; tmp: string; qemuDir: () => string[]; qemuPid: number; stderr: () => string }> {
  const silent = await writeCapture(`${name}-silent.pcapng`, []);
  const tmp = mkdtempSync(join(dir, `${name}-tmp-`));
  const child = spawn(process.execPath, coloProxyArgv(['replay', '--primary', P, '--secondary', silent, '--quiet', '--against-qemu']), { env: { ...process.env, TMPDIR: tmp } });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const qemuDir = (): string[] => readdirSync(tmp).filter((n) => n.startsWith('colo-replay-qemu-'));
  let qemuPid = -1;
  for (const until = Date.now() + 20_000; qemuPid === -1; await sleep(20)) {
    if (Date.now() > until || child.exitCode !== null) {
      child.kill('SIGKILL');
      assert.fail(`QEMU never listened; stderr: ${stderr}`);
    }
    const d = qemuDir()[0];
    if (d === undefined || !existsSync(join(tmp, d, 'notify_dev'))) continue;
    for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
      if (cmdline.some((a) => a.endsWith('qemu-system-x86_64')) && cmdline.some((a) => a.includes(join(tmp, d)))) qemuPid = Number(pid);
    }
  }
  return { child, tmp, qemuDir, qemuPid, stderr: () => stderr };
}

const running = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

test('replay cli: --against-qemu stopped by a second signal at once still stops QEMU and removes its socket directory', async () => {
  const r = await replayAgainstRunningQemu('second-signal');
  const exited = once(r.child, 'exit') as Promise<[number | null, string | null]>;
  r.child.kill('SIGINT');
  while (!r.stderr().includes('\n') && r.child.exitCode === null) await sleep(5);
  r.child.kill('SIGTERM');
  const [code, signal] = await exited;
  assert.ok(signal === 'SIGTERM' || code === 130, `code ${code}, signal ${signal}: ${r.stderr()}`);
  assert.deepEqual(r.qemuDir(), [], 'no socket directory left');
  for (const until = Date.now() + 5000; running(r.qemuPid) && Date.now() < until;) await sleep(20);
  assert.equal(running(r.qemuPid), false, 'QEMU gone');
});

test('replay cli: --against-qemu killed outright (SIGKILL) takes QEMU with it', async () => {
  const r = await replayAgainstRunningQemu('sigkill');
  r.child.kill('SIGKILL');
  for (const until = Date.now() + 5000; running(r.qemuPid) && Date.now() < until;) await sleep(20);
  const alive = running(r.qemuPid);
  if (alive) process.kill(r.qemuPid, 'SIGKILL');
  assert.equal(alive, false, 'QEMU died with the replay');
});

test('replay cli: --against-qemu says why QEMU died (here an assertion on a zero-length frame), every time', async () => {
  const zero = await writeCapture('zero-length.pcapng', [new Uint8Array(0)]);
  for (let i = 0; i < 3; i++) {
    const r = cli(['--primary', zero, '--secondary', zero, '--quiet', '--against-qemu']);
    assertOneLineError(r, /^colo-proxy: replay: --against-qemu: qemu-system-x86_64 exited \(code null, signal SIGABRT\): .*Assertion/);
  }
});

/** Runs `fn` with a colo-proxy compare listening on four UNIX sockets; it gets them as an --against value. */
function withOurCompare(fn: (against: string) => void): void {
  const sockets = mkdtempSync(join(tmpdir(), 'colo-against-'));
  const names = ['primary_in', 'secondary_in', 'outdev', 'notify_dev'];
  const flagsOf = ['--primary-in', '--secondary-in', '--outdev', '--notify-dev'];
  const child = spawn(process.execPath, coloProxyArgv(['compare', ...names.flatMap((n, i) => [flagsOf[i]!, `unix:${join(sockets, n)},server`])]), { stdio: 'ignore' });
  try {
    fn(names.map((n) => `unix:${join(sockets, n)}`).join(','));
  } finally {
    child.kill('SIGKILL');
    rmSync(sockets, { recursive: true, force: true });
  }
}

test('replay cli: --against takes any comparator on four sockets: here colo-proxy compare itself', () => {
  withOurCompare((against) => {
    const r = cli(['--primary', P, '--secondary', join(dir, 's-diff.pcapng'), '--json', '--quiet', '--against', against]);
    assert.equal(r.code, 1, r.stderr);
    const j = JSON.parse(r.stdout) as AgainstJson;
    assert.equal(j.against.checkpoints.length, j.coloProxy.checkpointCount, 'the live compare and the replay agree on the episodes');
    assert.deepEqual([j.against.released, j.against.lost, j.against.duplicated, j.against.reordered], [primaryFrames.length, 0, 0, 0]);
  });
});

test('replay cli: --against a comparator that pauses an input (the SVM far ahead) feeds the other on, as two VMs would: no false timeout', async () => {
  // 900 segments of 1448 bytes, the SVM's all sent before the PVM's first: colo-proxy compare
  // stops reading secondary_in past 512 waiting frames until the PVM's catch up.
  const body = 'x'.repeat(900 * 1448);
  const cuts = Array.from({ length: 899 }, (_, i) => (i + 1) * 1448);
  const [p, s] = [join(dir, 'ahead-p.pcapng'), join(dir, 'ahead-s.pcapng')];
  await download('ahead-p.pcapng', body, cuts, 1000);
  await download('ahead-s.pcapng', body, cuts, 0);
  withOurCompare((against) => {
    const r = cli(['--primary', p, '--secondary', s, '--json', '--quiet', '--against', against]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as AgainstJson;
    assert.deepEqual(j.coloProxy.checkpoints, []);
    assert.deepEqual(j.against.checkpoints, [], 'no checkpoint from the live compare either');
    assert.deepEqual([j.against.released, j.against.lost, j.against.duplicated, j.against.reordered], [902, 0, 0, 0]);
  });
});

test('replay cli: --against reports a comparator that loses, duplicates and reorders frames, and lists what it keeps of a flood', async () => {
  // A fake colo-compare: it passes the barriers, drops the 2nd primary frame, sends the 3rd twice
  // and the 4th after the 5th; on notify_dev it answers the hello, sends 25 unknown messages, then
  // asks for 1,005 checkpoints, one after another.
  const sockets = mkdtempSync(join(tmpdir(), 'colo-fake-'));
  const peers = new Map<string, Socket>();
  const servers = ['p', 's', 'o', 'n'].map((n) => createServer((c) => {
    peers.set(n, c);
    c.on('error', () => undefined);
    if (n === 'p') {
      const decoder = new QemuPacketDecoder({ vnetHeader: false });
      const toOutdev = (f: Uint8Array): void => void peers.get('o')?.write(encodeQemuFrame(f));
      let index = 0;
      let held: Uint8Array | undefined;
      c.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          const frame = Uint8Array.from(f);
          if (Buffer.from(frame).includes('colo-replay-barrier-')) {
            toOutdev(frame);
            continue;
          }
          const n = index++;
          if (n === 1) continue; // lost
          if (n === 3) {
            held = frame; // out after the next one
            continue;
          }
          toOutdev(frame);
          if (n === 2) toOutdev(frame); // duplicated
          if (n === 4 && held !== undefined) toOutdev(held);
        }
      });
    } else if (n === 'n') {
      const decoder = new NotifyDecoder();
      let asked = 0;
      c.on('data', (chunk: Buffer) => {
        for (const m of decoder.push(chunk)) {
          if (m.text === COLO_USERSPACE_PROXY_INIT) {
            c.write(encodeNotify(COLO_COMPARE_GET_XEN_INIT));
            for (let i = 0; i < 25; i++) c.write(encodeNotify(`FAKE_${i}`));
          }
          if ((m.text === COLO_USERSPACE_PROXY_INIT || m.text === COLO_CHECKPOINT) && asked < 1005) {
            asked++;
            c.write(encodeNotify(DO_CHECKPOINT));
          }
        }
      });
    } else c.resume();
  }).listen(join(sockets, n)));
  try {
    await Promise.all(servers.map((srv) => once(srv, 'listening')));
    const child = spawn(process.execPath, coloProxyArgv(['replay', '--primary', P, '--secondary', join(dir, 's-same.pcapng'), '--json', '--quiet',
      '--checkpoint-ms', '0', '--compare-timeout', '100', '--expired-scan-cycle', '50',
      '--against', ['p', 's', 'o', 'n'].map((n) => `unix:${join(sockets, n)}`).join(',')]));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 1, stderr);
    const { against } = JSON.parse(stdout) as { against: { released: number; lost: number; lostFlows: number; duplicated: number; reordered: number; checkpointCount: number; checkpoints: unknown[]; otherNotifyCount: number; otherNotify: string[] } };
    assert.equal(primaryFrames.length, 5);
    assert.deepEqual([against.released, against.lost, against.lostFlows, against.duplicated, against.reordered], [4, 1, 1, 1, 1]);
    assert.deepEqual([against.checkpointCount, against.checkpoints.length], [1005, 1000]);
    assert.deepEqual([against.otherNotifyCount, against.otherNotify.length, against.otherNotify[0]], [25, 20, 'FAKE_0']);
  } finally {
    for (const srv of servers) srv.close();
    for (const c of peers.values()) c.destroy();
    rmSync(sockets, { recursive: true, force: true });
  }
});

test('replay cli: --against with a bad endpoint list is a one-line error', () => {
  assertOneLineError(cli(['--primary', P, '--secondary', P, '--against', 'unix:/a,unix:/b']), /--against needs four endpoints/);
  assertOneLineError(cli(['--primary', P, '--secondary', P, '--against', 'unix:/a,unix:/b,unix:/c,unix:/d,server']), /--against/);
  assertOneLineError(cli(['--primary', P, '--secondary', P, '--against-qemu', '--against', 'unix:/a,unix:/b,unix:/c,unix:/d']), /exclude each other/);
});

test('replay cli: a report written into a pipe whose reader has gone ends quietly with 141, as SIGPIPE would', async () => {
  // stdout: a FIFO's write end whose only reader closed before the replay started, so the
  // first write of the report fails with EPIPE (`replay ... | head -1`, without the race).
  const fifo = join(dir, 'gone-reader.fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = await open(fifo, constants.O_WRONLY);
  await reader.close();
  try {
    const r = spawnSync(process.execPath, coloProxyArgv(['replay', '--primary', P, '--secondary', join(dir, 's-diff.pcapng')]), { stdio: ['ignore', writer.fd, 'pipe'], encoding: 'utf8' });
    assert.equal(r.stderr, '', 'no stack, nothing at all on stderr');
    assert.equal(r.status, 141);
  } finally {
    await writer.close();
  }
});

test('replay cli: a report that cannot be written (a full disk) is one line and exit 2, not a stack and the verdict\'s 1', async () => {
  const full = await open('/dev/full', constants.O_WRONLY);
  try {
    const r = spawnSync(process.execPath, coloProxyArgv(['replay', '--primary', P, '--secondary', join(dir, 's-diff.pcapng')]), { stdio: ['ignore', full.fd, 'pipe'], encoding: 'utf8' });
    assert.equal(r.stderr, 'colo-proxy: cannot write to standard output: ENOSPC\n');
    assert.equal(r.status, 2);
  } finally {
    await full.close();
  }
});

test('replay cli: --out /dev/stdout into a pipe whose reader has gone ends quietly with 141 too', async () => {
  // 3 MB of released frames through `| head -c 100`: far more than the pipe holds once head is gone.
  const body = pattern(0, 2000 * 1400);
  await download('big-p.pcapng', body, Array.from({ length: 1999 }, (_, i) => (i + 1) * 1400), 0);
  await download('big-s.pcapng', body, Array.from({ length: 1999 }, (_, i) => (i + 1) * 1400), 0.3);
  const replay = coloProxyCommandLine(['replay', '--primary', join(dir, 'big-p.pcapng'), '--secondary', join(dir, 'big-s.pcapng'), '--out', '/dev/stdout', '--quiet']);
  const r = spawnSync('bash', ['-c', `${replay} 2>'${join(dir, 'big.err')}' | head -c 100 >/dev/null; echo \${PIPESTATUS[0]}`], { encoding: 'utf8' });
  assert.equal(readFileSync(join(dir, 'big.err'), 'utf8'), '', 'no error line: the reader chose to stop reading');
  assert.equal(r.stdout.trim(), '141');
});

test('replay cli: a progress bar on stderr only when it is a terminal, and never with --quiet', () => {
  // `script` (util-linux) gives the command a pseudo-terminal; its output is what the terminal showed.
  const onTerminal = (extra: string): string => {
    const command = `${coloProxyCommandLine(['replay', '--primary', P, '--secondary', join(dir, 's-same.pcapng'), ...(extra === '' ? [] : [extra])])} >/dev/null`;
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  assert.match(onTerminal(''), /replay \[[-=]*\] +\d+%/);
  assert.doesNotMatch(onTerminal('--quiet'), /replay \[/);
  assert.doesNotMatch(cli(['--primary', P, '--secondary', join(dir, 's-same.pcapng')]).stderr, /replay \[/);
});
