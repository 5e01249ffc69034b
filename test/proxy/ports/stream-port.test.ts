/**
 * StreamPort edge cases not reached through `compare`'s end-to-end tests: a dial still in flight
 * when the port is closed (the peer is a loopback listener that never accepts, its backlog full,
 * so the kernel drops our SYN and the connect stays pending until the listener starts accepting),
 * and what a listening unix port finds at its path.
 */

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamPort, type StreamPortHandlers } from '../../../proxy/ports/stream-port.js';
import { parseEndpoint } from '../../../proxy/ports/endpoint.js';
import { dial, waitFor } from '../../support/socket-peer.js';

const dir = mkdtempSync(join(tmpdir(), 'colo-proxy-stream-port-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const quiet: StreamPortHandlers = { connected: () => {}, data: () => {}, disconnected: () => {}, drained: () => {} };

/** A python listener with backlog 0 that accepts nothing until it reads a line on stdin; prints its port. */
const LISTENER = `
import socket, sys
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
print(s.getsockname()[1], flush=True)
sys.stdin.readline()
s.settimeout(5)
try:
    while True:
        c, _ = s.accept(); print('accepted', flush=True)
except socket.timeout:
    pass
`;

test('stream port: a dial still in flight when the port closes never connects afterwards', async () => {
  const py = spawn('python3', ['-c', LISTENER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const fillers: Socket[] = [];
  let p: StreamPort | undefined;
  try {
    let out = '';
    py.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    while (!/\n/.test(out)) await once(py.stdout!, 'data');
    const port = Number(out.split('\n')[0]);
    // Fill the backlog, so that the next SYN is dropped and its connect hangs.
    for (let i = 0; i < 3; i++) fillers.push(connect(port, '127.0.0.1').on('error', () => {}));
    await new Promise((r) => setTimeout(r, 200));
    let connected = 0;
    p = new StreamPort(parseEndpoint('--outdev', `tcp:127.0.0.1:${port}`), {
      connected: () => connected++, data: () => {}, disconnected: () => {}, drained: () => {},
    });
    await p.start();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(connected, 0, 'the dial is still in flight');
    await p.close();
    // The listener now accepts everything, ours included were it still dialling (its SYN is retried within ~3 s).
    py.stdin!.write('go\n');
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(connected, 0, 'a closed port connected');
    assert.ok((out.match(/accepted/g) ?? []).length >= 1, 'the listener did accept the connections queued at it');
  } finally {
    await p?.close(); // again: were the dial to connect after all, this lets the test end
    for (const f of fillers) f.destroy();
    py.kill();
  }
});

test('stream port: a listening unix port takes the path of a stale socket, never a file or a live socket', async () => {
  // A stale socket: bound by a process that is gone, nobody listening.
  const stale = join(dir, 'stale.sock');
  execFileSync('python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale]);
  assert.ok(lstatSync(stale).isSocket());
  const p = new StreamPort(parseEndpoint('--primary-in', `unix:${stale},server`), quiet);
  try {
    await p.start();
    (await dial(stale, 1000)).destroy();
  } finally {
    await p.close();
  }

  const file = join(dir, 'file');
  writeFileSync(file, 'not a socket');
  const onFile = new StreamPort(parseEndpoint('--primary-in', `unix:${file},server`), quiet);
  try {
    await assert.rejects(onFile.start(), new Error(`${file} exists and is not a socket`));
  } finally {
    await onFile.close();
  }
  assert.equal(readFileSync(file, 'utf8'), 'not a socket', 'the file is left alone');

  // Its directory missing is said so (libuv would say EACCES); one that cannot be looked at, why.
  for (const [sub, message] of [['missing', `no directory ${join(dir, 'missing')} for ${join(dir, 'missing', 's.sock')}`], ['loop', `${join(dir, 'loop')}: ELOOP: too many symbolic links encountered`]] as const) {
    if (sub === 'loop') symlinkSync(join(dir, 'loop'), join(dir, 'loop'));
    const p = new StreamPort(parseEndpoint('--primary-in', `unix:${join(dir, sub, 's.sock')},server`), quiet);
    try {
      await assert.rejects(p.start(), new Error(message));
    } finally {
      await p.close();
    }
  }

  const live = join(dir, 'live.sock');
  let accepted = 0;
  const other = createServer((s) => {
    accepted++;
    s.destroy();
  });
  await new Promise<void>((r) => other.listen(live, r));
  try {
    const onLive = new StreamPort(parseEndpoint('--primary-in', `unix:${live},server`), quiet);
    try {
      await assert.rejects(onLive.start(), new Error(`${live} is in use by another process (it accepts connections)`));
    } finally {
      await onLive.close();
    }
    (await dial(live, 1000)).destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(accepted, 2, 'the other process still has its socket: it accepted the probe and then our connection');
  } finally {
    other.close();
  }
});

test('stream port: a connecting port says why it cannot connect at the first failure, not at every attempt', async () => {
  const path = join(dir, 'nobody.sock');
  const lines: string[] = [];
  let connected = 0;
  const p = new StreamPort(parseEndpoint('--outdev', `unix:${path}`), { ...quiet, connected: () => connected++, log: (line) => lines.push(line) });
  const server = createServer(() => {});
  try {
    await p.start();
    await waitFor('the first failure to be said', () => lines.length > 0);
    await new Promise((r) => setTimeout(r, 1600)); // attempts at 100, 200, 400 and 800 ms more
    assert.deepEqual(lines, [`cannot connect to unix:${path} (ENOENT); retrying`]);
    await new Promise<void>((r) => server.listen(path, r));
    await waitFor('the connection', () => connected === 1);
  } finally {
    await p.close();
    server.close();
  }
});

test('stream port: a peer that accepts and closes at once is redialled with growing backoff, one that stayed up at once', async () => {
  const path = join(dir, 'flapping.sock');
  const accepted: number[] = [];
  let hold = false;
  const server = createServer((s) => {
    accepted.push(performance.now());
    if (hold) setTimeout(() => s.destroy(), 1500);
    else s.destroy();
  });
  await new Promise<void>((r) => server.listen(path, r));
  const p = new StreamPort(parseEndpoint('--outdev', `unix:${path}`), quiet);
  try {
    await p.start();
    await new Promise((r) => setTimeout(r, 3000));
    // 100, 200, 400, 800, 1600 ms apart: 5 or so in 3 s; redialled every 100 ms, 30.
    assert.ok(accepted.length >= 2 && accepted.length <= 10, `${accepted.length} connections in 3 s`);
    hold = true;
    const before = accepted.length;
    await waitFor('a connection that is held', () => accepted.length === before + 1, 5000);
    await waitFor('the redial after it', () => accepted.length === before + 2, 5000);
    const gap = accepted[before + 1]! - accepted[before]! - 1500;
    assert.ok(gap < 1000, `redialled ${Math.round(gap)} ms after a connection that stayed up 1.5 s (the backoff had reached 2 s)`);
  } finally {
    await p.close();
    server.close();
  }
});

/** A listening port on a fresh unix path, recording what it reports. */
async function listeningPort(name: string): Promise<{ port: StreamPort; path: string; events: string[]; lines: string[] }> {
  const path = join(dir, name);
  const events: string[] = [];
  const lines: string[] = [];
  const port = new StreamPort(parseEndpoint('--secondary-in', `unix:${path},server`), {
    connected: () => events.push('connected'),
    data: (chunk) => events.push(chunk.toString()),
    disconnected: () => events.push('gone'),
    drained: () => {},
    log: (line) => lines.push(line),
  });
  await port.start();
  return { port, path, events, lines };
}

test('stream port: a peer connecting while another is connected waits for it to go, in order; one that closed meanwhile is skipped', async () => {
  const { port, path, events, lines } = await listeningPort('waiting.sock');
  const peers: Socket[] = [];
  const peer = async (): Promise<Socket> => {
    const s = (await dial(path)).on('error', () => {});
    peers.push(s);
    return s;
  };
  try {
    const a = await peer();
    await waitFor('the first peer', () => events.length === 1);
    const b = await peer();
    b.write('from b');
    const c = await peer();
    const d = await peer();
    d.write('from d');
    await new Promise((r) => setTimeout(r, 200)); // time for the port to accept them
    c.end();
    await new Promise((r) => setTimeout(r, 200)); // time to see c close
    assert.deepEqual(events, ['connected'], 'nothing from a waiting peer before it is taken');
    assert.ok(!b.destroyed && b.readyState === 'open', 'the waiting peer is not closed');
    a.end();
    await waitFor(() => `b taken; events ${JSON.stringify(events)}`, () => events.includes('from b'));
    b.end();
    await waitFor(() => `d taken; events ${JSON.stringify(events)}`, () => events.includes('from d'));
    assert.deepEqual(events, ['connected', 'gone', 'connected', 'from b', 'gone', 'connected', 'from d']);
    assert.deepEqual(lines, [1, 2, 3].map((n) => `a new peer waits until the current one goes (${n} waiting)`));
  } finally {
    for (const s of peers) s.destroy();
    await port.close();
  }
});

test('stream port: at most four peers wait; one more is refused, and said so', async () => {
  const { port, path, events, lines } = await listeningPort('crowded.sock');
  const peers: Socket[] = [];
  try {
    for (let i = 0; i < 5; i++) peers.push(await dial(path));
    await waitFor(() => `four waiting; log ${JSON.stringify(lines)}`, () => lines.length === 4);
    const refused = await dial(path);
    peers.push(refused);
    let closed = false;
    refused.on('error', () => {}).on('close', () => (closed = true)).resume();
    await waitFor('the sixth peer to be closed', () => closed);
    await waitFor(() => `the refusal said; log ${JSON.stringify(lines)}`, () => lines.length === 5);
    assert.equal(lines[4], 'refused a new peer: one is connected and 4 more are waiting');
    assert.deepEqual(events, ['connected']);
  } finally {
    for (const s of peers) s.destroy();
    await port.close();
  }
});

test('stream port: a write to a peer that has just gone, refused at once, goes to the next peer; none is lost or repeated', async () => {
  const path = join(dir, 'refused.sock');
  const dropped: (Buffer | null)[] = [];
  const port = new StreamPort(parseEndpoint('--outdev', `unix:${path},server`), {
    connected: () => {}, data: () => {}, drained: () => {},
    disconnected: (_reason, lost) => dropped.push(lost),
  });
  await port.start();
  const peers: Socket[] = [];
  try {
    const first = await dial(path);
    peers.push(first);
    await waitFor('the first peer taken', () => port.connected);
    assert.equal(port.write(Buffer.from('one;')), true);
    await waitFor('the first peer to read it', () => first.readableLength > 0 || first.bytesRead > 0);
    // The peer closes; in the same tick, before the port can see it, two writes: the first fails
    // at once (EPIPE) with the kernel taking none of it, the second waits behind it.
    first.destroy();
    port.write(Buffer.from('two;'));
    port.write(Buffer.from('three;'));
    await waitFor('the port to see the peer gone', () => !port.connected);
    const next = await dial(path);
    peers.push(next);
    let got = '';
    next.setEncoding('latin1').on('data', (d: string) => (got += d));
    await waitFor(() => `the next peer to get what the first never took (got ${JSON.stringify(got)}, dropped ${JSON.stringify(dropped)})`, () => got.length >= 'two;three;'.length || dropped.some((d) => d !== null));
    assert.equal(got, 'two;three;');
    assert.deepEqual(dropped, [null], 'no write was partly taken');
  } finally {
    for (const s of peers) s.destroy();
    await port.close();
  }
});

test('stream port: writes waiting for a peer that was gone when taken all go to the next one, in order', async () => {
  const path = join(dir, 'gone-when-taken.sock');
  const dropped: (Buffer | null)[] = [];
  let taken = 0;
  const port = new StreamPort(parseEndpoint('--outdev', `unix:${path},server`), {
    connected: () => taken++, data: () => {}, drained: () => {},
    disconnected: (_reason, lost) => dropped.push(lost),
  });
  await port.start();
  const peers: Socket[] = [];
  try {
    for (const w of ['a;', 'b;', 'c;']) port.write(Buffer.from(w));
    // A peer that connects and closes before it is taken (a probe, a restarting QEMU): the first
    // write to it fails at once, and nothing may be written to it after that. Synchronous, so
    // that this process accepts only once the probe has closed.
    execFileSync('python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.connect(${JSON.stringify(path)}); s.close()`]);
    await waitFor('the probe taken and seen gone', () => taken === 1 && !port.connected);
    const next = await dial(path);
    peers.push(next);
    let got = '';
    next.setEncoding('latin1').on('data', (d: string) => (got += d));
    await waitFor(() => `the next peer to get every waiting write (got ${JSON.stringify(got)}, dropped ${JSON.stringify(dropped)})`, () => got.length >= 'a;b;c;'.length || dropped.some((d) => d !== null));
    assert.equal(got, 'a;b;c;');
    assert.deepEqual(dropped, [null], 'nothing was taken by the probe, so nothing is dropped');
  } finally {
    for (const s of peers) s.destroy();
    await port.close();
  }
});

test('stream port: what a peer is sent while it is being taken goes after what waited for it', async () => {
  const path = join(dir, 'queued-first.sock');
  let port: StreamPort | undefined;
  port = new StreamPort(parseEndpoint('--outdev', `unix:${path},server`), {
    // The owner writes as soon as a peer is there (compare resumes its inputs, which may release frames).
    connected: () => port!.write(Buffer.from('new;')),
    data: () => {}, disconnected: () => {}, drained: () => {},
  });
  await port.start();
  const peers: Socket[] = [];
  try {
    port.write(Buffer.from('old-1;'));
    port.write(Buffer.from('old-2;'));
    const peer = await dial(path);
    peers.push(peer);
    let got = '';
    peer.setEncoding('latin1').on('data', (d: string) => (got += d));
    await waitFor(() => `all three writes (got ${JSON.stringify(got)})`, () => got.length >= 'old-1;old-2;new;'.length);
    assert.equal(got, 'old-1;old-2;new;');
  } finally {
    for (const s of peers) s.destroy();
    await port.close();
  }
});

test('stream port: what a dropped peer sent after the bad read never reaches the owner, waiting peer or not', async () => {
  for (const waiting of [true, false]) {
    const path = join(dir, `dropped-${waiting}.sock`);
    const events: string[] = [];
    const port: StreamPort = new StreamPort(parseEndpoint('--secondary-in', `unix:${path},server`), {
      connected: () => events.push('connected'),
      data: (chunk) => {
        events.push(chunk.toString());
        if (chunk.toString() === 'bad') port.drop('a framing error');
      },
      disconnected: (reason) => events.push(`gone: ${reason}`),
      drained: () => {},
    });
    await port.start();
    const peers: Socket[] = [];
    try {
      const a = (await dial(path)).on('error', () => {});
      peers.push(a);
      await waitFor('the first peer', () => events.length === 1);
      // Paused (as `compare` pauses an input while outdev is backed up), Node keeps reading: the
      // three writes wait in the socket's buffer as three reads.
      port.pause();
      for (const text of ['good', 'bad', 'after the bad one']) {
        a.write(text);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (waiting) {
        const b = (await dial(path)).on('error', () => {});
        peers.push(b);
        b.write('from b');
        await new Promise((r) => setTimeout(r, 100)); // time for the port to accept it
      }
      port.resume();
      await waitFor(() => `the drop; events ${JSON.stringify(events)}`, () => events.includes('gone: a framing error'));
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(events, ['connected', 'good', 'bad', 'gone: a framing error', ...(waiting ? ['connected', 'from b'] : [])], waiting ? 'with a peer waiting' : 'alone');
    } finally {
      for (const s of peers) s.destroy();
      await port.close();
    }
  }
});
