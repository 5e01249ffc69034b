/**
 * Socket endpoints in the spelling of QEMU's socket chardevs, so an operator can translate a QEMU
 * command line by eye: `tcp:HOST:PORT` or `unix:PATH` connects (and reconnects), and a `,server`
 * suffix listens instead (QEMU's `server=on`, accepted too, with QEMU's other spellings of a
 * boolean: on/off, yes/no, true/false, y/n). QEMU's `wait`, `nowait`, `nodelay` and
 * `reconnect=SECONDS` are accepted and change nothing here: colo-proxy never blocks start-up on a
 * peer, always sets TCP_NODELAY, and a connecting port always reconnects, with a backoff of 100 ms
 * doubling to 2 s (stream-port.ts). IPv6 hosts go in
 * brackets: `tcp:[::1]:9003`. A bad endpoint is a `UsageError` naming the flag; so is a unix path
 * too long for a socket address (the kernel would silently cut it: another path is created, and
 * peers dialling the one given never find it).
 */

import { SocketAddress, isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import { UsageError } from '../cli/errors.js';

export type Endpoint =
  | { kind: 'tcp'; host: string; port: number; server: boolean; text: string }
  | { kind: 'unix'; path: string; server: boolean; text: string };

const FORMS = 'tcp:HOST:PORT[,server] or unix:PATH[,server]';

/** How QEMU spells a boolean option's value (qapi_bool_parse). */
const QEMU_BOOLEANS = new Map([['on', true], ['yes', true], ['true', true], ['y', true], ['off', false], ['no', false], ['false', false], ['n', false]]);

/** Bytes of `sun_path` in Linux's `struct sockaddr_un`, the terminating NUL included. */
const SUN_PATH_BYTES = 108;

/**
 * Parses `text` given to `flag`; throws UsageError naming the flag and the accepted forms.
 * `listens`: whether it listens when the text says neither `server` nor `server=off`.
 */
export function parseEndpoint(flag: string, text: string, listens = false): Endpoint {
  const bad = (why: string): UsageError => new UsageError(`${flag}: ${why} in "${text}" (expected ${FORMS})`);
  const [address = '', ...options] = text.split(',');
  let server = listens;
  for (const o of options) {
    const [name = '', value] = o.split('=', 2) as [string, string | undefined];
    const on = value === undefined ? true : QEMU_BOOLEANS.get(value);
    if (name === 'server' && on !== undefined) server = on;
    else if ((name === 'wait' || name === 'nodelay') && on !== undefined) continue;
    else if (o === 'nowait') continue;
    else if (name === 'reconnect' && value !== undefined && /^\d+$/.test(value)) continue;
    else throw bad(`unknown option "${o}"`);
  }
  if (address.startsWith('unix:')) {
    const path = address.slice(5);
    if (path === '') throw bad('empty socket path');
    const bytes = Buffer.byteLength(path);
    if (bytes >= SUN_PATH_BYTES) {
      throw new UsageError(`${flag}: unix socket path of ${bytes} bytes in "${text}" is too long (at most ${SUN_PATH_BYTES - 1}; the kernel would cut it short)`);
    }
    return { kind: 'unix', path, server, text };
  }
  if (!address.startsWith('tcp:')) throw bad('unknown kind');
  const rest = address.slice(4);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(rest);
  if (!m) throw bad('no HOST:PORT');
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port ${m[3]} out of range 1-65535`);
  const host = m[1] ?? (m[2] === '' ? (server ? '0.0.0.0' : '127.0.0.1') : m[2]!);
  const why = m[1] !== undefined ? badIpv6(host) : badHost(host);
  if (why !== null) throw bad(why);
  return { kind: 'tcp', host, port, server, text };
}

/**
 * What is wrong with a host in brackets, or null: not an IPv6 address, or a link-local one without
 * the interface it is on (`fe80::1%eth0`), which the kernel refuses (EINVAL) at every dial.
 */
function badIpv6(host: string): string | null {
  if (!isIPv6(host)) return `"[${host}]" is not an IPv6 address`;
  if (/^fe[89ab]/i.test(canonicalHost(host)) && !host.includes('%')) return `link-local address [${host}] without its interface (as [${host}%IFACE])`;
  return null;
}

/**
 * What is wrong with a host not in brackets, or null: digits and dots that are not an IPv4
 * address, or not a host name at all. A well-formed name is taken as given: one that does not
 * resolve yet is dialled again, as QEMU's reconnecting chardev does.
 */
function badHost(host: string): string | null {
  if (/^[\d.]+$/.test(host)) return isIPv4(host) ? null : `"${host}" is not an IPv4 address`;
  // Underscores too: container and compose service names carry them, and resolvers take them.
  const label = /^(?!-)[\w-]{1,63}(?<!-)$/;
  return host.length <= 253 && host.replace(/\.$/, '').split('.').every((l) => label.test(l)) ? null : `"${host}" is not a host name (IPv6 addresses go in brackets)`;
}

/**
 * True when `a` and `b` name the same socket: the same unix path (relative ones resolved against
 * the working directory), or the same TCP port where one reaches the other: the same host
 * (`localhost` is 127.0.0.1), or a listener on every address (0.0.0.0, ::) against another
 * listener on that port or a dialler to an address of this machine (loopback, or one of its
 * interfaces'), which would connect to that very listener. Two endpoints of one process on the
 * same socket cannot both work: a second listener takes the path from the first (or fails), and
 * a dialler to our own listener feeds one role's output into another's input.
 */
export function sameSocket(a: Endpoint, b: Endpoint): boolean {
  if (a.kind === 'unix' && b.kind === 'unix') return resolve(a.path) === resolve(b.path);
  if (a.kind !== 'tcp' || b.kind !== 'tcp' || a.port !== b.port) return false;
  const x = canonicalHost(a.host);
  const y = canonicalHost(b.host);
  if (x === y) return true;
  const reaches = (listener: Endpoint & { kind: 'tcp' }, host: string, other: Endpoint & { kind: 'tcp' }): boolean =>
    listener.server && WILDCARDS.has(canonicalHost(listener.host)) && (other.server || isLocalAddress(host));
  return reaches(a, y, b) || reaches(b, x, a);
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

/** `host` spelled one way: `localhost` as 127.0.0.1, IPv6 compressed, an IPv4-mapped IPv6 address as the IPv4 one. */
function canonicalHost(host: string): string {
  const h = host.toLowerCase();
  if (h === 'localhost') return '127.0.0.1';
  if (!isIPv6(h)) return h;
  const [address = '', scope] = h.split('%', 2);
  const canonical = new SocketAddress({ address, family: 'ipv6' }).address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(canonical);
  if (mapped !== null) return mapped[1]!;
  return scope === undefined ? canonical : `${canonical}%${scope}`;
}

/** An address this machine answers on: loopback, or one of its interfaces' (a dialler to it reaches our own wildcard listener). */
function isLocalAddress(host: string): boolean {
  if (host.startsWith('127.') || host === '::1') return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address.toLowerCase() === host));
}
