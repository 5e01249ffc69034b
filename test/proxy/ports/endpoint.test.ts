import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { parseEndpoint, sameSocket } from '../../../proxy/ports/endpoint.js';
import { UsageError } from '../../../proxy/cli/errors.js';

test('endpoints in QEMU chardev spelling', () => {
  const cases: [string, object][] = [
    ['tcp:127.0.0.1:9003', { kind: 'tcp', host: '127.0.0.1', port: 9003, server: false }],
    ['tcp:localhost:9003,server', { kind: 'tcp', host: 'localhost', port: 9003, server: true }],
    ['tcp::9003,server=on,wait=off', { kind: 'tcp', host: '0.0.0.0', port: 9003, server: true }],
    ['tcp:[::1]:9003', { kind: 'tcp', host: '::1', port: 9003, server: false }],
    ['unix:/run/colo/primary.sock,server', { kind: 'unix', path: '/run/colo/primary.sock', server: true }],
    ['unix:rel.sock', { kind: 'unix', path: 'rel.sock', server: false }],
    // QEMU's other spellings of a boolean, and options that change nothing here.
    ['tcp::9003,server=yes,wait=no,nodelay', { kind: 'tcp', host: '0.0.0.0', port: 9003, server: true }],
    ['tcp:127.0.0.1:9003,server=n,nodelay=on,reconnect=1', { kind: 'tcp', host: '127.0.0.1', port: 9003, server: false }],
    ['unix:/run/c.sock,server=true,nowait', { kind: 'unix', path: '/run/c.sock', server: true }],
  ];
  for (const [text, expected] of cases) assert.deepEqual(parseEndpoint('--outdev', text), { ...expected, text }, text);
  for (const host of ['colo-host.example', 'node7', 'colo_primary', '192.0.2.1', '[2001:db8::1]', '[fe80::1%eth0]', '[::ffff:10.0.0.1]']) {
    assert.equal(parseEndpoint('--outdev', `tcp:${host}:9000`).kind, 'tcp', host);
  }
  assert.equal(parseEndpoint('--outdev', `unix:/${'x'.repeat(106)}`).kind, 'unix', 'a 107-byte path fits');
});

test('endpoints on the same socket: unix paths after resolving, TCP host and port, listening or not', () => {
  const same = (a: string, b: string): boolean => sameSocket(parseEndpoint('--a', a), parseEndpoint('--b', b));
  assert.ok(same('unix:/run/c.sock,server', 'unix:/run/c.sock'));
  assert.ok(same('unix:c.sock', `unix:${process.cwd()}/./c.sock,server`));
  assert.ok(same('tcp:127.0.0.1:9003,server', 'tcp:127.0.0.1:9003'));
  assert.ok(same('tcp:LocalHost:9003', 'tcp:localhost:9003'));
  assert.ok(!same('unix:/run/a.sock', 'unix:/run/b.sock'));
  assert.ok(!same('tcp:127.0.0.1:9003', 'tcp:127.0.0.1:9004'));
  assert.ok(!same('tcp:127.0.0.1:9003', 'tcp:127.0.0.2:9003'));
  assert.ok(same('tcp:localhost:9003', 'tcp:127.0.0.1:9003,server'));
  assert.ok(same('tcp:[::ffff:127.0.0.1]:9000,server', 'tcp:127.0.0.1:9000'), 'an IPv4-mapped IPv6 address is that IPv4 address');
  assert.ok(same('tcp:[0:0:0:0:0:0:0:1]:9000,server', 'tcp:[::1]:9000'), 'IPv6 spelled long or short');
  assert.ok(same('tcp:[FE80::1%eth0]:9000', 'tcp:[fe80::1%eth0]:9000,server'));
  assert.ok(!same('tcp:[fe80::1%eth0]:9000', 'tcp:[fe80::1%eth1]:9000,server'), 'the same link-local address on two interfaces');
});

test('endpoints on the same socket: a listener on every address and a dialler to this machine on its port', () => {
  const same = (a: string, b: string): boolean => sameSocket(parseEndpoint('--a', a), parseEndpoint('--b', b));
  for (const [listener, dialler] of [['tcp::9003,server', 'tcp::9003'], ['tcp:0.0.0.0:9003,server', 'tcp:127.0.0.1:9003'], ['tcp:[::]:9003,server', 'tcp:[::1]:9003'], ['tcp:0.0.0.0:9003,server', 'tcp:localhost:9003']]) {
    assert.ok(same(listener!, dialler!), `${listener} and ${dialler}`);
    assert.ok(same(dialler!, listener!), `${dialler} and ${listener}`);
  }
  const own = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
  if (own !== undefined) assert.ok(same('tcp:0.0.0.0:9003,server', `tcp:${own.address}:9003`), `this machine's ${own.address}`);
  assert.ok(same('tcp:0.0.0.0:9003,server', 'tcp:10.9.9.9:9003,server'), 'two listeners on one port');
  assert.ok(!same('tcp:0.0.0.0:9003,server', 'tcp:192.0.2.7:9003'), 'a dialler to another machine');
  assert.ok(!same('tcp:0.0.0.0:9003,server', 'tcp:127.0.0.1:9004'));
  assert.ok(!same('tcp:10.9.9.9:9003,server', 'tcp:10.9.9.8:9003,server'), 'listeners on two given addresses');
});

test('a bad endpoint is one line naming the flag, the problem and the accepted forms', () => {
  const cases: [string, RegExp][] = [
    ['udp:1.2.3.4:5', /^--primary-in: unknown kind in "udp:1\.2\.3\.4:5" \(expected tcp:HOST:PORT\[,server\] or unix:PATH\[,server\]\)$/],
    ['tcp:1.2.3.4', /no HOST:PORT/],
    ['tcp:1.2.3.4:0', /port 0 out of range 1-65535/],
    ['tcp:1.2.3.4:70000', /port 70000 out of range/],
    ['unix:', /empty socket path/],
    ['unix:/x,reconnect=soon', /unknown option "reconnect=soon"/],
    ['unix:/x,server=maybe', /unknown option "server=maybe"/],
    ['unix:/x,bogus', /unknown option "bogus"/],
    [`unix:/${'x'.repeat(107)},server`, /^--primary-in: unix socket path of 108 bytes in "unix:\/x+,server" is too long \(at most 107; the kernel would cut it short\)$/],
    [`unix:/${'\u00e9'.repeat(54)}`, /unix socket path of 109 bytes/],
    ['tcp:[zz::1]:9000', /"\[zz::1\]" is not an IPv6 address/],
    ['tcp:999.1.1.1:9000', /"999\.1\.1\.1" is not an IPv4 address/],
    ['tcp:1.2.3:9000', /"1\.2\.3" is not an IPv4 address/],
    ['tcp:[fe80::1]:9000', /link-local address \[fe80::1\] without its interface \(as \[fe80::1%IFACE\]\)/],
    ['tcp:a..b:9000', /"a\.\.b" is not a host name/],
    ['tcp:host*:9000', /"host\*" is not a host name/],
    ['tcp:-x.example:9000', /"-x\.example" is not a host name/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseEndpoint('--primary-in', text), (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'), text);
  }
});
