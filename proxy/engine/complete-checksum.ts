/**
 * Completes TCP and UDP checksums that a sender left to the device. A guest with checksum offload
 * (virtio-net's NEEDS_CSUM, or a veth peer with `tx` on) hands its tap a frame whose checksum
 * field holds only the folded pseudo-header sum (Linux's CHECKSUM_PARTIAL); libpcap captures it
 * as is, and injected as is onto another interface it would be dropped by the receiver as
 * corrupt (and the core's incremental rewrites assume a complete checksum). `run` therefore
 * completes such frames in place before the core sees them.
 *
 * Detection: the stored field equals the pseudo-header sum. A complete checksum collides with
 * that with probability 2^-16, and recomputing it then gives the same, correct value, so the
 * test costs nothing but the pseudo-header sum on frames that are already complete. Fragments,
 * non-IP frames and UDP over IPv4 without a checksum (0) are left alone.
 */

import {
  Frame, FrameDecoder, Ipv4View, Ipv6View, LINKTYPE_ETHERNET, pseudoSumV4, pseudoSumV6, readU16, transportChecksum, udpChecksum, writeU16,
} from '../../compare/index.js';

export class ChecksumCompleter {
  /** Frames whose checksum was completed. */
  completed = 0;
  private readonly decoder = new FrameDecoder();

  /** Completes `frame`'s TCP or UDP checksum in place when it is partial; true when it did. */
  complete(frame: Uint8Array): boolean {
    const f = this.decoder.decode(frame, LINKTYPE_ETHERNET);
    return f instanceof Frame && this.completeDecoded(f);
  }

  /** `complete` for a frame the caller has decoded already. */
  completeDecoded(f: Frame): boolean {
    const frame = f.bytes;
    if (f.isFragment) return false;
    const t = f.transport;
    if (t === null || (t.kind !== 'tcp' && t.kind !== 'udp')) return false;
    const at = t.offset;
    const length = t.kind === 'tcp' ? t.segmentLength : t.length;
    const checksumAt = at + (t.kind === 'tcp' ? 16 : 6);
    if (checksumAt + 2 > frame.length || at + length > frame.length) return false;
    const net = f.network;
    let pseudo: number;
    if (net instanceof Ipv4View) pseudo = pseudoSumV4(frame, net.offset, f.protocol, length);
    else if (net instanceof Ipv6View) pseudo = pseudoSumV6(frame, net.offset, f.protocol, length);
    else return false;
    const stored = readU16(frame, checksumAt);
    if (stored !== pseudo || (t.kind === 'udp' && stored === 0)) return false;
    writeU16(frame, checksumAt, t.kind === 'udp' ? udpChecksum(pseudo, frame, at, length, checksumAt) : transportChecksum(pseudo, frame, at, length, checksumAt));
    this.completed++;
    return true;
  }
}
