/**
 * Link-layer header types, as numbered by tcpdump.org's LINKTYPE_ registry (the values stored in
 * pcap file headers and pcapng interface descriptions). The comparator itself sees Ethernet; the
 * others appear in captures that users replay or inspect.
 */

export const LINKTYPE_ETHERNET = 1;
/** Raw IPv4 or IPv6, version taken from the first nibble. */
export const LINKTYPE_RAW = 101;
/** Linux "cooked" capture v1 (16-byte header), what `tcpdump -i any` wrote before libpcap 1.10. */
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
/** Linux "cooked" capture v2 (20-byte header, carries the interface index). */
export const LINKTYPE_LINUX_SLL2 = 276;

/** Short lowercase name of a link type, or `linktype-N` for one we do not decode. */
export function linkTypeName(linkType: number): string {
  switch (linkType) {
    case LINKTYPE_ETHERNET: return 'ethernet';
    case LINKTYPE_RAW: return 'raw';
    case LINKTYPE_LINUX_SLL: return 'linux-sll';
    case LINKTYPE_IPV4: return 'ipv4';
    case LINKTYPE_IPV6: return 'ipv6';
    case LINKTYPE_LINUX_SLL2: return 'linux-sll2';
    default: return `linktype-${linkType}`;
  }
}
