/**
 * IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), shared by the IPv4 protocol
 * field and the IPv6 next-header chain.
 */

export const IP_PROTOCOL_HOP_BY_HOP = 0;
export const IP_PROTOCOL_ICMP = 1;
export const IP_PROTOCOL_TCP = 6;
export const IP_PROTOCOL_UDP = 17;
export const IP_PROTOCOL_IPV6_ROUTING = 43;
export const IP_PROTOCOL_IPV6_FRAGMENT = 44;
export const IP_PROTOCOL_ESP = 50;
export const IP_PROTOCOL_AH = 51;
export const IP_PROTOCOL_ICMPV6 = 58;
export const IP_PROTOCOL_IPV6_NO_NEXT = 59;
export const IP_PROTOCOL_IPV6_DEST_OPTS = 60;
export const IP_PROTOCOL_MOBILITY = 135;
export const IP_PROTOCOL_HIP = 139;
export const IP_PROTOCOL_SHIM6 = 140;
