/**
 * IP options and IPv6 extension headers a guest chose (a source route, a router alert) are
 * compared always, for datagrams and for TCP connections alike, while what varies by itself in
 * them (IPv4 timestamps, AH, the Fragment header, padding after End of Option List) is not.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_SYN, TCP_ACK, decodeFrame, Frame } from '../../compare/index.js';
import { fillIpv4HeaderChecksum } from '../../compare/wire/checksum.js';
import { ipOptionsOf } from '../../compare/match/ip-options.js';
import { Twins } from '../support/twins.js';

const ISN = 1_000_000;
const ETH = 14;

/** `frame` (Ethernet, IPv4) with `options` (a multiple of 4 bytes) after its fixed IP header. */
function withIpv4Options(frame: Uint8Array, options: readonly number[]): Uint8Array {
  assert.equal(options.length % 4, 0);
  const out = new Uint8Array(frame.length + options.length);
  out.set(frame.subarray(0, ETH + 20));
  out.set(options, ETH + 20);
  out.set(frame.subarray(ETH + 20), ETH + 20 + options.length);
  out[ETH] = 0x40 | (5 + options.length / 4);
  const total = ((frame[ETH + 2]! << 8) | frame[ETH + 3]!) + options.length;
  out[ETH + 2] = total >> 8;
  out[ETH + 3] = total & 0xff;
  fillIpv4HeaderChecksum(out, ETH);
  return out;
}

/** `frame` (Ethernet, IPv6) with an extension header of protocol `type` and `body` (its bytes after next header and length). */
function withIpv6Extension(frame: Uint8Array, type: number, body: readonly number[]): Uint8Array {
  const isAh = type === 51;
  const length = 2 + body.length;
  assert.equal(length % 8, 0);
  const out = new Uint8Array(frame.length + length);
  out.set(frame.subarray(0, ETH + 40));
  out[ETH + 40] = frame[ETH + 6]!;
  out[ETH + 41] = isAh ? length / 4 - 2 : length / 8 - 1;
  out.set(body, ETH + 42);
  out.set(frame.subarray(ETH + 40), ETH + 40 + length);
  out[ETH + 6] = type;
  const payload = ((frame[ETH + 4]! << 8) | frame[ETH + 5]!) + length;
  out[ETH + 4] = payload >> 8;
  out[ETH + 5] = payload & 0xff;
  return out;
}

/** A loose source route (RFC 791) through `hops`, padded with End of Option List. */
function looseSourceRoute(...hops: number[][]): number[] {
  const o = [131, 3 + 4 * hops.length, 4, ...hops.flat()];
  while (o.length % 4 !== 0) o.push(0);
  return o;
}

/** An IPv4 Timestamp option (RFC 791), flags 0, with `stamps`. */
function timestamps(flags: number, ...stamps: number[]): number[] {
  const o = [68, 4 + 4 * stamps.length, 5, flags];
  for (const s of stamps) o.push(s >>> 24, (s >>> 16) & 0xff, (s >>> 8) & 0xff, s & 0xff);
  return o;
}

/** A Routing header (type 4 here, segments left 1) listing `segments` (16-byte addresses), after its own 2 bytes. */
function routing(...segments: number[]): number[] {
  const body = [4, 1, 0, 0, 0, 0];
  for (const last of segments) body.push(0xfd, 0, ...new Array<number>(13).fill(0), last);
  return body;
}

const UDP6 = { src: 'fd00::2', dst: 'fd00::1' };

describe('datagrams: the options a guest chose are compared', () => {
  test('IPv4: a different source route is a header mismatch, the same one matches', () => {
    const t = new Twins();
    t.primary(withIpv4Options(t.udp({ payload: 'a' }), looseSourceRoute([10, 0, 0, 9])));
    t.secondary(withIpv4Options(t.udp({ payload: 'a' }), looseSourceRoute([10, 0, 0, 9])));
    assert.deepEqual(t.releasedPayloads(), ['a']);
    t.primary(withIpv4Options(t.udp({ payload: 'b' }), looseSourceRoute([10, 0, 0, 9])));
    t.secondary(withIpv4Options(t.udp({ payload: 'b' }), looseSourceRoute([10, 0, 0, 8])));
    assert.deepEqual(t.mismatchReasons(), ['header']);
    const m = t.actions.find((a) => a.kind === 'mismatch');
    assert.ok(m?.kind === 'mismatch');
    assert.equal(m.mismatch.detail, 'ip.options=8307040a000009 against ip.options=8307040a000008');
  });

  test('IPv4: options on one side only are a mismatch, and listed header fields come first', () => {
    const t = new Twins({ compareHeaders: ['ip.ttl'] });
    t.primary(withIpv4Options(t.udp({ payload: 'a' }), [148, 4, 0, 0])); // router alert
    t.secondary(t.udp({ payload: 'a' }));
    assert.deepEqual(t.mismatchReasons(), ['header']);
    const m = t.actions.find((a) => a.kind === 'mismatch');
    assert.ok(m?.kind === 'mismatch');
    assert.equal(m.mismatch.detail, 'ip.ttl=64 ip.options=94040000 against ip.ttl=64');
  });

  test('IPv4: timestamps and padding after End of Option List are not compared; the option itself is', () => {
    const t = new Twins();
    t.primary(withIpv4Options(t.udp({ payload: 'a' }), timestamps(0, 1000)));
    t.secondary(withIpv4Options(t.udp({ payload: 'a' }), timestamps(0, 1001)));
    t.primary(withIpv4Options(t.udp({ payload: 'b' }), [1, 0, 7, 7]));
    t.secondary(withIpv4Options(t.udp({ payload: 'b' }), [1, 0, 9, 9]));
    assert.deepEqual(t.mismatchReasons(), []);
    assert.deepEqual(t.releasedPayloads(), ['a', 'b']);
    t.primary(withIpv4Options(t.udp({ payload: 'c' }), timestamps(0, 1000)));
    t.secondary(withIpv4Options(t.udp({ payload: 'c' }), timestamps(1, 1000)));
    assert.deepEqual(t.mismatchReasons(), ['header'], 'the flags differ');
  });

  test('IPv6: a different Routing header is a mismatch; AH is not compared', () => {
    const t = new Twins();
    t.primary(withIpv6Extension(t.udp({ ...UDP6, payload: 'a' }), 43, routing(5)));
    t.secondary(withIpv6Extension(t.udp({ ...UDP6, payload: 'a' }), 43, routing(5)));
    t.primary(withIpv6Extension(t.udp({ ...UDP6, payload: 'b' }), 51, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
    t.secondary(withIpv6Extension(t.udp({ ...UDP6, payload: 'b' }), 51, [0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]));
    assert.deepEqual(t.mismatchReasons(), []);
    assert.deepEqual(t.releasedPayloads(), ['a', 'b']);
    t.primary(withIpv6Extension(t.udp({ ...UDP6, payload: 'c' }), 43, routing(5)));
    t.secondary(withIpv6Extension(t.udp({ ...UDP6, payload: 'c' }), 43, routing(6)));
    assert.deepEqual(t.mismatchReasons(), ['header']);
  });

  test('IPv6: a Destination Options header on one side only is a mismatch', () => {
    const t = new Twins();
    t.primary(withIpv6Extension(t.udp({ ...UDP6, payload: 'a' }), 60, [1, 4, 0, 0, 0, 0]));
    t.secondary(t.udp({ ...UDP6, payload: 'a' }));
    assert.deepEqual(t.mismatchReasons(), ['header']);
  });
});

describe('TCP: the options are one value per connection', () => {
  test('the same source route on every segment, cut differently: no mismatch', () => {
    const t = new Twins();
    const route = looseSourceRoute([10, 0, 0, 9]);
    t.established(ISN);
    t.primary(withIpv4Options(t.out({ seq: ISN + 1, payload: 'abcd' }), route));
    t.secondary(withIpv4Options(t.out({ seq: ISN + 1, payload: 'ab' }), route));
    t.secondary(withIpv4Options(t.out({ seq: ISN + 3, payload: 'cd' }), route));
    assert.deepEqual(t.mismatchReasons(), []);
    assert.deepEqual(t.releasedPayloads(), ['', 'abcd']);
  });

  test('a segment of either guest with other options than the connection is a header mismatch', () => {
    const t = new Twins();
    t.established(ISN);
    t.primary(withIpv4Options(t.out({ seq: ISN + 1, payload: 'ab' }), looseSourceRoute([10, 0, 0, 9])));
    t.secondary(withIpv4Options(t.out({ seq: ISN + 1, payload: 'ab' }), looseSourceRoute([10, 0, 0, 8])));
    assert.deepEqual(t.mismatchReasons(), ['header']);
    const m = t.actions.find((a) => a.kind === 'mismatch');
    assert.ok(m?.kind === 'mismatch');
    assert.equal(m.mismatch.detail, 'IP options differ within the connection: secondary segment has 8307040a000008, the connection 8307040a000009');
  });

  test('the handshake does not set them: options set once connected are no mismatch', () => {
    const t = new Twins();
    t.established(ISN);
    t.primary(withIpv4Options(t.out({ seq: ISN + 1, payload: 'ab' }), [148, 4, 0, 0]));
    t.secondary(withIpv4Options(t.out({ seq: ISN + 1, payload: 'ab' }), [148, 4, 0, 0]));
    assert.deepEqual(t.mismatchReasons(), []);
    assert.deepEqual(t.releasedPayloads(), ['', 'ab']);
  });

  test('segments the kernel sends itself, without the socket\'s options (a handshake ACK, a TIME-WAIT ACK, an RST), are not held to them', () => {
    const route = looseSourceRoute([10, 0, 0, 9]);
    const t = new Twins();
    // The guests open the connection, and the application sets the route once connected.
    t.primary(t.out({ seq: ISN, ack: 0, flags: TCP_SYN, options: { mss: 1460 } }));
    t.secondary(t.out({ seq: ISN, ack: 0, flags: TCP_SYN, options: { mss: 1460 } }));
    t.client(t.in({ seq: 7000, ack: ISN + 1, flags: TCP_SYN | TCP_ACK, options: { mss: 1460 } }));
    t.primary(t.out({ seq: ISN + 1, ack: 7001 }));
    t.secondary(t.out({ seq: ISN + 1, ack: 7001 }));
    t.primary(withIpv4Options(t.out({ seq: ISN + 1, ack: 7001, payload: 'hello' }), route));
    t.secondary(withIpv4Options(t.out({ seq: ISN + 1, ack: 7001, payload: 'hello' }), route));
    t.primary(t.out({ seq: ISN + 6, ack: 7002 })); // from TIME-WAIT, say
    t.secondary(t.out({ seq: ISN + 6, ack: 7002 }));
    assert.deepEqual(t.mismatchReasons(), []);
    t.secondary(t.out({ seq: ISN + 6, ack: 7002, payload: 'x' }));
    assert.deepEqual(t.mismatchReasons(), ['header'], 'data without them is held to them');
  });

  test('after a checkpoint the options are learned afresh', () => {
    const t = new Twins();
    t.established(ISN);
    t.primary(t.out({ seq: ISN + 1, payload: 'ab' }));
    t.secondary(withIpv4Options(t.out({ seq: ISN + 1, payload: 'ab' }), [148, 4, 0, 0]));
    assert.deepEqual(t.mismatchReasons(), ['header']);
    t.checkpointDone();
    t.primary(withIpv4Options(t.out({ seq: ISN + 3, payload: 'cd' }), [148, 4, 0, 0]));
    t.secondary(withIpv4Options(t.out({ seq: ISN + 3, payload: 'cd' }), [148, 4, 0, 0]));
    assert.deepEqual(t.mismatchReasons(), ['header'], 'no new mismatch');
    assert.deepEqual(t.releasedPayloads(), ['', 'ab', 'cd']);
  });
});

test('ipOptionsOf: none is the empty string; a malformed option ends the walk with the rest as it is', () => {
  const t = new Twins();
  const of = (bytes: Uint8Array): string => {
    const f = decodeFrame(bytes);
    assert.ok(f instanceof Frame);
    return ipOptionsOf(f);
  };
  assert.equal(of(t.udp({ payload: 'a' })), '');
  assert.equal(of(t.udp({ ...UDP6, payload: 'a' })), '');
  assert.equal(of(withIpv4Options(t.udp({ payload: 'a' }), [1, 1, 130, 1])), '0101820' + '1');
  assert.equal(of(withIpv6Extension(t.udp({ ...UDP6, payload: 'a' }), 60, [1, 4, 0, 0, 0, 0])), '60:1100010400000000');
});
