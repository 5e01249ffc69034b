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

function withHeader(etherType: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(14 + payload.length);
  out[12] = etherType >>> 8;
  out[13] = etherType & 0xff;
  out.set(payload, 14);
  return out;
}

/** `data` of `linkType` as an Ethernet frame (the same bytes for Ethernet); undefined when too short to tell. */
export function asEthernet(linkType: number, data: Uint8Array): Uint8Array | undefined {
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      return data;
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6: {
      if (data.length < 1) return undefined;
      const version = data[0]! >>> 4;
      return withHeader(version === 6 ? 0x86dd : 0x0800, data);
    }
    case LINKTYPE_LINUX_SLL:
      return data.length < 16 ? undefined : withHeader((data[14]! << 8) | data[15]!, data.subarray(16));
    case LINKTYPE_LINUX_SLL2:
      return data.length < 20 ? undefined : withHeader((data[0]! << 8) | data[1]!, data.subarray(20));
    default:
      return undefined;
  }
}
