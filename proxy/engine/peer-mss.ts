/**
 * The maximum segment size each client announced, so that `run` cuts a guest's offload frames
 * (tcp-segmenter.ts) no larger than the client said it takes. Linux's own segmentation cuts at the
 * connection's segment size, which already respects the peer's MSS; a capture does not carry that
 * size, and cutting at the link's MTU alone would send segments over an MSS a middlebox clamped
 * (PPPoE, VPNs) or a client announced small.
 *
 * Learned from the client's SYN and SYN-ACK as they pass (`observe`), kept per connection in a
 * bounded LRU table. A segment's payload may then be the MSS less the TCP options it carries (RFC
 * 6691). Connections whose handshake was not seen (open before `run` started) get no limit but the
 * MTU's. Path MTU changes (ICMP "fragmentation needed" towards the guest) are not followed.
 */

import { LRUCache } from 'lru-cache';
import { flowKey, type Frame, type TcpView } from '../../compare/index.js';

/** Connections remembered; when full, the least recently used is forgotten. */
const MAX_CONNECTIONS = 65_536;

export class PeerMss {
  private readonly mss = new LRUCache<string, number>({ max: MAX_CONNECTIONS });

  /** Looks at one decoded client frame: a SYN or SYN-ACK with an MSS option is remembered for its connection. */
  observe(f: Frame): void {
    const tcp = f.transport;
    if (tcp === null || tcp.kind !== 'tcp' || !tcp.isSyn) return;
    const mss = tcp.mss;
    if (mss > 0) this.mss.set(flowKey(f, false), mss);
  }

  /** The most payload one segment of the guest's frame `f` may carry for its client (Infinity: unknown). */
  readonly limit = (f: Frame, tcp: TcpView): number => {
    const mss = this.mss.get(flowKey(f, true));
    return mss === undefined ? Infinity : mss - (tcp.headerLength - 20);
  };
}
