/**
 * Wiring mistakes between the interfaces of a live command that would make it forward in a
 * circle: two of them the two ends of one veth pair, or ports of one bridge. What `run` injects
 * onto one then comes straight back on the other as captured input, is forwarded again, and so
 * on: a frame storm at full CPU instead of an error. Read from `ip -j link show` (iproute2's JSON,
 * which names a veth's peer in the same namespace as `link` and a bridge port's bridge as
 * `master`); sysfs gives only the peer's ifindex, which may be a number in another namespace.
 * Without a working `ip` the check is skipped: it is a guard, not a requirement.
 */

import { spawnSync } from 'node:child_process';

interface IpLink {
  ifname: string;
  /** A veth's peer, when it is in this namespace. */
  link?: string;
  /** The bridge (or bond) this interface is a port of. */
  master?: string;
}

function links(): IpLink[] | null {
  const r = spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  try {
    const parsed: unknown = JSON.parse(r.stdout);
    return Array.isArray(parsed) ? (parsed as IpLink[]) : null;
  } catch {
    return null;
  }
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
      const [flagA, a] = interfaces[i]!;
      const [flagB, b] = interfaces[j]!;
      const la = byName.get(a);
      const lb = byName.get(b);
      if (la === undefined || lb === undefined) continue;
      if (la.link === b && lb.link === a) {
        return `${flagA} ${a} and ${flagB} ${b} are the two ends of one veth pair: what is sent on one comes back on the other, and would be forwarded round and round`;
      }
      if (la.master !== undefined && la.master === lb.master) {
        return `${flagA} ${a} and ${flagB} ${b} are ports of the same bridge ${la.master}, which forwards between them itself: take them out of it (ip link set ${a} nomaster; ip link set ${b} nomaster)`;
      }
    }
  }
  return null;
}
