/**
 * Wiring mistakes between the interfaces of a live command that would make it forward in a
 * circle: two of them the two ends of one veth pair, two ports of one Linux bridge, or a bridge
 * and one of its own ports. What `run` injects onto one then comes straight back on the other as
 * captured input, is forwarded again, and so on: a frame storm at full CPU instead of an error.
 * Read from `ip -d -j link show` (iproute2's JSON, which names a veth's peer in the same namespace
 * as `link`, and a port's bridge as `master` with `info_slave_kind` "bridge"); sysfs gives only
 * the peer's ifindex, which may be a number in another namespace. Bond or team slaves and Open
 * vSwitch ports also have a `master` (every OVS port's is `ovs-system`, whichever bridge it is
 * in), and are not refused. Without a working `ip` the check is skipped: it is a guard, not a
 * requirement.
 */

import { spawnSync } from 'node:child_process';

interface IpLink {
  ifname: string;
  /** A veth's peer, when it is in this namespace. */
  link?: string;
  /** The device this interface is a port or slave of. */
  master?: string;
  linkinfo?: { info_slave_kind?: string };
}

function links(): IpLink[] | null {
  const r = spawnSync('ip', ['-d', '-j', 'link', 'show'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) return null;
  try {
    const parsed: unknown = JSON.parse(r.stdout);
    return Array.isArray(parsed) ? (parsed as IpLink[]) : null;
  } catch {
    return null;
  }
}

/** The Linux bridge `l` is a port of, if any. */
function bridgeOf(l: IpLink): string | undefined {
  return l.linkinfo?.info_slave_kind === 'bridge' ? l.master : undefined;
}

/**
 * Why two of `interfaces` (flag and name each, in this process's namespace) would forward in a
 * circle, in one line, or null when none would.
 */
export function loopingInterfaces(interfaces: readonly [flag: string, name: string][]): string | null {
  const all = links();
  if (all === null) return null;
  const byName = new Map(all.map((l) => [l.ifname, l]));
  for (let i = 0; i < interfaces.length; i++) {
    for (let j = i + 1; j < interfaces.length; j++) {
      const why = loopBetween(interfaces[i]!, interfaces[j]!, byName);
      if (why !== null) return why;
    }
  }
  return null;
}

/** Why the interfaces `a` and `b` would forward in a circle, or null (see `loopingInterfaces`). */
function loopBetween([flagA, a]: readonly [string, string], [flagB, b]: readonly [string, string], byName: ReadonlyMap<string, IpLink>): string | null {
  const la = byName.get(a);
  const lb = byName.get(b);
  if (la === undefined || lb === undefined) return null;
  if (la.link === b && lb.link === a) {
    return `${flagA} ${a} and ${flagB} ${b} are the two ends of one veth pair: what is sent on one comes back on the other, and would be forwarded round and round`;
  }
  const bridgeA = bridgeOf(la);
  const bridgeB = bridgeOf(lb);
  if (bridgeA !== undefined && bridgeA === bridgeB) {
    return `${flagA} ${a} and ${flagB} ${b} are ports of the same bridge ${bridgeA}, which forwards between them itself: take them out of it (ip link set ${a} nomaster; ip link set ${b} nomaster)`;
  }
  const portOf = (flagPort: string, port: string, flagBridge: string, bridge: string): string =>
    `${flagPort} ${port} is a port of ${flagBridge} ${bridge}, a bridge, which forwards what is sent on it to ${port}: take it out (ip link set ${port} nomaster)`;
  if (bridgeA === b) return portOf(flagA, a, flagB, b);
  if (bridgeB === a) return portOf(flagB, b, flagA, a);
  return null;
}
