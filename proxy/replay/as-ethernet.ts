/**
 * Captured frames as Ethernet frames, the one link type the comparator core takes (it is what
 * QEMU's sockets and tap devices carry). Raw IP and Linux cooked (SLL, SLL2) captures, such as
 * `tcpdump -i any`, get a zero-address Ethernet header with the network protocol as ethertype;
 * both sides get the same header, so nothing false is compared.
 */

import { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, linkTypeName } from '../../compare/index.js';

const REPLAYABLE = new Set([LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2]);

/** True for the link types `asEthernet` converts (asked for every frame replayed, so no array is built per call). */
export function replayableLinkType(linkType: number): boolean {
  return REPLAYABLE.has(linkType);
}

export function unsupportedLinkType(linkType: number): string {
  return `link type ${linkTypeName(linkType)} (${linkType}) cannot be replayed (Ethernet, raw IP and Linux cooked captures can)`;
}

/** The link-layer header of a replayable link type, which `asEthernet` replaces with Ethernet's 14 bytes. */
function headerLength(linkType: number): number {
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      return 14;
    case LINKTYPE_LINUX_SLL:
      return 16;
    case LINKTYPE_LINUX_SLL2:
      return 20;
    default:
      return 0;
  }
}

/** The largest frame libpcap reads and Wireshark takes for these link types (MAXIMUM_SNAPLEN, WTAP_MAX_PACKET_SIZE_STANDARD). */
const MAX_CAPTURED_FRAME = 262144;

/**
 * Why a frame of a replayable link type cannot be replayed, or undefined. A cooked or raw IP
 * record too short for its link type's header (or, raw, the IP version) is no frame a capture
 * tool writes: nothing says what it carries, and fed as Ethernet it would pass for a frame it is
 * not. (A short Ethernet frame is the core's to count: decode.ethernet.too_short.) A frame over
 * MAX_CAPTURED_FRAME as Ethernet, which no capture tool writes either, would make the replay's own
 * captures (`--out`, `--mismatch-dir`) files that tshark refuses.
 */
export function unreplayable(linkType: number, length: number): string | undefined {
  const header = headerLength(linkType);
  const name = `link type ${linkTypeName(linkType)} (${linkType})`;
  if (linkType !== LINKTYPE_ETHERNET && length < Math.max(header, 1)) {
    return `${length} bytes, too short for ${header === 0 ? 'the IP version' : `the ${header}-byte header`} every frame of ${name} starts with`;
  }
  const ethernet = length - header + 14;
  if (ethernet <= MAX_CAPTURED_FRAME) return undefined;
  return `${length} bytes of ${name}${header === 14 ? '' : ` (${ethernet} as Ethernet)`}, over the ${MAX_CAPTURED_FRAME} a captured frame can have (libpcap's and Wireshark's limit)`;
}

function withHeader(etherType: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(14 + payload.length);
  out[12] = etherType >>> 8;
  out[13] = etherType & 0xff;
  out.set(payload, 14);
  return out;
}

/**
 * `data` of `linkType` as an Ethernet frame (the same bytes for Ethernet). For frames `FrameRouter`
 * let through: a replayable link type, and not `unreplayable`.
 */
export function asEthernet(linkType: number, data: Uint8Array): Uint8Array {
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      return data;
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
      return withHeader(data[0]! >>> 4 === 6 ? 0x86dd : 0x0800, data);
    case LINKTYPE_LINUX_SLL:
      return withHeader((data[14]! << 8) | data[15]!, data.subarray(16));
    case LINKTYPE_LINUX_SLL2:
      return withHeader((data[0]! << 8) | data[1]!, data.subarray(20));
    default:
      throw new RangeError(unsupportedLinkType(linkType));
  }
}
